//! For the tests of the relying party: a test-only provider on loopback whose token endpoint
//! answers with whatever a test puts there: ID tokens signed with the provider's key but with
//! bad claims, malformed responses, and failures.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Attempt, ClientAuth, Identity, OidcError, Provider, Settings};

pub(super) const CLIENT: &str = "prehod-test";

/// What the token endpoint answers: status and body.
pub(super) type Answer = Arc<Mutex<(u16, String)>>;

pub(super) struct TestProvider {
    pub(super) issuer: String,
    pub(super) kid: String,
    pub(super) key: jsonwebtoken::EncodingKey,
    pub(super) answer: Answer,
    /// How many times the JWKS was fetched.
    pub(super) jwks_fetches: Arc<std::sync::atomic::AtomicUsize>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl TestProvider {
    pub(super) async fn start() -> Self {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let pkey = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let pem = pkey.private_key_to_pem_pkcs8().unwrap();
        let signer = crate::assertion::Signer::new(&pem, String::new(), 60).unwrap();
        let jwks = signer.jwks().to_string();
        let kid = signer.jwks()["keys"][0]["kid"].as_str().unwrap().to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let discovery = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "authorization_response_iss_parameter_supported": true,
        })
        .to_string();
        let answer: Answer = Arc::new(Mutex::new((500, String::new())));
        let shared = answer.clone();
        let jwks_fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = jwks_fetches.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (discovery, jwks, answer, counter) = (
                    discovery.clone(),
                    jwks.clone(),
                    shared.clone(),
                    counter.clone(),
                );
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // Enough of the request to route it: the request line and headers.
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let line = String::from_utf8_lossy(&request);
                    let path = line.split(' ').nth(1).unwrap_or("");
                    let (status, body) = match path {
                        "/.well-known/openid-configuration" => (200, discovery),
                        "/jwks" => {
                            counter.fetch_add(1, Ordering::SeqCst);
                            (200, jwks)
                        }
                        _ => answer.lock().unwrap().clone(),
                    };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                });
            }
        });
        Self {
            issuer,
            kid,
            key: jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap(),
            answer,
            jwks_fetches,
            task,
        }
    }

    pub(super) fn settings(&self, client_auth: ClientAuth) -> Settings {
        Settings {
            issuer: self.issuer.clone(),
            client_id: CLIENT.into(),
            client_auth,
            redirect_uri: "https://login.example/oidc/callback".into(),
            scopes: vec!["openid".into()],
            acr_levels: vec![("10".into(), 10), ("20".into(), 20), ("30".into(), 30)],
            extra_roots: vec![],
            timeout: Duration::from_secs(2),
            max_skew: Duration::from_secs(60),
            profile: crate::oidc::Profile::Default,
            userinfo: false,
        }
    }

    /// The claims of a good ID token for `attempt`.
    pub(super) fn claims(&self, attempt: &Attempt, now: u64) -> serde_json::Value {
        serde_json::json!({
            "iss": self.issuer,
            "sub": "user-1",
            "aud": CLIENT,
            "exp": now + 300,
            "iat": now,
            "nonce": attempt.nonce,
            "acr": "20",
        })
    }

    pub(super) fn answer_with_id_token(&self, claims: &serde_json::Value) {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        let jwt = jsonwebtoken::encode(&header, claims, &self.key).unwrap();
        self.answer_raw(
            200,
            serde_json::json!({"access_token": "a", "token_type": "Bearer", "id_token": jwt})
                .to_string(),
        );
    }

    pub(super) fn answer_raw(&self, status: u16, body: String) {
        *self.answer.lock().unwrap() = (status, body);
    }
}

/// Every way the gateway authenticates at the token endpoint: a secret, and a client
/// assertion signed by an EC and by an RSA key (they build the request differently, so each
/// is tried).
pub(super) fn client_auths() -> Vec<ClientAuth> {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key = openssl::ec::EcKey::generate(&group).unwrap();
    let pem = openssl::pkey::PKey::from_ec_key(key)
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    let rsa_pem = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap())
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    vec![
        ClientAuth::Secret("secret".into()),
        ClientAuth::PrivateKeyJwt {
            key_pem: pem,
            rsa: false,
        },
        ClientAuth::PrivateKeyJwt {
            key_pem: rsa_pem,
            rsa: true,
        },
    ]
}

pub(super) async fn login(
    op: &TestProvider,
    auth: ClientAuth,
    claims: Option<serde_json::Value>,
) -> Result<Identity, OidcError> {
    let provider = Provider::discover(op.settings(auth)).await.unwrap();
    let now = crate::unix_now();
    let (_, attempt) = provider.start(20, "https://portal.example/".into(), now);
    if let Some(edit) = claims {
        let mut c = op.claims(&attempt, now);
        for (k, v) in edit.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        op.answer_with_id_token(&c);
    }
    provider
        .finish("code", Some(&op.issuer), &attempt, now)
        .await
}
