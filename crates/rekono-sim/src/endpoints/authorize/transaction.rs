//! A login transaction's screens share this: finding the transaction a request names (checked
//! against the browser and, for a POST, the CSRF token), what every page of it needs, and
//! ending it with an error for the relying party.

use std::time::Duration;

use http::{header, StatusCode};
use subtle::ConstantTimeEq;

use crate::exchange::{html, plain, redirect, with_params, Req, Resp, BROWSER_COOKIE};
use crate::pages::{self, Ctx};
use crate::{Sim, Tx, BASE_PATH};

/// How long a login may take, from `authorize` to the code.
pub(super) const TX_LIFETIME: Duration = Duration::from_secs(600);

/// Runs `f` on the transaction named by the request, after checking it belongs to this
/// browser and (for POSTs) that the CSRF token matches.
pub(crate) fn with_tx(
    sim: &Sim,
    r: &Req,
    post: bool,
    f: impl FnOnce(&Sim, &Req, &str, &mut Tx) -> Resp,
) -> Resp {
    let l = r.lang();
    let source = if post { &r.form } else { &r.query };
    let id = source.get("tx").cloned().unwrap_or_default();
    let mut state = sim.state();
    let Some(tx) = state
        .txs
        .get_mut(&id)
        .filter(|t| t.created.elapsed() < TX_LIFETIME)
    else {
        drop(state);
        return html(
            StatusCode::BAD_REQUEST,
            pages::error(
                l,
                l.t(
                    "Prijava je potekla ali ne obstaja. Začnite znova v aplikaciji.",
                    "This login has expired or does not exist. Start again from the application.",
                ),
            ),
        );
    };
    let browser_ok = r
        .cookies
        .get(BROWSER_COOKIE)
        .is_some_and(|b| b.as_bytes().ct_eq(tx.browser.as_bytes()).into());
    let csrf_ok = !post
        || source
            .get("csrf")
            .is_some_and(|c| c.as_bytes().ct_eq(tx.csrf.as_bytes()).into());
    if !browser_ok || !csrf_ok {
        drop(state);
        return html(
            StatusCode::FORBIDDEN,
            pages::error(
                l,
                l.t(
                    "Zahteva ni veljavna (CSRF).",
                    "The request is not valid (CSRF).",
                ),
            ),
        );
    }
    // The handler needs the simulator's other state too: take the transaction out meanwhile.
    let mut tx_owned = match state.txs.remove(&id) {
        Some(t) => t,
        None => return plain(StatusCode::INTERNAL_SERVER_ERROR, "transaction vanished"),
    };
    drop(state);
    let resp = f(sim, r, &id, &mut tx_owned);
    // A finished transaction (code issued or refused) is not put back.
    if resp.status() != StatusCode::SEE_OTHER
        || resp
            .headers()
            .get(header::LOCATION)
            .is_some_and(|l| l.to_str().is_ok_and(|l| l.starts_with(BASE_PATH)))
    {
        sim.state().txs.insert(id, tx_owned);
    }
    resp
}

/// What every page of transaction `id` needs; `here` shows the page again.
pub(super) fn ctx<'a>(sim: &'a Sim, r: &'a Req, id: &'a str, tx: &'a Tx, here: &'a str) -> Ctx<'a> {
    Ctx {
        lang: r.lang(),
        client_name: &sim.config.clients[tx.client].name,
        tx: id,
        csrf: &tx.csrf,
        here,
        links: links(sim),
    }
}

/// The page a language switch comes back to: the transaction's current screen, by GET (a
/// page reached by a form POST cannot be loaded again).
pub(super) fn resume_path(id: &str) -> String {
    format!("{BASE_PATH}/resume?tx={id}")
}

/// Rekono's own pages the login screen links to.
pub(super) fn links(sim: &Sim) -> pages::Links<'_> {
    pages::Links {
        forgot_password: &sim.config.forgot_password_url,
        create_account: &sim.config.create_account_url,
    }
}

/// An error back to the relying party, ending the transaction.
pub(super) fn fail_tx(sim: &Sim, tx: &Tx, error: &str, description: &str) -> Resp {
    let iss = sim.issuer();
    let mut params = vec![
        ("error", error),
        ("error_description", description),
        ("iss", iss.as_str()),
    ];
    if let Some(s) = &tx.state {
        params.push(("state", s));
    }
    redirect(&with_params(&tx.redirect_uri, &params), &[])
}

/// `POST /abort`: the person cancelled the login.
pub(crate) fn abort(sim: &Sim, _: &Req, _: &str, tx: &mut Tx) -> Resp {
    fail_tx(sim, tx, "access_denied", "login cancelled by the user")
}
