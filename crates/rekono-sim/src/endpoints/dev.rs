//! `/dev/…`: what a person or a test does in place of a phone, an SMS or an admin console —
//! the SMS outbox, push approval, key rotation, ending sessions — and the playground.

use http::{Method, StatusCode};
use serde_json::json;

use super::logout::logout_sessions;
use super::playground;
use crate::exchange::{json_response, plain, Req, Resp};
use crate::Sim;

/// Answers a request under `/dev/`.
pub(super) async fn route(sim: &Sim, r: &Req) -> Resp {
    let path = r.path.as_str();
    match (r.method.clone(), path) {
        (Method::GET, "/dev/outbox") => json_response(StatusCode::OK, &json!(sim.outbox())),
        (Method::GET, "/dev/try") => playground::start(sim, r),
        (Method::GET, "/dev/callback") => playground::callback(sim, r).await,
        (Method::GET, "/dev/push") => {
            let pending: Vec<_> = sim
                .pending_pushes()
                .into_iter()
                .map(|(id, email)| json!({"id": id, "email": email}))
                .collect();
            json_response(StatusCode::OK, &json!(pending))
        }
        (Method::POST, "/dev/keys/rotate") => match sim.keys.rotate() {
            Ok(kid) => json_response(StatusCode::OK, &json!({"kid": kid})),
            Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        (Method::POST, "/dev/logout") => logout(sim, r).await,
        (Method::POST, p) => match p.strip_prefix("/dev/push/") {
            Some(rest) => answer_push(sim, rest),
            None => plain(StatusCode::NOT_FOUND, "not found"),
        },
        _ => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `POST /dev/logout` with `sub` or `sid` (form or query): ends those sessions, back-channel
/// included.
async fn logout(sim: &Sim, r: &Req) -> Resp {
    let sub = r.form.get("sub").or_else(|| r.query.get("sub")).cloned();
    let sid = r.form.get("sid").or_else(|| r.query.get("sid")).cloned();
    if sub.is_none() && sid.is_none() {
        return plain(StatusCode::BAD_REQUEST, "give sub or sid");
    }
    let delivered = logout_sessions(sim, |id, s| {
        sid.as_deref() == Some(id)
            || sub.as_deref() == Some(sim.config.accounts[s.account].sub.as_str())
    })
    .await;
    json_response(
        StatusCode::OK,
        &json!({"back_channel_delivered": delivered}),
    )
}

/// `POST /dev/push/{id}/approve` or `…/reject`, `rest` being `{id}/{action}`: the phone's answer.
fn answer_push(sim: &Sim, rest: &str) -> Resp {
    let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
    let approve = match action {
        "approve" => true,
        "reject" => false,
        _ => return plain(StatusCode::NOT_FOUND, "approve or reject"),
    };
    if sim.answer_push(id, approve) {
        plain(
            StatusCode::OK,
            if approve { "approved" } else { "rejected" },
        )
    } else {
        plain(StatusCode::NOT_FOUND, "no such pending push")
    }
}
