//! Sessions a person can see and end (OWASP ASVS 3.3.3/3.3.4), and the per-user session
//! index behind it.
//!
//! - [`Index`]: every session issued (by whom, when, how, at which level, last seen), per user
//!   — in this process, and with a `state` section also in Redis (`PREFIX user:SUB`, a sorted
//!   set of session ids by expiry, and `PREFIX sess:SID`, a hash), so that any replica lists
//!   the sessions made on all of them.
//! - `GET /sessions` on the login host: the signed-in user's active sessions, each with "end
//!   this", and "end all". The forms carry a token sealed for the session that shows them.
//! - The admin listener's API (see `crate::admin`): list and end any user's sessions.
//!
//! Ending a session is a revocation (shared with the fleet like a logout).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prehod_identity::session::Session;
use subtle::ConstantTimeEq;

use crate::auth::AuthState;
use crate::pages::{Lang, SessionRow, SessionsView};
use crate::reply::Reply;
use crate::request::Request;
pub use crate::session_entry::Entry;
use crate::Shared;

const CSRF_PURPOSE: &[u8] = b"prehod sessions page v1";
/// At most this many sessions are kept per user (the oldest are forgotten first; they still
/// expire and can still be revoked by "end all").
const MAX_PER_USER: usize = 50;
/// "Last seen" is written to Redis at most this often per session.
const SEEN_EVERY: u64 = 60;

/// The per-user session index of this process (it outlives reloads).
pub struct Index {
    local: moka::sync::Cache<String, Arc<Mutex<Vec<Entry>>>>,
}

impl Default for Index {
    fn default() -> Self {
        Self {
            local: moka::sync::Cache::builder()
                .max_capacity(200_000)
                // Longer than any session lives.
                .time_to_idle(std::time::Duration::from_secs(7 * 24 * 3600))
                .build(),
        }
    }
}

impl Index {
    /// A session was issued here.
    pub fn record(&self, s: &Session, store: Option<&Arc<crate::state::Store>>) {
        let entry = Entry::of(s);
        let list = self.local.get_with(s.sub.clone(), Arc::default);
        {
            let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
            list.retain(|e| e.sid != entry.sid);
            if list.len() >= MAX_PER_USER {
                list.remove(0);
            }
            list.push(entry.clone());
        }
        if let Some(store) = store.filter(|s| s.is_up()).cloned() {
            // Never on the request's way: a Redis that does not answer cannot hold a login.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { store.index_session(&entry).await });
            }
        }
    }

    /// A request of session `sid` was served at `now`.
    pub fn seen(&self, s: &Session, now: u64, store: Option<&Arc<crate::state::Store>>) {
        // The same session seen again within the same second on this thread (a page's
        // images, scripts and calls) changes nothing: `last_seen` counts seconds. Skipped
        // without the look-up (~1 200 instructions per request, issue 20). Another session
        // at the same address within that second would lag by less than a second.
        thread_local! {
            static LAST: std::cell::Cell<(usize, usize, u64)> =
                const { std::cell::Cell::new((0, 0, 0)) };
        }
        let this = (
            std::ptr::from_ref(self) as usize,
            std::ptr::from_ref(s) as usize,
            now,
        );
        if LAST.with(|last| last.replace(this)) == this {
            return;
        }
        let Some(list) = self.local.get(&s.sub) else {
            return;
        };
        let write = {
            let mut list = list.lock().unwrap_or_else(|e| e.into_inner());
            match list.iter_mut().find(|e| e.sid == s.sid) {
                Some(e) if now >= e.last_seen + SEEN_EVERY => {
                    e.last_seen = now;
                    true
                }
                Some(e) => {
                    e.last_seen = e.last_seen.max(now);
                    false
                }
                None => false,
            }
        };
        if let (true, Some(store)) = (write, store.filter(|s| s.is_up()).cloned()) {
            let sid = s.sid.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { store.session_seen(&sid, now).await });
            }
        }
    }

    /// `sub`'s sessions that are neither expired nor revoked, newest first: from Redis (the
    /// whole fleet's) merged with this process's.
    pub async fn list(
        &self,
        auth: &AuthState,
        sub: &str,
        now: u64,
        store: Option<&Arc<crate::state::Store>>,
    ) -> Vec<Entry> {
        let mut by_sid: HashMap<String, Entry> = HashMap::new();
        if let Some(list) = self.local.get(sub) {
            for e in list.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                by_sid.insert(e.sid.clone(), e.clone());
            }
        }
        if let Some(store) = store {
            for e in store.user_sessions(sub, now).await {
                match by_sid.get_mut(&e.sid) {
                    Some(known) => known.last_seen = known.last_seen.max(e.last_seen),
                    None => {
                        by_sid.insert(e.sid.clone(), e);
                    }
                }
            }
        }
        let mut list: Vec<Entry> = by_sid
            .into_values()
            .filter(|e| e.sub == sub && e.expires_at > now)
            .filter(|e| !auth.sessions.is_revoked_summary(&e.summary(), now))
            .collect();
        list.sort_by(|a, b| b.issued_at.cmp(&a.issued_at).then(a.sid.cmp(&b.sid)));
        list
    }
}

/// Ends `sid` of `sub` when it is one of `sub`'s active sessions; whether it was. The next
/// Rekono login of `sub` must then authenticate afresh (`crate::fresh_auth`): whoever held
/// the ended session may hold the person's Rekono single sign-on too. Their other sessions
/// live on.
pub async fn end_one(shared: &Shared, auth: &AuthState, sub: &str, sid: &str, now: u64) -> bool {
    let known = shared
        .sessions_index
        .list(auth, sub, now, shared.state.as_ref())
        .await
        .into_iter()
        .any(|e| e.sid == sid);
    if known {
        auth.sessions.revoke_sid(sid, now);
        auth.sessions.require_fresh_login(sub, now);
    }
    known
}

/// Ends every session of `sub` issued until now; the next login of `sub` must authenticate
/// afresh at Rekono (see `crate::fresh_auth`).
pub fn end_all(auth: &AuthState, sub: &str, now: u64) {
    auth.sessions.revoke_sub(sub, now);
}

fn when(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(unix).unwrap_or(0))
        .map(|t| {
            format!(
                "{}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

/// The login host's `/sessions` routes; `None` for any other path.
pub async fn handle(
    shared: &Shared,
    auth: &AuthState,
    req: &Request<'_>,
    lang: Lang,
) -> Option<Reply> {
    let route = match (req.method.as_str(), req.path) {
        ("GET", "/sessions") => Route::Page,
        ("POST", "/sessions/end") => Route::End,
        ("POST", "/sessions/end-all") => Route::EndAll,
        _ => return None,
    };
    let now = prehod_identity::unix_now();
    // Only with a valid session of the login host.
    let session = crate::auth::cookie(req.headers, &auth.cookie_name)
        .and_then(|c| auth.sessions.validate(c, now).ok())
        .filter(|v| v.session.host.as_deref() == auth.cookie_host(&auth.login_host))
        .map(|v| v.session);
    let Some(session) = session else {
        return Some(Reply::redirect(format!("{}/", auth.login_url)));
    };
    if route != Route::Page {
        let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let bound = form
            .get("csrf")
            .and_then(|t| auth.sealer.open(CSRF_PURPOSE, t).ok())
            .is_some_and(|sid| sid.ct_eq(session.sid.as_bytes()).into());
        if !bound {
            shared
                .metrics
                .denials
                .with_label_values(&["bad_sessions_token"])
                .inc();
            return Some(page(shared, auth, &session, now, lang, 403, true, req).await);
        }
        if route == Route::EndAll {
            end_all(auth, &session.sub, now);
            audit(req, &session, "end_all");
            return Some(
                Reply::redirect(format!("{}/logged-out", auth.login_url))
                    .cookie(auth.clear_session_cookie()),
            );
        }
        let sid = form.get("sid").map(String::as_str).unwrap_or_default();
        end_one(shared, auth, &session.sub, sid, now).await;
        audit(req, &session, "end_one");
        if sid == session.sid {
            // This browser's own session: a logout, which ends its whole family.
            auth.sessions.end_browser(&session, now);
            return Some(
                Reply::redirect(format!("{}/logged-out", auth.login_url))
                    .cookie(auth.clear_session_cookie()),
            );
        }
        return Some(Reply::redirect(format!("{}/sessions", auth.login_url)));
    }
    Some(page(shared, auth, &session, now, lang, 200, false, req).await)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Page,
    End,
    EndAll,
}

fn audit(req: &Request<'_>, s: &Session, reason: &'static str) {
    crate::audit::write(&crate::audit::Event {
        request_id: req.request_id,
        event: crate::audit::Kind::Logout,
        outcome: crate::audit::Outcome::Success,
        reason: Some(reason),
        sub: Some(&s.sub),
        email: Some(&s.email),
        method: Some(s.method_label()),
        level: Some(s.level),
        ..Default::default()
    });
}

#[allow(clippy::too_many_arguments)]
async fn page(
    shared: &Shared,
    auth: &AuthState,
    session: &Session,
    now: u64,
    lang: Lang,
    status: u16,
    refused: bool,
    req: &Request<'_>,
) -> Reply {
    let csrf = auth
        .sealer
        .seal(CSRF_PURPOSE, session.sid.as_bytes())
        .unwrap_or_default();
    let list = shared
        .sessions_index
        .list(auth, &session.sub, now, shared.state.as_ref())
        .await;
    let rows = list
        .iter()
        .map(|e| SessionRow {
            sid: e.sid.clone(),
            issued: when(e.issued_at),
            last_seen: when(e.last_seen),
            certificate: e.method == "certificate",
            provider: provider_name(auth, &e.method, lang),
            level: e.level,
            this: e.sid == session.sid,
        })
        .collect();
    let view = SessionsView {
        rows,
        csrf,
        refused,
    };
    let body = auth.pages.sessions(lang, &view, req.request_id);
    let mut resp = Reply::html(status, body);
    resp.headers.push(("cache-control", "no-store".into()));
    resp
}

/// How the sessions page names the provider of a session made at an OpenID provider with a
/// button of its own (its button's text, in the page's language); `None` for certificate
/// sessions and for `rekono`, which the page names with its own words.
fn provider_name(auth: &AuthState, method: &str, lang: Lang) -> Option<String> {
    let (sl, en) = auth.providers.by_id(method)?.button.clone()?;
    Some(match lang {
        Lang::Sl => sl,
        Lang::En => en,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc() {
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
        assert_eq!(when(1_796_126_907), "2026-12-01 12:08 UTC");
    }
}
