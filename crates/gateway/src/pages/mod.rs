//! Every page the gateway serves — its own error pages on any host (400, 405, 421, 429, 5xx),
//! the login host's pages, the sessions page, the page that re-submits a kept form — from one
//! renderer ([`Pages`]), in Bankart's style and in the language the request asks for.
//!
//! - [`lang`]: the languages and how a request chooses one;
//! - [`keys`]: the ids of the texts the code names, and the page kinds with their status;
//! - [`catalogue`]: the texts, one Project Fluent file per language (`templates/*.ftl`);
//! - [`views`]: what each page shows, as data;
//! - [`render`]: the minijinja templates (`templates/*.html`) and the renderer.
//!
//! Which outcome becomes which page is the callers' (the proxy's phases, the login host's
//! handlers); this module only writes them.

pub mod catalogue;
pub mod keys;
pub mod lang;
pub mod render;
pub mod views;

pub use keys::{Message, Page, Text};
pub use lang::{request_lang, Lang};
pub use render::{Pages, PagesError};
pub use views::{
    Action, AppView, Field, Link, LoginLinks, LoginView, MessageView, ProviderButton, SessionRow,
    SessionView, SessionsView,
};

/// HSTS, on the gateway's pages and on every proxied response that has none: two years,
/// Mozilla's `hsts_min_age` (`crate::tls_profile`).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000";

/// Security headers on every page the gateway itself serves.
pub const PAGE_HEADERS: &[(&str, &str)] = &[
    ("strict-transport-security", STRICT_TRANSPORT_SECURITY),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];
