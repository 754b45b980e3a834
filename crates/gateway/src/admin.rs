//! The admin listener: `/metrics` (Prometheus), `/healthz` (the process answers) and
//! `/readyz` (every portal's upstream names resolved and health-checked at least once).
//! It is meant for a private address: it shows no identities, only counts.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use subtle::ConstantTimeEq;

pub struct Admin {
    pub(crate) live: Arc<crate::live::Live>,
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .header("cache-control", "no-store")
        .body(body)
        .unwrap_or_default()
}

#[async_trait]
impl ServeHttp for Admin {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let shared = self.live.load();
        match session.req_header().uri.path() {
            "/metrics" => {
                shared.metrics.observe(
                    &shared.config,
                    shared.auth.as_ref(),
                    prehod_identity::unix_now() as i64,
                );
                respond(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    shared.metrics.render(),
                )
            }
            "/healthz" => respond(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            "/readyz" => {
                let portals: Vec<serde_json::Value> = shared
                    .portals
                    .iter()
                    .map(|p| (&p.config, &p.pool))
                    .map(|(portal, pool)| {
                        serde_json::json!({
                            "portal": portal.name,
                            "checked": pool.is_checked(),
                            "healthy_targets": pool.targets.iter().filter(|t| t.is_healthy()).count(),
                            "targets": pool.targets.len(),
                        })
                    })
                    .collect();
                // Ready once every pool was checked: an upstream that is down makes its own
                // portal answer 502, it must not take the whole gateway out of the balancer.
                let oidc = shared.auth.as_ref().map(|a| a.provider().is_some());
                let ready =
                    shared.portals.iter().all(|p| p.pool.is_checked()) && oidc != Some(false);
                let now = prehod_identity::unix_now() as i64;
                // Certificate revocation state: shown, but a stale CRL only stops certificate
                // logins (its own policy); it does not take the gateway out of the balancer.
                let crls: Vec<serde_json::Value> = shared
                    .auth
                    .iter()
                    .flat_map(|a| a.certificates.iter())
                    .flat_map(|c| c.checker.anchors.iter())
                    .filter(|a| !a.crl_sources.is_empty())
                    .map(|a| {
                        let state = a.crl_state();
                        serde_json::json!({
                            "anchor": a.name,
                            "loaded": state.is_some(),
                            "stale": state.is_some_and(|s| now > s.next_update),
                        })
                    })
                    .collect();
                // The shared state store: shown, never a reason to be unready (each replica serves on
                // its local state meanwhile).
                let state_store = shared.state.as_ref().map(|s| s.status());
                let body = serde_json::json!({ "ready": ready, "identity_provider": oidc, "certificate_revocation": crls, "state_store": state_store, "portals": portals });
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                respond(status, "application/json", body.to_string().into_bytes())
            }
            "/sessions" | "/sessions/end" => sessions_api(&shared, session).await,
            _ => respond(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}

/// The admin API on users' sessions (see `crate::login::sessions`), behind
/// `Authorization: Bearer <admin.api_token>` (compared in constant time); without a token in
/// the configuration it does not exist (404).
///
/// - `GET /sessions?user=SUB`: the user's active sessions, as JSON.
/// - `POST /sessions/end?user=SUB&sid=SID`: ends one of them; `…&all=true`: ends them all.
async fn sessions_api(shared: &crate::Shared, session: &ServerSession) -> Response<Vec<u8>> {
    let json = |status: StatusCode, v: serde_json::Value| {
        respond(status, "application/json", v.to_string().into_bytes())
    };
    let Some(token) = &shared.config.admin.api_token else {
        return respond(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec());
    };
    let req = session.req_header();
    let given = req
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // The length of the configured token is not a secret worth a timing channel: it is
    // fixed; the bytes are compared without an early exit.
    if !bool::from(given.as_bytes().ct_eq(token.0.as_bytes())) {
        shared
            .metrics
            .denials
            .with_label_values(&["admin_api_unauthorized"])
            .inc();
        let mut r = json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "unauthorized"}),
        );
        r.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
        return r;
    }
    let query: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(req.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let (Some(auth), Some(user)) = (&shared.auth, query.get("user").filter(|u| !u.is_empty()))
    else {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "give ?user=SUBJECT (and a gateway with login)"}),
        );
    };
    let now = prehod_identity::unix_now();
    let path = req.uri.path();
    match (req.method.as_str(), path) {
        ("GET", "/sessions") => {
            let list = shared
                .sessions_index
                .list(auth, user, now, shared.state.as_ref())
                .await;
            json(
                StatusCode::OK,
                serde_json::json!({"user": user, "sessions": list}),
            )
        }
        ("POST", "/sessions/end") => {
            let ended = if query.get("all").is_some_and(|a| a == "true") {
                crate::login::sessions::end_all(auth, user, now);
                true
            } else {
                let sid = query.get("sid").map(String::as_str).unwrap_or_default();
                crate::login::sessions::end_one(shared, auth, user, sid, now).await
            };
            crate::audit::write(&crate::audit::Event {
                request_id: "admin",
                event: crate::audit::Kind::Logout,
                outcome: if ended {
                    crate::audit::Outcome::Success
                } else {
                    crate::audit::Outcome::Failure
                },
                reason: Some("admin_api"),
                sub: Some(user),
                ..Default::default()
            });
            let status = if ended {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            };
            json(status, serde_json::json!({"ended": ended}))
        }
        _ => json(
            StatusCode::METHOD_NOT_ALLOWED,
            serde_json::json!({"error": "GET /sessions or POST /sessions/end"}),
        ),
    }
}
