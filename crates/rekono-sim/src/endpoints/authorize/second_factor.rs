//! The second factor, after the password: the chooser of the factors the account may use for
//! the level asked, then an SMS code, a OnePass one-time password, a OnePass push, or a digital
//! certificate (on the certificate listener). A passed factor completes the login.

use http::StatusCode;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::issue::complete;
use super::transaction::{ctx, resume_path};
use crate::exchange::{html, json_response, plain, Req, Resp, BROWSER_COOKIE};
use crate::keys::{random_digits, random_token};
use crate::{pages, unix_now, Factor, PushStatus, Sim, Sms, Step, Tx, BASE_PATH};

/// Wrong codes before the person is sent back to the chooser.
const MAX_CODE_ATTEMPTS: u32 = 3;

/// The factor chooser (`GET /choose`), with `error` above it; the login form while no
/// password has been given.
pub(crate) fn chooser(sim: &Sim, r: &Req, id: &str, tx: &mut Tx, error: Option<&str>) -> Resp {
    let here = resume_path(id);
    let Some(a) = tx.account else {
        return html(
            StatusCode::OK,
            pages::login(&ctx(sim, r, id, tx, &here), "", None),
        );
    };
    tx.step = Step::Chooser;
    let factors = sim.factors_for(&sim.config.accounts[a], tx.target_level);
    let cert_url = format!(
        "{}{BASE_PATH}/factor/cert?tx={id}",
        sim.config.public_mtls_url
    );
    html(
        StatusCode::OK,
        pages::chooser(&ctx(sim, r, id, tx, &here), &factors, &cert_url, error),
    )
}

/// `POST /cancel`: leaves a factor for the chooser, forgetting its code or push.
pub(crate) fn cancel(sim: &Sim, r: &Req, id: &str, tx: &mut Tx) -> Resp {
    tx.sms_code = None;
    tx.push = None;
    chooser(sim, r, id, tx, None)
}

/// The account of the transaction, if it may use `factor`.
fn allowed(sim: &Sim, tx: &Tx, factor: Factor) -> Option<usize> {
    let a = tx.account?;
    sim.factors_for(&sim.config.accounts[a], tx.target_level)
        .contains(&factor)
        .then_some(a)
}

/// `POST /factor/sms`: a new code to the account's phone (the outbox), and the code form.
pub(crate) fn send_sms(sim: &Sim, r: &Req, id: &str, tx: &mut Tx) -> Resp {
    let Some(a) = allowed(sim, tx, Factor::Sms) else {
        return chooser(sim, r, id, tx, None);
    };
    let account = &sim.config.accounts[a];
    let code = random_digits(6);
    let phone = account.phone.clone().unwrap_or_default();
    let text =
        format!("Rekono: vaše enkratno geslo je {code}. / Your one-time password is {code}.");
    tracing::warn!(to = %phone, email = %account.email, code = %code, "rekono-sim SMS outbox");
    sim.state().outbox.push(Sms {
        to: phone,
        email: account.email.clone(),
        code: code.clone(),
        text,
    });
    tx.sms_code = Some(code);
    tx.code_attempts = 0;
    code_page(sim, r, id, tx, Factor::Sms, None)
}

/// The form for an SMS or OnePass code, with `error` above it.
pub(crate) fn code_page(
    sim: &Sim,
    r: &Req,
    id: &str,
    tx: &mut Tx,
    factor: Factor,
    error: Option<&str>,
) -> Resp {
    let Some(a) = allowed(sim, tx, factor) else {
        return chooser(sim, r, id, tx, None);
    };
    let masked = crate::mask_phone(sim.config.accounts[a].phone.as_deref().unwrap_or(""));
    tx.step = Step::Code(factor);
    let here = resume_path(id);
    html(
        StatusCode::OK,
        pages::code(&ctx(sim, r, id, tx, &here), factor, &masked, error),
    )
}

/// `POST /factor/{sms,otp}/verify`: the code checked; a wrong one counted.
pub(crate) fn verify_code(sim: &Sim, r: &Req, id: &str, tx: &mut Tx, factor: Factor) -> Resp {
    let l = r.lang();
    let Some(a) = allowed(sim, tx, factor) else {
        return chooser(sim, r, id, tx, None);
    };
    let code = r
        .form
        .get("code")
        .map(|c| c.trim().to_owned())
        .unwrap_or_default();
    let ok = match factor {
        Factor::Sms => tx
            .sms_code
            .as_deref()
            .is_some_and(|expected| expected.as_bytes().ct_eq(code.as_bytes()).into()),
        _ => sim.config.accounts[a]
            .totp_secret
            .as_deref()
            .is_some_and(|secret| crate::totp::verify(secret, &code, unix_now())),
    };
    if ok {
        return complete(sim, tx, a, factor);
    }
    tx.code_attempts += 1;
    *sim.state()
        .failures
        .entry(sim.config.accounts[a].email.clone())
        .or_default() += 1;
    if tx.code_attempts >= MAX_CODE_ATTEMPTS {
        tx.sms_code = None;
        tx.code_attempts = 0;
        let message = l.t(
            "Preveč napačnih poskusov. Izberite način prijave znova.",
            "Too many wrong codes. Choose how to log in again.",
        );
        return chooser(sim, r, id, tx, Some(message));
    }
    let message = format!(
        "{} {}",
        l.t(
            "Napačno enkratno geslo. Preostali poskusi:",
            "Wrong one-time password. Attempts left:"
        ),
        MAX_CODE_ATTEMPTS - tx.code_attempts
    );
    code_page(sim, r, id, tx, factor, Some(&message))
}

/// `POST /factor/push`: a OnePass push "sent" (answered at `/dev/push/…`), and the waiting page.
pub(crate) fn start_push(sim: &Sim, r: &Req, id: &str, tx: &mut Tx) -> Resp {
    let Some(a) = allowed(sim, tx, Factor::Push) else {
        return chooser(sim, r, id, tx, None);
    };
    let push_id = random_token(9);
    tracing::warn!(
        email = %sim.config.accounts[a].email,
        approve = %format!("curl -k -X POST {}/dev/push/{push_id}/approve", sim.config.public_url),
        "rekono-sim OnePass push sent"
    );
    tx.push = Some((push_id, PushStatus::Pending));
    tx.step = Step::Push;
    let here = resume_path(id);
    html(
        StatusCode::OK,
        pages::push_wait(&ctx(sim, r, id, tx, &here)),
    )
}

/// `GET /factor/push/wait`: approved completes the login, rejected goes back to the chooser,
/// pending waits on.
pub(crate) fn push_wait(sim: &Sim, r: &Req, id: &str, tx: &mut Tx) -> Resp {
    let l = r.lang();
    match tx.push.as_ref().map(|(_, s)| *s) {
        Some(PushStatus::Approved) => match allowed(sim, tx, Factor::Push) {
            Some(a) => complete(sim, tx, a, Factor::Push),
            None => chooser(sim, r, id, tx, None),
        },
        Some(PushStatus::Rejected) => {
            tx.push = None;
            chooser(
                sim,
                r,
                id,
                tx,
                Some(l.t(
                    "Obvestilo je bilo zavrnjeno.",
                    "The notification was rejected.",
                )),
            )
        }
        Some(PushStatus::Pending) => {
            let here = resume_path(id);
            html(
                StatusCode::OK,
                pages::push_wait(&ctx(sim, r, id, tx, &here)),
            )
        }
        None => chooser(sim, r, id, tx, None),
    }
}

/// `GET /factor/push/status?tx=…`: the push's status as JSON, for the waiting page's script.
pub(crate) fn push_status(sim: &Sim, r: &Req) -> Resp {
    let id = r.query.get("tx").cloned().unwrap_or_default();
    let state = sim.state();
    let status = state
        .txs
        .get(&id)
        .filter(|t| r.cookies.get(BROWSER_COOKIE) == Some(&t.browser))
        .and_then(|t| t.push.as_ref().map(|(_, s)| *s));
    json_response(StatusCode::OK, &json!({ "status": status }))
}

/// `GET /factor/cert` on the certificate listener: the certificate the browser presented must
/// be one linked to the account.
pub(crate) fn certificate(sim: &Sim, r: &Req, _id: &str, tx: &mut Tx) -> Resp {
    let l = r.lang();
    if !r.conn.mtls {
        return plain(
            StatusCode::NOT_FOUND,
            "the certificate step is on the certificate listener",
        );
    }
    let Some(a) = allowed(sim, tx, Factor::Certificate) else {
        return html(
            StatusCode::FORBIDDEN,
            pages::error(
                l,
                l.t(
                    "Prijava s potrdilom za ta račun ni mogoča.",
                    "Certificate login is not available for this account.",
                ),
            ),
        );
    };
    let linked = r.conn.peer_cert.as_deref().is_some_and(|fp| {
        sim.config.accounts[a]
            .certificates
            .iter()
            .any(|c| c.as_bytes().ct_eq(fp.as_bytes()).into())
    });
    if linked {
        return complete(sim, tx, a, Factor::Certificate);
    }
    let message = if r.conn.peer_cert.is_none() {
        l.t(
            "Brskalnik ni poslal digitalnega potrdila.",
            "The browser sent no digital certificate.",
        )
    } else {
        l.t(
            "To digitalno potrdilo ni povezano z vašim računom Rekono.",
            "This digital certificate is not linked to your Rekono account.",
        )
    };
    tracing::info!(email = %sim.config.accounts[a].email, "rekono-sim: certificate not linked to the account");
    html(StatusCode::FORBIDDEN, pages::error(l, message))
}
