//! The decision for a request to a portal host: forward it with its session, send the
//! browser to the login (or a step-up), answer 401 to a script, or refuse. Pure: it reads the
//! request head and the login's state, and writes nothing.

use std::sync::Arc;

use http::HeaderMap;
use prehod_config::Portal;
use prehod_identity::session::{Method, Refusal, Session};

use crate::auth::{cookie, encode, AuthState};
use crate::pages::Message;

/// The portal page the request came from (its `Referer`), when that is a portal URL.
fn came_from(auth: &AuthState, headers: &HeaderMap) -> Option<String> {
    headers
        .get(http::header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| auth.check_return(r))
        .map(|(r, _)| r)
}

/// What to do with a request for a portal.
#[derive(Debug)]
pub enum Decision {
    /// Forward it; `session` is `None` only for portals without login.
    Allow {
        session: Option<Arc<Session>>,
        /// A new session cookie to set (idle time rolled).
        rolled: Option<String>,
    },
    /// Send the browser to this URL (the login page, or Rekono for a step-up).
    Redirect { location: String, step_up: bool },
    /// Not a browser navigation: 401 with JSON naming the login page.
    LoginRequired { login: String, reason: &'static str },
    /// Refuse with this page.
    Deny {
        message: Message,
        reason: &'static str,
    },
}

impl Decision {
    /// The `auth` label in metrics and the access log.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Allow { session: None, .. } => "none",
            Decision::Allow { .. } => "session",
            Decision::Redirect { step_up: true, .. } => "step_up",
            Decision::Redirect { .. } => "redirect",
            Decision::LoginRequired { .. } => "unauthenticated",
            Decision::Deny { .. } => "denied",
        }
    }
}

/// A browser navigation (a page load), as opposed to XHR/fetch/API calls.
fn is_navigation(method: &http::Method, headers: &HeaderMap) -> bool {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    if headers.contains_key("x-requested-with") {
        return false;
    }
    match header("sec-fetch-mode") {
        "navigate" => return true,
        "" => {}
        _ => return false,
    }
    matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::POST
    ) && header("accept").contains("text/html")
}

/// The decision for `portal`, given the request's method, headers and full URL.
pub fn decide(
    auth: Option<&AuthState>,
    portal: &Portal,
    method: &http::Method,
    headers: &HeaderMap,
    url: &str,
    now: u64,
) -> Decision {
    if portal.danger_no_authentication {
        return Decision::Allow {
            session: None,
            rolled: None,
        };
    }
    let Some(auth) = auth else {
        // The config check makes this impossible; refuse rather than forward.
        return Decision::Deny {
            message: Message::LoginFailed,
            reason: "no_login_configured",
        };
    };
    let opened = cookie(headers, &auth.cookie_name).map(|c| {
        auth.sessions.validate_on_portal(c, now).and_then(|valid| {
            // Host-only cookies name their host: another host's cookie is not a session here.
            if valid.session.host.as_deref() == auth.cookie_host(&portal.host) {
                Ok(valid)
            } else {
                Err(Refusal::Invalid)
            }
        })
    });
    let refusal = match opened {
        Some(Ok(valid)) => {
            let s = &valid.session;
            // An OpenID session only where the portal names its provider.
            let method_allowed = crate::auth::AuthState::portal_allows_session(portal, s);
            if !method_allowed {
                return Decision::Deny {
                    message: Message::MethodNotAllowed,
                    reason: "method_not_allowed",
                };
            }
            let organisation_allowed = portal.allowed_organisations.as_ref().is_none_or(|orgs| {
                s.cert.as_ref().is_some_and(|c| {
                    auth.certificates.as_ref().is_some_and(|certs| {
                        certs.checker.organisation_allowed(
                            orgs,
                            &c.organization_id,
                            &c.organization,
                        )
                    })
                })
            });
            if !organisation_allowed
                || portal
                    .allowed_users
                    .as_ref()
                    .is_some_and(|users| !users.contains(&s.sub))
            {
                return Decision::Deny {
                    message: Message::UserNotAllowed,
                    reason: "user_not_allowed",
                };
            }
            // A certificate session holds only while its certificate does: revoked since the
            // login (a newer CRL, a cached OCSP answer) or expired, it ends here.
            if let (Method::Certificate, Some(certs)) = (s.method, &auth.certificates) {
                let still =
                    s.cert
                        .as_ref()
                        .map_or(Err(prehod_identity::cert::Refusal::Unreadable), |c| {
                            certs.checker.still_valid(
                                &prehod_identity::cert::SessionCert {
                                    anchor: &c.anchor,
                                    fingerprint: s.cert_fingerprint.as_deref().unwrap_or_default(),
                                    not_after: c.not_after,
                                    revocation_keys: &c.revocation_keys,
                                    distribution_points: &c.distribution_points,
                                },
                                now as i64,
                            )
                        });
                if let Err(refusal) = still {
                    return Decision::Deny {
                        message: Message::CertificateRefused,
                        reason: refusal.label(),
                    };
                }
            }
            if s.level < portal.min_level {
                if s.method == Method::Rekono
                    && portal.allows_provider(s.method_label())
                    && is_navigation(method, headers)
                {
                    // First a page on the login host that says why (the levels), then
                    // Rekono; the application the person came from is the way back.
                    let from = came_from(auth, headers);
                    return Decision::Redirect {
                        location: auth.step_up_url(url, portal.min_level, from.as_deref()),
                        step_up: true,
                    };
                }
                return Decision::Deny {
                    message: Message::LevelTooLow,
                    reason: "level_too_low",
                };
            }
            return Decision::Allow {
                session: Some(valid.session),
                rolled: valid.rolled,
            };
        }
        Some(Err(r)) => Some(r),
        None => None,
    };
    let reason = refusal.map_or("no_session", Refusal::as_str);
    if is_navigation(method, headers) {
        let notice = matches!(
            refusal,
            Some(Refusal::IdleExpired | Refusal::AbsoluteExpired | Refusal::Revoked)
        )
        .then_some("expired");
        // Where the person came from, for a step-up the login host may find needed: the
        // Referer does not survive the single sign-on hops (`no-referrer` on redirects).
        let mut location = auth.login_page_url(url, notice);
        if let Some(from) = came_from(auth, headers) {
            location.push_str("&from=");
            location.push_str(&encode(&from));
        }
        Decision::Redirect {
            location,
            step_up: false,
        }
    } else {
        Decision::LoginRequired {
            login: auth.login_page_url(url, None),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Dev;

    /// A page load, or a script's call (`X-Requested-With`), with these cookies.
    fn headers(navigation: bool, cookie: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("accept", http::HeaderValue::from_static("text/html"));
        if !navigation {
            h.insert("x-requested-with", http::HeaderValue::from_static("fetch"));
        }
        if let Some(c) = cookie {
            h.insert("cookie", http::HeaderValue::from_str(c).expect("ascii"));
        }
        h
    }

    const NOW: u64 = 1_800_000_000;
    const URL: &str = "https://acq.bankart.localhost/orders?id=7";

    fn decide_get(dev: &Dev, portal: &Portal, h: &HeaderMap) -> Decision {
        decide(Some(dev.auth()), portal, &http::Method::GET, h, URL, NOW)
    }

    #[test]
    fn a_page_load_without_a_session_goes_to_the_login_page_and_a_script_gets_401() {
        let dev = Dev::new();
        let acq = dev.portal("acq");
        match decide_get(&dev, acq, &headers(true, None)) {
            Decision::Redirect { location, step_up } => {
                assert!(!step_up);
                let login = format!("{}/?return=", dev.auth().login_url);
                assert!(location.starts_with(&login), "{location}");
                assert!(location.contains(&encode(URL)), "{location}");
            }
            other => panic!("{other:?}"),
        }
        match decide_get(&dev, acq, &headers(false, None)) {
            Decision::LoginRequired { login, reason } => {
                assert_eq!(reason, "no_session");
                assert!(login.starts_with(&dev.auth().login_url));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_forged_cookie_is_no_session() {
        let dev = Dev::new();
        let acq = dev.portal("acq");
        let forged = format!("{}=AAAAforged", dev.auth().cookie_name);
        let d = decide_get(&dev, acq, &headers(false, Some(&forged)));
        assert!(
            matches!(
                d,
                Decision::LoginRequired {
                    reason: "invalid_session",
                    ..
                }
            ),
            "{d:?}"
        );
        assert_eq!(d.outcome(), "unauthenticated");
    }

    #[test]
    fn a_valid_session_is_forwarded_with_its_identity() {
        let dev = Dev::new();
        let acq = dev.portal("acq");
        let cookie = dev.session_cookie(&acq.host, 20, NOW);
        match decide_get(&dev, acq, &headers(true, Some(&cookie))) {
            Decision::Allow {
                session: Some(s), ..
            } => assert_eq!(s.sub, "ana42"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_level_too_low_steps_up_a_page_load_and_refuses_a_script() {
        let dev = Dev::new();
        let bws = dev.portal("bws");
        assert_eq!(bws.min_level, 30);
        let cookie = dev.session_cookie(&bws.host, 20, NOW);
        let d = decide_get(&dev, bws, &headers(true, Some(&cookie)));
        assert!(
            matches!(d, Decision::Redirect { step_up: true, .. }),
            "{d:?}"
        );
        assert_eq!(d.outcome(), "step_up");
        let d = decide_get(&dev, bws, &headers(false, Some(&cookie)));
        assert!(
            matches!(
                d,
                Decision::Deny {
                    message: Message::LevelTooLow,
                    reason: "level_too_low"
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn the_portal_policy_refuses_other_users_and_other_methods() {
        let dev = Dev::with(&[
            ("acq", "allowed_users: [bob]"),
            ("b2b", "methods: [certificate]"),
        ]);
        for (portal, reason) in [("acq", "user_not_allowed"), ("b2b", "method_not_allowed")] {
            let portal = dev.portal(portal);
            let cookie = dev.session_cookie(&portal.host, 20, NOW);
            let d = decide_get(&dev, portal, &headers(true, Some(&cookie)));
            assert!(
                matches!(d, Decision::Deny { reason: r, .. } if r == reason),
                "{d:?}"
            );
        }
    }

    #[test]
    fn a_cookie_made_for_another_host_is_no_session_here() {
        // The attack: a session cookie taken from one portal's host, replayed on another.
        let dev = Dev::new();
        let cookie = dev.session_cookie("b2b.bankart.localhost", 20, NOW);
        let d = decide_get(&dev, dev.portal("acq"), &headers(false, Some(&cookie)));
        assert!(
            matches!(
                d,
                Decision::LoginRequired {
                    reason: "invalid_session",
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn without_a_login_only_an_open_portal_is_forwarded() {
        let dev = Dev::with(&[("acq", "danger_no_authentication: true")]);
        let h = headers(true, None);
        let d = decide(None, dev.portal("acq"), &http::Method::GET, &h, URL, NOW);
        assert!(matches!(d, Decision::Allow { session: None, .. }), "{d:?}");
        assert_eq!(d.outcome(), "none");
        // The config check makes this impossible; it is refused all the same.
        let d = decide(None, dev.portal("b2b"), &http::Method::GET, &h, URL, NOW);
        assert!(
            matches!(
                d,
                Decision::Deny {
                    reason: "no_login_configured",
                    ..
                }
            ),
            "{d:?}"
        );
    }

    #[test]
    fn only_a_page_load_is_a_navigation() {
        let get = &http::Method::GET;
        assert!(is_navigation(get, &headers(true, None)));
        assert!(!is_navigation(get, &headers(false, None)));
        let mut fetch = HeaderMap::new();
        fetch.insert("sec-fetch-mode", http::HeaderValue::from_static("cors"));
        fetch.insert("accept", http::HeaderValue::from_static("text/html"));
        assert!(!is_navigation(get, &fetch));
        assert!(!is_navigation(&http::Method::PUT, &headers(true, None)));
    }
}
