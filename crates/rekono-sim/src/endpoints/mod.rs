//! The provider's endpoints, one module each: discovery and JWKS, authorize and its login
//! screens, pushed authorization requests and DPoP (FAPI 2.0 mode), token, userinfo, logout (RP-initiated and back-channel), and the `/dev/…` endpoints
//! that stand in for a phone and an admin console. This file is only the routing table.

mod authorize;
mod dev;
mod discovery;
mod dpop;
mod language;
mod logout;
mod par;
mod playground;
mod token;
mod userinfo;

use http::{Method, StatusCode};

use crate::exchange::{plain, Req, Resp};
use crate::{Factor, Sim, BASE_PATH};
use authorize::transaction::{self, with_tx};
use authorize::{password, second_factor as factor};

pub(crate) use playground::PLAYGROUND_CLIENT;

/// Answers `r`: the provider's paths under [`BASE_PATH`], `/healthz`, and `/dev/…`.
pub(crate) async fn route(sim: &Sim, r: Req) -> Resp {
    let Some(rest) = r.path.strip_prefix(BASE_PATH) else {
        return match (r.method.clone(), r.path.as_str()) {
            (Method::GET, "/healthz") => plain(StatusCode::OK, "ok"),
            (_, p) if p.starts_with("/dev/") => dev::route(sim, &r).await,
            _ => plain(StatusCode::NOT_FOUND, "not found"),
        };
    };
    if r.conn.mtls && rest != "/factor/cert" {
        return plain(
            StatusCode::NOT_FOUND,
            "this listener only serves the certificate step",
        );
    }
    match (r.method.clone(), rest) {
        (Method::GET, "/.well-known/openid-configuration") => discovery::discovery(sim),
        (Method::GET, "/jwk") => discovery::jwks(sim),
        (Method::GET, "/authorize") => authorize::authorize(sim, &r),
        (Method::GET, "/lang") => language::switch(&r),
        // Where an error page's language switch comes back to.
        (Method::GET, "" | "/") => language::start_elsewhere(&r),
        (Method::POST, "/login") => with_tx(sim, &r, true, password::login),
        (Method::GET, "/choose") => with_tx(sim, &r, false, |sim, r, id, tx| {
            factor::chooser(sim, r, id, tx, None)
        }),
        (Method::GET, "/resume") => with_tx(sim, &r, false, authorize::resume),
        (Method::POST, "/abort") => with_tx(sim, &r, true, transaction::abort),
        (Method::POST, "/cancel") => with_tx(sim, &r, true, factor::cancel),
        (Method::POST, "/factor/sms") => with_tx(sim, &r, true, factor::send_sms),
        (Method::POST, "/factor/sms/verify") => with_tx(sim, &r, true, |s, r, id, tx| {
            factor::verify_code(s, r, id, tx, Factor::Sms)
        }),
        (Method::POST, "/factor/otp") => with_tx(sim, &r, true, |s, r, id, tx| {
            factor::code_page(s, r, id, tx, Factor::Otp, None)
        }),
        (Method::POST, "/factor/otp/verify") => with_tx(sim, &r, true, |s, r, id, tx| {
            factor::verify_code(s, r, id, tx, Factor::Otp)
        }),
        (Method::POST, "/factor/push") => with_tx(sim, &r, true, factor::start_push),
        (Method::GET, "/factor/push/wait") => with_tx(sim, &r, false, factor::push_wait),
        (Method::GET, "/factor/push/status") => factor::push_status(sim, &r),
        (Method::GET, "/factor/cert") => with_tx(sim, &r, false, factor::certificate),
        (Method::POST, "/token") => token::token(sim, &r),
        (Method::POST, "/par") if sim.config.fapi2 => par::par(sim, &r),
        (Method::GET | Method::POST, "/userinfo") => userinfo::userinfo(sim, &r),
        (Method::GET | Method::POST, "/endsession") => logout::end_session(sim, &r).await,
        _ => plain(StatusCode::NOT_FOUND, "not found"),
    }
}
