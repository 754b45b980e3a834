//! Login with an OpenID provider (Rekono, or another of `providers`): the start (a sealed
//! attempt per tab, naming the provider, sent to it) and the callback (at that provider's
//! own callback path only: the code exchanged there, the identity checked, its user id
//! namespaced, the session issued).

use super::context::{home_url, is_home, oidc_refusal, with_nonce, Ctx};
use super::sso::{query_bind, signed_in, FormCarry};
use super::step_up::level_too_low;
use crate::audit;
use crate::auth::AuthState;
use crate::fresh_auth::Verdict;
use crate::pages::{Action, Message, MessageView, Text};
use crate::reply::Reply;
use prehod_identity::oidc::{Attempt, Identity, OidcError};
use prehod_identity::session::{IssueError, Method, Session};
use prehod_identity::unix_now;
use std::time::Instant;
use subtle::ConstantTimeEq;

pub(super) const ATTEMPT_PURPOSE: &[u8] = b"prehod login attempt v1";
pub(super) const ATTEMPT_LIFETIME: u64 = 600;
/// At most this many login attempts (tabs) are kept per browser; older ones are dropped.
pub(super) const MAX_ATTEMPTS: usize = 5;

/// Starts a login at a provider (`provider=ID`; default: the live session's, for a step-up,
/// else the first the portal allows): a sealed attempt cookie per tab, then off to it.
pub(super) async fn start(ctx: &Ctx<'_, '_>) -> Reply {
    let auth = ctx.auth;
    // Without `return` the login was started on the login host's home, and returns there.
    let (return_to, min_level, portal) = match ctx.req.query().get("return") {
        None => (home_url(auth), 0, None),
        Some(r) => {
            let Some((return_to, portal)) = auth.check_return(r) else {
                return ctx.message(Message::BadReturn);
            };
            let Some(portal_cfg) = ctx.shared.config.portals.get(portal) else {
                return ctx.message(Message::BadReturn);
            };
            (return_to, portal_cfg.min_level, Some(portal_cfg))
        }
    };
    let now = unix_now();
    let live = ctx.session(now).map(|v| v.session);
    let Some(login_provider) = chosen_provider(
        auth,
        ctx.req.query().get("provider"),
        live.as_deref(),
        portal,
    ) else {
        return ctx.message(Message::MethodNotAllowed);
    };
    if portal.is_some_and(|p| !p.allows_provider(&login_provider.id)) {
        return ctx.message(Message::MethodNotAllowed);
    }
    let Some(provider) = login_provider.discovered() else {
        return ctx.login_failed("rekono_unavailable", Message::RekonoUnavailable);
    };
    // Never below the portal's own minimum, whatever the query says.
    let asked: u8 = ctx
        .req
        .query()
        .get("level")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let level = asked.max(min_level);
    // The provider speaks the language chosen here, and a step-up names the account logged
    // in (at this provider).
    let hints = prehod_identity::oidc::Hints {
        ui_locale: Some(ctx.lang.code().to_owned()),
        // Only a live session's e-mail: an idled-out one may be the previous person's at a
        // shared computer.
        login_hint: live
            .filter(|s| {
                s.method == Method::Rekono
                    && s.method_label() == login_provider.id
                    && !s.email.is_empty()
            })
            .map(|s| s.email.clone()),
        fresh: false,
    };
    // Under FAPI 2.0 the request is pushed to the provider first (`prehod_identity::oidc`'s
    // `par.rs`); the URL then only names it.
    let (url, attempt) = match provider.begin(level, return_to, now, &hints).await {
        Ok(started) => started,
        Err(e) => return start_failed(ctx, &e),
    };
    let form = ctx
        .req
        .query()
        .get("form")
        .filter(|f| crate::portal::keep_form::is_binding(f))
        .cloned();
    let bind = query_bind(ctx.req);
    let from = ctx
        .req
        .query()
        .get("from")
        .and_then(|f| auth.check_return(f))
        .map(|(f, _)| f);
    let existing: Vec<(String, Option<SealedAttempt>)> = attempt_cookies(ctx)
        .into_iter()
        .map(|(name, value)| (name, open_attempt(auth, &value)))
        .collect();
    let family = Some(attempt_family(ctx, &existing, now));
    let Some(mut resp) = to_rekono(
        auth,
        url,
        &SealedAttempt {
            attempt,
            form,
            bind,
            from,
            family,
            provider: Some(login_provider.id.clone()),
        },
    ) else {
        return ctx.message(Message::LoginFailed);
    };
    // Drop the oldest attempts beyond the cap (mod_auth_openidc #331: they must not pile up).
    let mut existing: Vec<(u64, String)> = existing
        .into_iter()
        .map(|(name, a)| (a.map_or(0, |a| a.attempt.created), name))
        .collect();
    existing.sort();
    let excess = (existing.len() + 1).saturating_sub(MAX_ATTEMPTS);
    for (_, name) in existing.into_iter().take(excess) {
        resp = resp.cookie(crate::cookies::set_on_path(&name, "", "/", 0));
    }
    resp
}

/// The provider a login starts at: the one `asked` names; else the live OpenID session's (a
/// step-up stays with the provider that made the session) when the portal allows it; else the
/// first provider the portal allows (the first of all on the home). `None`: no such provider.
fn chosen_provider<'a>(
    auth: &'a AuthState,
    asked: Option<&String>,
    live: Option<&Session>,
    portal: Option<&prehod_config::Portal>,
) -> Option<&'a crate::providers::LoginProvider> {
    if let Some(id) = asked {
        return auth.providers.by_id(id);
    }
    let allowed =
        |p: &crate::providers::LoginProvider| portal.is_none_or(|c| c.allows_provider(&p.id));
    live.and_then(|s| auth.providers.of_session(s))
        .filter(|p| allowed(p))
        .or_else(|| auth.providers.iter().find(|p| allowed(p)))
}

/// A login that could not be started at the provider (a pushed authorization request it
/// refused or did not answer): said as a failed login, counted, logged.
fn start_failed(ctx: &Ctx<'_, '_>, e: &OidcError) -> Reply {
    let (reason, m) = oidc_refusal(e);
    if matches!(e, OidcError::Unavailable(_)) {
        ctx.shared
            .metrics
            .oidc_errors
            .with_label_values(&["par"])
            .inc();
    }
    tracing::warn!(request_id = ctx.req.request_id, error = %e, "Rekono login could not start");
    ctx.login_failed(reason, m)
}

/// The redirect to Rekono's authorization `url` with the attempt's cookie; `None` when it
/// could not be sealed.
pub(super) fn to_rekono(auth: &AuthState, url: String, attempt: &SealedAttempt) -> Option<Reply> {
    let json = serde_json::to_vec(attempt).ok()?;
    let sealed = auth.sealer.seal(ATTEMPT_PURPOSE, &json).ok()?;
    let name = attempt_cookie_name(&auth.attempt_prefix, &attempt.attempt.state);
    // `__Host-` cookies live on `/`: the prefix is what keeps sibling hosts from planting one.
    Some(Reply::redirect(url).cookie(crate::cookies::set_on_path(
        &name,
        &sealed,
        "/",
        ATTEMPT_LIFETIME,
    )))
}

/// The session family a new login attempt of this browser joins (see `Session::family`): its
/// live session's; else that of the newest unexpired attempt it started before (two tabs
/// logging in at once, whose callbacks may cross), unless a logout ended it; else a new one.
/// A logout then ends every session those logins issue, whichever cookie the login host kept.
pub(super) fn attempt_family(
    ctx: &Ctx<'_, '_>,
    existing: &[(String, Option<SealedAttempt>)],
    now: u64,
) -> String {
    if let Some(live) = ctx.browser_session(now) {
        return live.family_id().to_owned();
    }
    existing
        .iter()
        .filter_map(|(_, a)| a.as_ref())
        .filter(|a| now.saturating_sub(a.attempt.created) <= ATTEMPT_LIFETIME)
        .max_by_key(|a| a.attempt.created)
        .and_then(|a| a.family.clone())
        .filter(|f| !ctx.auth.sessions.is_family_revoked(f, now))
        .unwrap_or_else(prehod_identity::random_id)
}

/// The attempt cookie's name: the prefix and the state's first 16 bytes (states are ASCII; any
/// other text keeps its characters up to byte 16, never a split one, and so matches no cookie).
/// Whether `state` can be one the gateway made: 16 to 128 base64url characters.
pub(super) fn is_state_shaped(state: &str) -> bool {
    (16..=128).contains(&state.len())
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) fn attempt_cookie_name(prefix: &str, state: &str) -> String {
    let end = (0..=state.len().min(16))
        .rev()
        .find(|&i| state.is_char_boundary(i))
        .unwrap_or(0);
    format!("{prefix}{}", state.get(..end).unwrap_or_default())
}

pub(super) fn attempt_cookies(ctx: &Ctx<'_, '_>) -> Vec<(String, String)> {
    crate::cookies::pairs(ctx.req.headers)
        .filter(|(n, _)| n.starts_with(&ctx.auth.attempt_prefix))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// The attempt cookie's content: the OIDC attempt, and the binding of a form kept just before
/// it (see [`crate::portal::keep_form`]).
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct SealedAttempt {
    #[serde(flatten)]
    attempt: Attempt,
    #[serde(default)]
    form: Option<String>,
    /// The binding of the browser at the portal that sent it here (see [`crate::sso`]).
    #[serde(default)]
    bind: Option<String>,
    /// The application the person came from (a step-up's), for the way back if it fails.
    #[serde(default)]
    from: Option<String>,
    /// The session family the login joins ([`attempt_family`]).
    #[serde(default)]
    family: Option<String>,
    /// The provider the login was started at: its answer is taken only at that provider's
    /// callback and redeemed only there. `None` in an attempt from before providers were a
    /// list: `rekono`.
    #[serde(default)]
    provider: Option<String>,
}

pub(super) fn open_attempt(auth: &AuthState, value: &str) -> Option<SealedAttempt> {
    let plain = auth.sealer.open(ATTEMPT_PURPOSE, value).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// At a Rekono login's callback: the `Set-Cookie` that binds the form kept before this login
/// attempt to the session it made, or clears a kept form that is not this login's.
pub(super) fn bind_kept_form(
    ctx: &Ctx<'_, '_>,
    form: Option<&str>,
    attempt: &Attempt,
    session: &Session,
    over_live_session: bool,
    now: u64,
) -> Option<String> {
    let auth = ctx.auth;
    let kept = crate::auth::cookie(ctx.req.headers, &auth.post_cookie)?;
    let bound = form.filter(|_| !over_live_session).and_then(|f| {
        crate::portal::keep_form::bind(
            &auth.sealer,
            kept,
            f,
            &attempt.return_to,
            attempt.created,
            session,
            now,
        )
    });
    Some(match bound {
        Some(v) => auth.post_cookie(&v, crate::portal::keep_form::LIFETIME),
        None => auth.clear_post_cookie(),
    })
}

pub(super) async fn callback(ctx: &Ctx<'_, '_>) -> Reply {
    let auth = ctx.auth;
    let q = &ctx.req.query();
    // The gateway's states are base64url: anything else names no attempt, and so never
    // reaches a cookie name (a response header).
    let state = q.get("state").filter(|s| is_state_shaped(s));
    let name = state.map(|s| attempt_cookie_name(&auth.attempt_prefix, s));
    let sealed = name.as_ref().and_then(|name| {
        attempt_cookies(ctx)
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| open_attempt(auth, &v))
            .filter(|a| {
                state.is_some_and(|s| a.attempt.state.as_bytes().ct_eq(s.as_bytes()).into())
            })
    });
    let clear = crate::cookies::set_on_path(name.as_deref().unwrap_or_default(), "", "/", 0);
    if let Some(error) = q.get("error") {
        // RFC 9207 2.4: an error response names its issuer too; one of another issuer (a
        // mix-up), or without the `iss` the provider promised, is not this provider's word.
        let iss = q.get("iss").map(String::as_str);
        let resp = match auth
            .providers
            .by_callback(ctx.req.path)
            .and_then(|p| p.discovered())
            .map(|p| p.check_response_iss(iss))
        {
            Some(Err(e)) => {
                let (reason, m) = oidc_refusal(&e);
                ctx.login_failed(reason, m)
            }
            _ => provider_refusal(ctx, error, sealed.as_ref()),
        };
        // Only an attempt of this browser's is ended.
        return if sealed.is_some() {
            resp.cookie(clear)
        } else {
            resp
        };
    }
    if !q.contains_key("state") {
        return ctx.login_failed("missing_state", Message::LoginFailed);
    }
    let Some(SealedAttempt {
        attempt,
        form,
        bind,
        from,
        family,
        provider: attempt_provider,
    }) = sealed
    else {
        return ctx.login_failed("state_mismatch", Message::LoginFailed);
    };
    // The answer came back to one provider's callback: it must be the provider this login
    // was started at (a code or state of one provider is never taken for another's).
    let Some(login_provider) = auth.providers.by_callback(ctx.req.path) else {
        return ctx.message(Message::NotFound);
    };
    let started_at = attempt_provider
        .as_deref()
        .unwrap_or(prehod_identity::oidc::DEFAULT_PROVIDER);
    if started_at != login_provider.id {
        return ctx
            .login_failed("provider_mismatch", Message::LoginFailed)
            .cookie(clear);
    }
    let now = unix_now();
    if now.saturating_sub(attempt.created) > ATTEMPT_LIFETIME {
        return ctx
            .login_failed("attempt_expired", Message::LoginFailed)
            .cookie(clear);
    }
    let Some(code) = q.get("code") else {
        return ctx
            .login_failed("missing_code", Message::LoginFailed)
            .cookie(clear);
    };
    let Some(provider) = login_provider.discovered() else {
        return ctx.login_failed("rekono_unavailable", Message::RekonoUnavailable);
    };
    let started = Instant::now();
    let result = provider
        .finish(code, q.get("iss").map(String::as_str), &attempt, now)
        .await;
    let metrics = &ctx.shared.metrics;
    metrics
        .oidc_duration
        .with_label_values(&["token"])
        .observe(started.elapsed().as_secs_f64());
    let method = login_provider.id.as_str();
    let identity = match result {
        // The provider's `sub` and `sid` as the gateway's ids: namespaced by the provider.
        Ok(mut i) => {
            i.sub = login_provider.user_id(&i.sub);
            i.op_sid = i.op_sid.map(|sid| login_provider.op_sid(&sid));
            i
        }
        Err(e) => {
            let (reason, m) = oidc_refusal(&e);
            if matches!(e, OidcError::Unavailable(_)) {
                metrics.oidc_errors.with_label_values(&["token"]).inc();
            }
            tracing::warn!(request_id = ctx.req.request_id, provider = method, error = %e, "OpenID login failed");
            if m == Message::LevelTooLow {
                let (view, nonce) = level_too_low(ctx, Some(&attempt.return_to), from.as_deref());
                return with_nonce(ctx, ctx.login_failed_page(reason, &view), nonce).cookie(clear);
            }
            return ctx.login_failed(reason, m).cookie(clear);
        }
    };
    // When the person last ended all their sessions, or one of them from the sessions page
    // (read before the browser's session, which that may have ended).
    let revoked_at =
        crate::fresh_auth::fresh_login_required_after(ctx.shared, auth, &identity.sub, now).await;
    // The browser's session even if it idled out on this host (it may be in use on a portal).
    let live = ctx.browser_session(now);
    // A login never replaces the live session of another person: a step-up that comes back
    // with another Rekono account is refused, and the session stays as it was.
    if let Some(s) = live.as_ref().filter(|s| s.sub != identity.sub) {
        metrics.logins.with_label_values(&[method, "failure"]).inc();
        metrics.denials.with_label_values(&["other_user"]).inc();
        ctx.audit(audit::Event {
            event: crate::audit::Kind::StepUp,
            outcome: crate::audit::Outcome::Failure,
            reason: Some("other_user"),
            sub: Some(&s.sub),
            email: Some(&s.email),
            method: Some(method),
            level: Some(attempt.level),
            ..Default::default()
        });
        let log_out = ctx.log_out_label();
        return ctx
            .message_action(Message::StepUpOtherUser, "/logout", &log_out)
            .cookie(clear);
    }
    // A login from before the person ended all their sessions: once more, fresh.
    match crate::fresh_auth::verdict(revoked_at, identity.auth_time, attempt.fresh) {
        Verdict::Accept => {}
        Verdict::AskAgain => {
            let again = SealedAttempt {
                attempt,
                form,
                bind,
                from,
                family,
                provider: Some(login_provider.id.clone()),
            };
            return ask_again_fresh(ctx, &identity, again, now)
                .await
                .cookie(clear);
        }
        Verdict::Refuse => {
            return ctx
                .login_failed("not_fresh", Message::FreshLoginRequired)
                .cookie(clear)
        }
    }
    // The browser's session family: its live session's, else the attempt's unless a logout
    // ended it meanwhile.
    let family = match &live {
        Some(s) => Some(s.family_id().to_owned()),
        None => family.filter(|f| !auth.sessions.is_family_revoked(f, now)),
    };
    let session = Session {
        name: identity.name,
        email: identity.email,
        amr: identity.amr,
        auth_time: identity.auth_time.unwrap_or(now),
        op_sid: identity.op_sid.map(Box::from),
        id_token: Some(identity.id_token),
        family: family.map(Box::from),
        provider: Some(login_provider.id.as_str().into()),
        ..Session::new(Method::Rekono, identity.sub, identity.level)
    };
    let (session, _) = match auth.sessions.issue(session, now) {
        Ok(issued) => issued,
        Err(e @ IssueError::RevocationStoreFull { .. }) => {
            tracing::error!(error = %e, "login refused: the revocation store is full");
            return ctx.login_failed("revocation_store_full", Message::LoginFailed);
        }
        Err(IssueError::Seal(_)) => return ctx.login_failed("seal_failed", Message::LoginFailed),
    };
    // The same person logged in again (a step-up): the earlier session ends, so that no
    // portal cookie of it outlives the next logout.
    if let Some(old) = &live {
        auth.sessions.revoke_session(old, now);
    }
    metrics.logins.with_label_values(&[method, "success"]).inc();
    let portal = auth
        .check_return(&attempt.return_to)
        .and_then(|(_, p)| ctx.shared.config.portals.get(p))
        .map(|p| p.name.as_str());
    ctx.audit(audit::Event {
        event: crate::audit::Kind::Login,
        outcome: crate::audit::Outcome::Success,
        sub: Some(&session.sub),
        email: Some(&session.email),
        portal,
        method: Some(method),
        level: Some(session.level),
        ..Default::default()
    });
    // Started on the login host's home: its own cookie, and back to the home.
    if is_home(auth, &attempt.return_to) {
        let here = auth.cookie_host(&auth.login_host);
        return match auth.sessions.cookie_for(&session, here) {
            Ok(own) => Reply::redirect(home_url(auth))
                .cookie(auth.session_cookie(&own, auth.sessions.absolute().as_secs()))
                .cookie(clear),
            Err(_) => ctx.login_failed("seal_failed", Message::LoginFailed),
        };
    }
    let form = FormCarry {
        form: form.as_deref(),
        attempt_created: attempt.created,
        over_live_session: live.is_some(),
    };
    let resp = match auth.cookie_scope {
        // One cookie for every host: the login host sees the kept form and binds it here.
        prehod_config::CookieScope::ParentDomain(_) => {
            let kept = bind_kept_form(
                ctx,
                form.form,
                &attempt,
                &session,
                form.over_live_session,
                now,
            );
            signed_in(auth, &session, &attempt.return_to, None, None, None).map(|r| match kept {
                Some(k) => r.cookie(k),
                None => r,
            })
        }
        // Host-only: the kept form is the portal's cookie; the code takes the binding there.
        prehod_config::CookieScope::Host => signed_in(
            auth,
            &session,
            &attempt.return_to,
            Some(&auth.login_host),
            Some(&form),
            bind.as_deref(),
        ),
    };
    match resp {
        Some(resp) => resp.cookie(clear),
        None => ctx.login_failed("seal_failed", Message::LoginFailed),
    }
}

/// Starts the login again, once, asking Rekono for a fresh authentication of the account that
/// came back (see `crate::fresh_auth`); the new attempt keeps the old one's way back.
pub(super) async fn ask_again_fresh(
    ctx: &Ctx<'_, '_>,
    identity: &Identity,
    was: SealedAttempt,
    now: u64,
) -> Reply {
    let login_provider = was
        .provider
        .as_deref()
        .and_then(|id| ctx.auth.providers.by_id(id));
    let Some(provider) = login_provider.and_then(|p| p.discovered()) else {
        return ctx.login_failed("rekono_unavailable", Message::RekonoUnavailable);
    };
    let hints = crate::fresh_auth::hints(ctx.lang.code(), &identity.email);
    let (url, attempt) = match provider
        .begin(
            was.attempt.level,
            was.attempt.return_to.clone(),
            now,
            &hints,
        )
        .await
    {
        Ok(started) => started,
        Err(e) => return start_failed(ctx, &e),
    };
    ctx.audit(audit::Event {
        event: crate::audit::Kind::Login,
        outcome: crate::audit::Outcome::Started,
        reason: Some("fresh_authentication"),
        sub: Some(&identity.sub),
        email: Some(&identity.email),
        method: was.provider.as_deref(),
        level: Some(attempt.level),
        ..Default::default()
    });
    to_rekono(ctx.auth, url, &SealedAttempt { attempt, ..was })
        .unwrap_or_else(|| ctx.message(Message::LoginFailed))
}

/// Rekono answered the login with an error: say why in words, and offer the way on.
pub(super) fn provider_refusal(
    ctx: &Ctx<'_, '_>,
    error: &str,
    sealed: Option<&SealedAttempt>,
) -> Reply {
    let return_to = sealed.map(|s| s.attempt.return_to.as_str());
    let description = ctx
        .req
        .query()
        .get("error_description")
        .map(String::as_str)
        .unwrap_or_default();
    match error {
        "unmet_authentication_requirements" => {
            let (view, nonce) =
                level_too_low(ctx, return_to, sealed.and_then(|s| s.from.as_deref()));
            with_nonce(ctx, ctx.login_failed_page("level_too_low", &view), nonce)
        }
        // The person went back from Rekono's screens: to the Bankart login page again.
        "access_denied" if description.contains("cancel") => {
            ctx.login_failed("cancelled", Message::Denied);
            Reply::redirect(ctx.login_page_link(return_to))
        }
        _ => {
            // Rekono's own words are not shown (anyone can craft a callback link): the known
            // reasons are said in ours.
            let (reason, why) = if description.contains("too many") {
                ("too_many_attempts", Text::RefusalTooManyAttempts)
            } else if error == "access_denied" {
                ("denied_by_provider", Text::RefusalNotConfirmed)
            } else {
                ("denied_by_provider", Text::RefusalRefused)
            };
            let mut view = MessageView::new(Message::Denied);
            view.extra.push(ctx.text(why));
            view.actions.push(Action {
                url: ctx.login_page_link(return_to),
                label: ctx.text(Text::TryAgain),
                id: "retry",
                secondary: false,
            });
            ctx.login_failed_page(reason, &view)
        }
    }
}
