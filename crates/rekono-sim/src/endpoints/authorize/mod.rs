//! `GET /authorize` and the login it starts, one step a module: the request checked
//! ([`request`]), the login form ([`password`]), the second factor ([`second_factor`]), and the
//! code issued ([`issue`]); [`transaction`] is what the steps between share. This file is the
//! endpoint itself: silent authentication, single sign-on, or a new login transaction.

pub(super) mod password;
pub(super) mod second_factor;
pub(super) mod transaction;

mod issue;
pub(super) mod request;

use std::time::Instant;

use http::StatusCode;

use self::issue::issue_from_session;
use self::request::{error_redirect, AuthRequest};
use self::second_factor::{chooser, code_page, push_wait};
use self::transaction::{ctx, links, resume_path, TX_LIFETIME};
use crate::exchange::{
    append_cookie, cookie, html, Req, Resp, BROWSER_COOKIE, LANG_COOKIE, SESSION_COOKIE,
};
use crate::keys::random_token;
use crate::pages::{self, Ctx};
use crate::{unix_now, Sim, Step, Tx, AUTHORIZE_LOG};

/// `GET /authorize`: the code flow with PKCE, answered from the SSO session when it may be,
/// else with the login form of a new transaction.
pub(super) fn authorize(sim: &Sim, r: &Req) -> Resp {
    record(sim, r);
    let query = match pushed_or_query(sim, r) {
        Ok(q) => q,
        Err((sl, en)) => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::error(r.lang(), r.lang().t(sl, en)),
            )
        }
    };
    let a = match AuthRequest::parse(&sim.config.clients, &query) {
        Ok(a) => a,
        Err(refusal) => return refusal.into_response(r.lang(), &sim.issuer()),
    };
    if a.prompt_none {
        return silent(sim, r, &a);
    }
    let mut set_cookies = Vec::new();
    // OIDC ui_locales: the relying party's language choice holds for the whole login.
    if let Some(locale) = &a.ui_locale {
        let code = if locale.starts_with("en") { "en" } else { "sl" };
        set_cookies.push(cookie(LANG_COOKIE, code, Some(31_536_000)));
    }
    let browser = match r.cookies.get(BROWSER_COOKIE) {
        Some(b) if b.len() >= 16 => b.clone(),
        _ => {
            let b = random_token(16);
            set_cookies.push(cookie(BROWSER_COOKIE, &b, None));
            b
        }
    };
    // Single sign-on: an existing session that is strong and fresh enough gets a code at once.
    if !a.prompt_login {
        if let Some(resp) = single_sign_on(sim, r, &a, &browser) {
            return resp;
        }
    }
    let mut resp = start(sim, r, a, browser);
    for c in set_cookies {
        append_cookie(&mut resp, &c);
    }
    resp
}

/// The authorization request's parameters: those pushed earlier (RFC 9126) that its
/// `request_uri` names — once, unexpired, for the same `client_id` — or, outside FAPI 2.0
/// mode, its query. An unknown, used or expired `request_uri`, or a plain request in FAPI 2.0
/// mode, is refused with the error page's text (SL, EN): nothing can be redirected safely.
fn pushed_or_query(
    sim: &Sim,
    r: &Req,
) -> Result<std::collections::HashMap<String, String>, (&'static str, &'static str)> {
    let Some(uri) = r.query.get("request_uri") else {
        if sim.config.fapi2 {
            return Err((
                "Zahteva mora biti poslana prek PAR (request_uri).",
                "The request must be pushed first (PAR, request_uri).",
            ));
        }
        return Ok(r.query.clone());
    };
    // Used once: taken out whatever happens next.
    let pushed = sim.state().pushed.remove(uri);
    match pushed {
        Some(p)
            if p.expires > Instant::now()
                && r.query.get("client_id") == Some(&sim.config.clients[p.client].client_id) =>
        {
            Ok(p.params)
        }
        _ => Err((
            "Neznan, že uporabljen ali potekel request_uri.",
            "Unknown, used or expired request_uri.",
        )),
    }
}

/// Keeps the query of the request for [`Sim::authorization_requests`] (at most
/// [`AUTHORIZE_LOG`], the oldest dropped): what a relying party really sent.
fn record(sim: &Sim, r: &Req) {
    let raw = r.path_and_query.split_once('?').map_or("", |(_, q)| q);
    let mut state = sim.state();
    let log = &mut state.authorize_log;
    if log.len() >= AUTHORIZE_LOG {
        log.remove(0);
    }
    log.push(
        url::form_urlencoded::parse(raw.as_bytes())
            .into_owned()
            .collect(),
    );
}

/// `prompt=none`: a code from the SSO session if it is strong enough, else `login_required`.
fn silent(sim: &Sim, r: &Req, a: &AuthRequest) -> Resp {
    let fresh = r.cookies.get(SESSION_COOKIE).and_then(|sid| {
        let state = sim.state();
        state.sessions.get(sid).map(|s| (sid.clone(), s.acr))
    });
    match fresh {
        Some((sid, acr)) if a.min_level.is_none_or(|m| acr >= m) => issue(sim, a, &sid),
        _ => error_redirect(
            &a.redirect_uri,
            a.state.as_deref(),
            &sim.issuer(),
            "login_required",
            "no session",
        ),
    }
}

/// A code from the SSO session of this browser, if it has one that is strong enough for the
/// level asked and fresh enough for `max_age`.
fn single_sign_on(sim: &Sim, r: &Req, a: &AuthRequest, browser: &str) -> Option<Resp> {
    let sid = r.cookies.get(SESSION_COOKIE)?;
    let usable = {
        let state = sim.state();
        state.sessions.get(sid).is_some_and(|s| {
            s.browser == browser
                && a.min_level.is_none_or(|m| s.acr >= m)
                && a.max_age
                    .is_none_or(|age| unix_now().saturating_sub(s.auth_time) <= age)
        })
    };
    usable.then(|| issue(sim, a, sid))
}

fn issue(sim: &Sim, a: &AuthRequest, sid: &str) -> Resp {
    issue_from_session(
        sim,
        a.client,
        &a.redirect_uri,
        a.state.as_deref(),
        a.nonce.clone(),
        &a.code_challenge,
        sid,
    )
}

/// A new login transaction for this browser, and its first screen: the login form.
fn start(sim: &Sim, r: &Req, a: AuthRequest, browser: String) -> Resp {
    let id = random_token(18);
    let email = a.login_hint.unwrap_or_default();
    let tx = Tx {
        client: a.client,
        redirect_uri: a.redirect_uri,
        state: a.state,
        nonce: a.nonce,
        code_challenge: a.code_challenge,
        min_level: a.min_level,
        target_level: 0,
        browser,
        csrf: random_token(18),
        created: Instant::now(),
        account: None,
        password_attempts: 0,
        code_attempts: 0,
        sms_code: None,
        push: None,
        step: Step::Login {
            email: email.clone(),
        },
    };
    let here = resume_path(&id);
    let page = pages::login(
        &Ctx {
            lang: r.lang(),
            client_name: &sim.config.clients[tx.client].name,
            tx: &id,
            csrf: &tx.csrf,
            here: &here,
            links: links(sim),
        },
        &email,
        None,
    );
    {
        let mut state = sim.state();
        state.txs.retain(|_, t| t.created.elapsed() < TX_LIFETIME);
        state.txs.insert(id, tx);
    }
    html(StatusCode::OK, page)
}

/// `GET /resume?tx=…`: the transaction's current screen again (after a language switch).
pub(super) fn resume(sim: &Sim, r: &Req, id: &str, tx: &mut Tx) -> Resp {
    match tx.step.clone() {
        Step::Login { email } => {
            let here = resume_path(id);
            html(
                StatusCode::OK,
                pages::login(&ctx(sim, r, id, tx, &here), &email, None),
            )
        }
        Step::Chooser => chooser(sim, r, id, tx, None),
        Step::Code(factor) => code_page(sim, r, id, tx, factor, None),
        Step::Push => push_wait(sim, r, id, tx),
    }
}
