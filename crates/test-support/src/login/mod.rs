//! Harness for the login tests: the Rekono simulator in-process, the real gateway binary
//! registered with it as a relying party, six demo portals, and a browser-like client whose
//! cookie jar honours `Domain`, `Path` and `Max-Age=0` as a browser does.

mod browser;
mod certificates;
mod flows;
mod world;

pub use browser::{Browser, Page};
pub use certificates::{
    http_status, s_client, s_client_command, s_client_raw, CertOptions, Ocsp, Responder, SClient,
};
pub use flows::*;
pub use world::{
    certificate_only_world, certificate_world, world, Fapi, Options, World, STAFF_ANA,
    STAFF_ANA_TOTP, STAFF_BOR, STAFF_CLIENT_ID, STAFF_ID,
};

pub const CLIENT_ID: &str = "prehod-test";
/// The session cookie: host-only (`__Host-`), one per host.
pub const SESSION: &str = "__Host-prehod_session";
/// A form kept across the login, on the portal that kept it.
pub const POST: &str = "__Host-prehod_post";
pub const CLIENT_SECRET: &str = "prehod-test-secret";
