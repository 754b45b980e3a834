//! The forward-auth endpoint: a proxy the platform team runs in front of a portal (nginx
//! `auth_request`, ingress-nginx `auth-url`, Traefik ForwardAuth) asks the gateway, for each
//! request it holds, "is it allowed, and who is it?". `GET /forward-auth` on the login host.
//!
//! Who may ask: only a caller whose address is in `trusted_proxies` — anyone else is refused
//! 403 before a header is read, since the answer rests on the original host, URI and method
//! that the caller names ([`original`]). What is asked about: only a portal configured with
//! `forward_auth: true`, decided by the same [`crate::portal::decide`] as a request the
//! gateway proxies itself, with the session cookie the browser sent (host-only: a cookie of
//! another portal's host is no session here). The answers (docs/forward-auth.md):
//!
//! | decision | nginx contract | Traefik contract |
//! |---|---|---|
//! | allowed | 200 + identity headers + signed assertion | the same |
//! | no session, a page load | 401 | 302 to the login (+ this host's SSO nonce cookie) |
//! | no session, a script | 401 JSON | 401 JSON |
//! | below the portal's level, a page load | 403 | 302 to the step-up |
//! | refused by the portal's policy | 403 JSON | 403 page |
//!
//! The way to the login for nginx goes through the portal's host (`/.prehod/sign-in`, or the
//! front proxy handing a 401/403 to the gateway on that host), so that this browser's nonce
//! cookie is set where the single sign-on code will be taken ([`crate::sso`]).

pub mod original;

use std::sync::{Arc, LazyLock};

use prehod_config::{HttpMethods, IdentityHeader};
use prehod_identity::session::Session;

use crate::auth::AuthState;
use crate::portal::decide::Decision;
use crate::reply::Reply;
use crate::request::Request;
use crate::{PortalRuntime, Shared};
use original::{Contract, Original};

/// The endpoint's path on the login host.
pub const PATH: &str = "/forward-auth";

/// The methods the endpoint answers (nginx and Traefik ask with GET); any other is a 405.
pub static METHODS: LazyLock<HttpMethods> =
    LazyLock::new(|| HttpMethods::new(vec![http::Method::GET, http::Method::HEAD]));

/// The sign-in path under a forward-auth portal's prefix (`/.prehod/sign-in?rd=URL`), for
/// ingress-nginx's `auth-signin`.
pub const SIGN_IN_IN_PREFIX: &str = "sign-in";

/// The endpoint's answer, the portal it was about (when the caller named one the gateway
/// guards) and the `auth` label of the access log.
pub struct Checked {
    pub reply: Reply,
    pub portal: Option<Arc<PortalRuntime>>,
    pub outcome: &'static str,
}

/// Answers the forward-auth request `req`, sent from an address in `trusted_proxies` or not.
pub async fn check(shared: &Shared, req: &Request<'_>, trusted_proxy: bool) -> Checked {
    // Counted by reason (`prehod_denials_total`): an untrusted caller is someone probing.
    let refused = |status, reason| {
        shared.metrics.denials.with_label_values(&[reason]).inc();
        Checked {
            reply: refusal(req, status, reason),
            portal: None,
            outcome: "refused",
        }
    };
    // Before any header is read: what an untrusted caller names is never believed.
    if !trusted_proxy {
        return refused(403, "forward_auth_untrusted_caller");
    }
    let Some(auth) = shared.auth.as_ref() else {
        return refused(404, "forward_auth_without_login");
    };
    let original = match original::read(auth, req.headers) {
        Ok(o) => o,
        Err(why) => return refused(400, why.label()),
    };
    let Some(runtime) = shared
        .portals
        .get(original.portal)
        .filter(|p| p.config.forward_auth)
    else {
        return refused(403, "forward_auth_not_a_forward_auth_portal");
    };
    // A method the portal does not take gets no identity, as at the proxy's own gate.
    if !crate::framing::method_taken(&runtime.config.http_methods, &original.method) {
        shared
            .metrics
            .denials
            .with_label_values(&["method_not_allowed"])
            .inc();
        return Checked {
            reply: method_refused(shared, req, &runtime.config, &original),
            portal: Some(runtime.clone()),
            outcome: "refused",
        };
    }
    // A cookie this replica has not seen yet: asked about in the fleet's revocations.
    crate::state::check_unseen(shared, req.headers).await;
    let decision = crate::portal::decide::decide(
        Some(auth),
        &runtime.config,
        &original.method,
        req.headers,
        &original.url,
        prehod_identity::unix_now(),
    );
    let outcome = decision.outcome();
    Checked {
        reply: answer(shared, auth, runtime, req, &original, decision),
        portal: Some(runtime.clone()),
        outcome,
    }
}

/// The answer to `decision` in the caller's contract.
fn answer(
    shared: &Shared,
    auth: &AuthState,
    runtime: &PortalRuntime,
    req: &Request<'_>,
    original: &Original,
    decision: Decision,
) -> Reply {
    let portal = &runtime.config;
    match decision {
        Decision::Allow { session, rolled } => {
            let mut reply = Reply::status(200);
            if let Some(s) = &session {
                match identity(shared, auth, runtime, s, reply) {
                    Ok(r) => reply = r,
                    // No assertion, no pass: the portal may rely on it.
                    Err(e) => {
                        tracing::error!(request_id = req.request_id, error = %e, "signing the identity assertion");
                        return refusal(req, 500, "forward_auth_assertion_failed");
                    }
                }
            }
            // The idle time rolled: the proxy hands the browser the new cookie.
            if let Some(rolled) = rolled {
                let max_age = auth.sessions.absolute().as_secs();
                reply = reply.cookie(auth.session_cookie(&rolled, max_age));
            }
            no_store(reply)
        }
        Decision::Redirect { location, step_up } => match original.contract {
            Contract::Traefik => {
                if step_up {
                    crate::portal::step_up::started(shared, portal, req);
                }
                let post = original.method == http::Method::POST;
                no_store(to_login(auth, req, location, post && !step_up))
            }
            // nginx: its `error_page` hands the request to the gateway on the portal's host,
            // which sends the browser on (and sets its nonce cookie there).
            Contract::Nginx if step_up => refusal(req, 403, "level_too_low"),
            Contract::Nginx => crate::respond::login_required(req, &location, "no_session"),
        },
        Decision::LoginRequired { login, reason } => {
            shared.metrics.denials.with_label_values(&[reason]).inc();
            crate::respond::login_required(req, &login, reason)
        }
        Decision::Deny { message, reason } => {
            crate::portal::denied(shared, portal, req, reason);
            match original.contract {
                Contract::Nginx => refusal(req, 403, reason),
                Contract::Traefik => {
                    let mut page = crate::respond::denial(shared, Some(auth), req, message);
                    // A proxy passes only a 2xx on: any other answer is a refusal.
                    if (200..300).contains(&page.status) {
                        page.status = 403;
                    }
                    page
                }
            }
        }
    }
}

/// The answer for a method `portal` does not take. nginx's `auth_request` passes on only a
/// 401 or 403 (any other status is its 500): a 403, which the template's `error_page` hands
/// to the gateway on the portal's host, whose method gate answers the browser 405 with
/// `Allow`. Traefik passes the answer itself on: the proxy's own 405 page with `Allow`.
fn method_refused(
    shared: &Shared,
    req: &Request<'_>,
    portal: &prehod_config::Portal,
    original: &Original,
) -> Reply {
    match original.contract {
        Contract::Nginx => refusal(req, 403, "method_not_allowed"),
        Contract::Traefik => {
            let lang = req.lang_by(&shared.lang_cookie);
            let page = Reply::page(
                &shared.pages,
                crate::pages::Page::MethodNotAllowed,
                lang,
                req.request_id,
            );
            page.header("allow", portal.http_methods.allow().to_owned())
        }
    }
}

fn no_store(reply: Reply) -> Reply {
    reply
        .header("cache-control", "no-store".into())
        .without_page_headers()
}

/// `reply` with the identity of session `s` as headers, and its signed assertion for the
/// portal (the same names and values as a request the gateway forwards itself).
fn identity(
    shared: &Shared,
    auth: &AuthState,
    runtime: &PortalRuntime,
    s: &Session,
    reply: Reply,
) -> Result<Reply, prehod_identity::assertion::AssertionError> {
    let names = &shared.config.headers;
    let jwt = (auth.signer).sign_cached(s, &runtime.audience, prehod_identity::unix_now())?;
    let mut reply = reply;
    crate::identity_headers::each(s, |kind, value| {
        reply.named.push((names[kind].clone(), value));
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|never| match never {});
    // A JWT: base64url and dots, all visible ASCII.
    let jwt = String::from_utf8_lossy(jwt.as_bytes()).into_owned();
    Ok(reply.named_header(&names[IdentityHeader::Assertion], jwt))
}

/// The way to the login (or the step-up) for a browser: this host's nonce cookie and its
/// binding (`crate::sso`), as a portal host's own redirect sets them. A form cannot be kept
/// across the login here (the body stays with the proxy): a POST says so on the login page.
fn to_login(auth: &AuthState, req: &Request<'_>, mut location: String, post: bool) -> Reply {
    if post {
        location.push_str("&notice=form_not_kept");
    }
    let mut reply = Reply::status(if post { 303 } else { 302 });
    if matches!(auth.cookie_scope, prehod_config::CookieScope::Host) {
        let (nonce, bind) = crate::sso::binding_for(req.cookie(&auth.nonce_cookie));
        location.push_str("&bind=");
        location.push_str(&bind);
        reply = reply.cookie(auth.sso_nonce_cookie(&nonce));
    }
    reply.header("location", location)
}

/// `GET /.prehod/sign-in?rd=URL` on a forward-auth portal's host (ingress-nginx `auth-signin`
/// appends `rd`): the browser goes to the login and comes back to `URL` — only a URL of this
/// very portal host; anything else is a 400 and no redirect. `None` when the path is not the
/// sign-in or the portal is not a forward-auth portal (the caller answers 404).
pub fn sign_in(
    auth: &AuthState,
    portal: &prehod_config::Portal,
    req: &Request<'_>,
) -> Option<Reply> {
    let rest = req.path.strip_prefix(auth.portal_prefix.as_str())?;
    if rest != SIGN_IN_IN_PREFIX || !portal.forward_auth {
        return None;
    }
    let back = req
        .query()
        .get("rd")
        .or_else(|| req.query().get("return"))
        .and_then(|rd| auth.check_return(rd))
        .filter(|(url, _)| {
            url::Url::parse(url).is_ok_and(|u| u.host_str() == Some(portal.host.as_str()))
        });
    let reply = match back {
        Some((url, _)) => to_login(auth, req, auth.login_page_url(&url, None), false),
        None => Reply::json(
            400,
            &serde_json::json!({
                "error": "bad_return",
                "reason": "the return URL is not of this portal",
                "request_id": req.request_id,
            }),
        ),
    };
    Some(no_store(reply))
}

/// A refusal as JSON: `forbidden` (403) or `refused` (any other status), with its reason.
fn refusal(req: &Request<'_>, status: u16, reason: &str) -> Reply {
    no_store(Reply::json(
        status,
        &serde_json::json!({
            "error": if status == 403 { "forbidden" } else { "refused" },
            "reason": reason,
            "request_id": req.request_id,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{head, Dev, DEV};

    /// The dev gateway with acq and bws behind another proxy (`forward_auth: true`).
    fn gateway() -> (Dev, Shared) {
        let dev = Dev::new();
        let text = DEV
            .replace(
                "    upstream:\n      urls: [http://127.0.0.1:9101]\n",
                "    forward_auth: true\n",
            )
            .replace(
                "    upstream:\n      urls: [http://127.0.0.1:9104]\n",
                "    forward_auth: true\n",
            );
        let shared = Shared::new(dev.config(&text)).unwrap_or_else(|e| panic!("{e}"));
        (dev, shared)
    }

    fn origin(dev: &Dev, portal: &str) -> String {
        let port = dev
            .auth()
            .public_port
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        format!("https://{portal}.bankart.localhost{port}")
    }

    /// Asks the endpoint with these headers, from a trusted proxy's address or not.
    async fn ask(shared: &Shared, trusted: bool, headers: &[(&'static str, &str)]) -> Checked {
        let (uri, h) = head(PATH, headers);
        let req = Request::new(&http::Method::GET, &uri, &h, "r-fa");
        check(shared, &req, trusted).await
    }

    /// nginx's headers for `GET url`, with `cookie`, as a page load or a script's call.
    fn nginx<'a>(url: &'a str, cookie: &'a str, page_load: bool) -> Vec<(&'static str, &'a str)> {
        let mut h = vec![("x-original-url", url), ("x-original-method", "GET")];
        if !cookie.is_empty() {
            h.push(("cookie", cookie));
        }
        h.push((
            "accept",
            if page_load {
                "text/html"
            } else {
                "application/json"
            },
        ));
        h
    }

    fn reason(r: &Reply) -> String {
        let json: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
        json["reason"].as_str().unwrap_or_default().to_owned()
    }

    /// The `/pay` URL of `portal` and the cookie of a level-20 session there.
    fn signed_in(dev: &Dev, portal: &str) -> (String, String) {
        let url = format!("{}/pay", origin(dev, portal));
        let host = format!("{portal}.bankart.localhost");
        let cookie = dev.session_cookie(&host, 20, prehod_identity::unix_now());
        (url, cookie)
    }

    /// Traefik's headers for `method /pay` on `host`, with `accept` and `cookie` (none if empty).
    fn traefik<'a>(
        host: &'a str,
        method: &'a str,
        accept: &'a str,
        cookie: &'a str,
    ) -> Vec<(&'static str, &'a str)> {
        let mut h = vec![
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", host),
            ("x-forwarded-uri", "/pay"),
            ("x-forwarded-method", method),
            ("accept", accept),
        ];
        if !cookie.is_empty() {
            h.push(("cookie", cookie));
        }
        h
    }

    /// Asserts a refusal with this status and reason that names no identity.
    fn assert_refused(c: &Checked, status: u16, why: &str, case: &str) {
        assert_eq!(c.reply.status, status, "{case}");
        assert_eq!(reason(&c.reply), why, "{case}");
        assert!(c.reply.named.is_empty(), "{case}: no identity");
    }

    #[tokio::test]
    async fn an_untrusted_caller_is_refused_before_anything_it_names_is_read() {
        // The attack: a client asks the endpoint itself, naming a portal and sending a
        // person's cookie, to learn who it is (or to pass for a proxy).
        let (dev, shared) = gateway();
        let (url, cookie) = signed_in(&dev, "acq");
        let c = ask(&shared, false, &nginx(&url, &cookie, false)).await;
        assert_refused(&c, 403, "forward_auth_untrusted_caller", "untrusted");
        let counted =
            (shared.metrics.denials).with_label_values(&["forward_auth_untrusted_caller"]);
        assert_eq!(counted.get(), 1, "counted by its reason");
        // The same request from a trusted proxy passes: the refusal was the caller's.
        let c = ask(&shared, true, &nginx(&url, &cookie, false)).await;
        assert_eq!(c.reply.status, 200);
    }

    #[tokio::test]
    async fn a_method_the_portal_does_not_take_gets_no_identity() {
        // The attack: a person with a session sends the portal a method it does not take
        // (DELETE to a read-only portal, WebDAV, TRACE, a lowercase `get`) through the front
        // proxy, which asks the endpoint with that method.
        let dev = Dev::new();
        let text = DEV.replace(
            "    upstream:\n      urls: [http://127.0.0.1:9101]\n",
            "    forward_auth: true\n    http_methods: [GET, HEAD]\n",
        );
        let shared = Shared::new(dev.config(&text)).unwrap_or_else(|e| panic!("{e}"));
        let (url, cookie) = signed_in(&dev, "acq");
        let host = origin(&dev, "acq")
            .trim_start_matches("https://")
            .to_owned();
        for method in [
            "DELETE", "PUT", "PROPFIND", "TRACE", "CONNECT", "get", "FOO",
        ] {
            let mut h = nginx(&url, &cookie, false);
            h[1] = ("x-original-method", method);
            let c = ask(&shared, true, &h).await;
            assert_refused(&c, 403, "method_not_allowed", method);
            let c = ask(&shared, true, &traefik(&host, method, "text/html", &cookie)).await;
            assert_eq!(c.reply.status, 405, "{method}");
            assert_eq!(c.reply.header_value("allow"), Some("GET, HEAD"), "{method}");
            assert!(c.reply.named.is_empty(), "{method}: no identity");
        }
        // What the portal takes still passes, with the identity.
        let c = ask(&shared, true, &nginx(&url, &cookie, false)).await;
        assert_eq!(c.reply.status, 200);
        assert!(!c.reply.named.is_empty());
    }

    #[tokio::test]
    async fn a_session_is_answered_with_its_identity_and_the_signed_assertion() {
        let (dev, shared) = gateway();
        let (url, cookie) = signed_in(&dev, "acq");
        let c = ask(&shared, true, &nginx(&url, &cookie, true)).await;
        assert_eq!(c.reply.status, 200);
        assert_eq!(c.outcome, "session");
        let value = |name: &http::HeaderName| {
            c.reply
                .named
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let names = &shared.config.headers;
        assert_eq!(
            value(&names[IdentityHeader::User]).as_deref(),
            Some("ana42")
        );
        assert_eq!(value(&names[IdentityHeader::Level]).as_deref(), Some("20"));
        let jwt = value(&names[IdentityHeader::Assertion]).expect("the assertion");
        assert_eq!(jwt.split('.').count(), 3, "{jwt}");
        assert_eq!(c.reply.header_value("cache-control"), Some("no-store"));
    }

    #[tokio::test]
    async fn no_session_is_401_for_nginx_and_the_login_for_a_browser_behind_traefik() {
        let (dev, shared) = gateway();
        let origin = origin(&dev, "acq");
        let url = format!("{origin}/pay");
        for page_load in [true, false] {
            let c = ask(&shared, true, &nginx(&url, "", page_load)).await;
            assert_eq!(c.reply.status, 401, "page load {page_load}");
        }
        let host = origin.trim_start_matches("https://").to_owned();
        let c = ask(&shared, true, &traefik(&host, "GET", "text/html", "")).await;
        assert_eq!(c.reply.status, 302);
        let location = c.reply.header_value("location").expect("location");
        assert!(location.starts_with(&dev.auth().login_url), "{location}");
        assert!(location.contains(&crate::auth::encode(&url)), "{location}");
        if matches!(dev.auth().cookie_scope, prehod_config::CookieScope::Host) {
            assert!(location.contains("&bind="), "{location}");
            assert!(c
                .reply
                .cookies()
                .any(|k| k.starts_with(&dev.auth().nonce_cookie)));
        }
        let c = ask(
            &shared,
            true,
            &traefik(&host, "GET", "application/json", ""),
        )
        .await;
        assert_eq!(c.reply.status, 401);
    }

    #[tokio::test]
    async fn below_the_portals_level_is_403_for_nginx_and_the_step_up_behind_traefik() {
        let (dev, shared) = gateway();
        let (url, cookie) = signed_in(&dev, "bws");
        for page_load in [true, false] {
            let c = ask(&shared, true, &nginx(&url, &cookie, page_load)).await;
            assert_eq!(c.reply.status, 403, "page load {page_load}");
            assert_eq!(reason(&c.reply), "level_too_low");
        }
        let host = origin(&dev, "bws")
            .trim_start_matches("https://")
            .to_owned();
        let c = ask(&shared, true, &traefik(&host, "GET", "text/html", &cookie)).await;
        assert_eq!(c.reply.status, 302);
        let location = c.reply.header_value("location").expect("location");
        assert!(location.contains("/step-up?level=30"), "{location}");
    }

    #[tokio::test]
    async fn a_portal_the_gateway_proxies_itself_is_not_answered_for() {
        // The attack: a trusted proxy (or a client it lets through) names a portal that is
        // not behind it, to use the endpoint as an oracle for that portal's sessions.
        let (dev, shared) = gateway();
        let (url, cookie) = signed_in(&dev, "b2b");
        let c = ask(&shared, true, &nginx(&url, &cookie, false)).await;
        assert_refused(&c, 403, "forward_auth_not_a_forward_auth_portal", "b2b");
        let c = ask(
            &shared,
            true,
            &nginx("https://evil.example/", &cookie, false),
        )
        .await;
        assert_eq!(c.reply.status, 400);
        assert_eq!(reason(&c.reply), "forward_auth_not_a_portal");
    }

    #[tokio::test]
    async fn the_sign_in_returns_only_to_this_portals_own_host() {
        // The attack: a sign-in link that sends the person, after the login, to a host of the
        // attacker's (an open redirect), or to another portal.
        let (dev, shared) = gateway();
        let auth = shared.auth.as_ref().expect("login");
        let acq = &shared
            .portals
            .iter()
            .find(|p| p.config.name == "acq")
            .expect("acq")
            .config;
        let sign_in_to = |rd: &str| {
            let target = format!(
                "{}{SIGN_IN_IN_PREFIX}?rd={}",
                auth.portal_prefix,
                crate::auth::encode(rd)
            );
            let (uri, h) = head(&target, &[]);
            let req = Request::new(&http::Method::GET, &uri, &h, "r-si");
            sign_in(auth, acq, &req).expect("the sign-in path")
        };
        let own = format!("{}/pay?id=7", origin(&dev, "acq"));
        for foreign in [
            "https://evil.example/".to_owned(),
            format!("{}/pay", origin(&dev, "b2b")),
            format!("{}/", origin(&dev, "acq")).replace("https:", "http:"),
            "//evil.example/".to_owned(),
        ] {
            let r = sign_in_to(&foreign);
            assert_eq!(r.status, 400, "{foreign}");
            assert!(r.header_value("location").is_none(), "{foreign}");
        }
        let r = sign_in_to(&own);
        assert_eq!(r.status, 302);
        let location = r.header_value("location").expect("location");
        assert!(location.starts_with(&auth.login_url), "{location}");
        assert!(location.contains(&crate::auth::encode(&own)), "{location}");
        // Not a forward-auth portal: the path is not the sign-in's there.
        let b2b = &shared
            .portals
            .iter()
            .find(|p| p.config.name == "b2b")
            .expect("b2b")
            .config;
        let (uri, h) = head(
            &format!("{}{SIGN_IN_IN_PREFIX}?rd=x", auth.portal_prefix),
            &[],
        );
        let req = Request::new(&http::Method::GET, &uri, &h, "r-si");
        assert!(sign_in(auth, b2b, &req).is_none());
    }
}
