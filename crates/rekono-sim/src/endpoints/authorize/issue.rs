//! The last step of a login: a new single-sign-on session, and an authorization code back to
//! the relying party — also for a login answered from an existing session.

use std::time::{Duration, Instant};

use http::StatusCode;

use crate::exchange::{append_cookie, cookie, plain, redirect, with_params, Resp, SESSION_COOKIE};
use crate::keys::random_token;
use crate::{unix_now, Code, Factor, Session, Sim, Tx};

/// How long an authorization code may wait for the token request.
const CODE_LIFETIME: Duration = Duration::from_secs(60);

/// The second factor passed: a new SSO session, a code, and back to the relying party.
pub(super) fn complete(sim: &Sim, tx: &Tx, account: usize, factor: Factor) -> Resp {
    let sid = random_token(18);
    // The level this login established: what was asked, never more than the account has.
    let acr = tx.target_level.min(sim.config.accounts[account].level);
    sim.state().sessions.insert(
        sid.clone(),
        Session {
            account,
            browser: tx.browser.clone(),
            acr,
            amr: factor.amr(),
            auth_time: unix_now(),
            clients: Default::default(),
        },
    );
    tracing::info!(email = %sim.config.accounts[account].email, ?factor, acr, "rekono-sim: login complete");
    let mut resp = issue_from_session(
        sim,
        tx.client,
        &tx.redirect_uri,
        tx.state.as_deref(),
        tx.nonce.clone(),
        &tx.code_challenge,
        &sid,
    );
    append_cookie(&mut resp, &cookie(SESSION_COOKIE, &sid, None));
    resp
}

/// A code for `client` from the SSO session `sid`, redirected to `redirect_uri` with
/// `state_param` and the issuer.
pub(super) fn issue_from_session(
    sim: &Sim,
    client: usize,
    redirect_uri: &str,
    state_param: Option<&str>,
    nonce: Option<String>,
    challenge: &str,
    sid: &str,
) -> Resp {
    let code = random_token(32);
    {
        let mut state = sim.state();
        let Some(session) = state.sessions.get_mut(sid) else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "session vanished");
        };
        session.clients.insert(client);
        let entry = Code {
            client,
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: challenge.to_owned(),
            nonce,
            sid: sid.to_owned(),
            account: session.account,
            acr: session.acr,
            amr: session.amr.clone(),
            auth_time: session.auth_time,
            expires: Instant::now() + CODE_LIFETIME,
            used: false,
            access_tokens: Vec::new(),
        };
        state
            .codes
            .retain(|_, c| c.expires > Instant::now() || c.used);
        state.codes.insert(code.clone(), entry);
    }
    let iss = sim.issuer();
    let mut params = vec![("code", code.as_str())];
    if !sim.misbehaving().omit_iss {
        params.push(("iss", iss.as_str()));
    }
    if let Some(s) = state_param {
        params.push(("state", s));
    }
    redirect(&with_params(redirect_uri, &params), &[])
}
