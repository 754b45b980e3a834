//! The login form's answer (`POST /login`): e-mail and password, a limited number of tries, and
//! the account's level of assurance against the one the relying party asked for.

use http::StatusCode;

use super::transaction::{ctx, fail_tx, resume_path};
use crate::exchange::{html, plain, redirect, Req, Resp};
use crate::{pages, Sim, Step, Tx, BASE_PATH};

/// Wrong passwords before the login is refused to the relying party.
const MAX_PASSWORD_ATTEMPTS: u32 = 5;

/// `POST /login`: on the right password, on to the factor chooser; else the form again.
pub(crate) fn login(sim: &Sim, r: &Req, id: &str, tx: &mut Tx) -> Resp {
    let email = r
        .form
        .get("email")
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let password = r.form.get("password").cloned().unwrap_or_default();
    let account = sim
        .config
        .accounts
        .iter()
        .position(|a| a.email.eq_ignore_ascii_case(&email));
    let ok =
        account.is_some_and(|a| verify_password(&sim.config.accounts[a].password_hash, &password));
    if !ok {
        return wrong_password(sim, r, id, tx, email);
    }
    let Some(a) = account else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "account vanished");
    };
    let level = sim.config.accounts[a].level;
    if tx.min_level.is_some_and(|m| m > level) {
        return fail_tx(
            sim,
            tx,
            "unmet_authentication_requirements",
            &format!("the account's level of assurance ({level}) is below the requested one"),
        );
    }
    tx.account = Some(a);
    tx.target_level = tx.min_level.unwrap_or(level);
    redirect(&format!("{BASE_PATH}/choose?tx={id}"), &[])
}

/// A wrong e-mail or password: counted, and the form again with the tries left — or, at the
/// last one, the login refused.
fn wrong_password(sim: &Sim, r: &Req, id: &str, tx: &mut Tx, email: String) -> Resp {
    tx.password_attempts += 1;
    *sim.state().failures.entry(email.clone()).or_default() += 1;
    tracing::info!(email = %email, attempts = tx.password_attempts, "rekono-sim: wrong e-mail or password");
    if tx.password_attempts >= MAX_PASSWORD_ATTEMPTS {
        return fail_tx(sim, tx, "access_denied", "too many failed login attempts");
    }
    tx.step = Step::Login {
        email: email.clone(),
    };
    let left = MAX_PASSWORD_ATTEMPTS - tx.password_attempts;
    let message = format!(
        "{} {left}",
        r.lang().t(
            "Napačen e-naslov ali geslo. Preostali poskusi:",
            "Wrong e-mail address or password. Attempts left:"
        )
    );
    let here = resume_path(id);
    html(
        StatusCode::OK,
        pages::login(&ctx(sim, r, id, tx, &here), &email, Some(&message)),
    )
}

fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}
