//! The OpenID Connect relying party for Rekono (crate `openidconnect`): discovery and JWKS
//! (fetched again when a token names an unknown key, at most every 30 s), the authorization
//! code flow with PKCE S256, and every ID-token check of OIDC Core 3.1.3.7. Back-channel
//! logout tokens are checked with `jsonwebtoken`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What the relying party needs to know; built from the config.
#[derive(Clone, Debug)]
pub struct Settings {
    pub issuer: String,
    pub client_id: String,
    pub client_auth: ClientAuth,

    /// `https://login.…/oidc/callback`
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// The provider's `acr` values and the level each stands for.
    pub acr_levels: Vec<(String, u8)>,
    /// Extra trust anchors (PEM) for the provider's TLS certificate.
    pub extra_roots: Vec<Vec<u8>>,
    pub timeout: Duration,
    /// Allowed clock difference for `iat`.
    pub max_skew: Duration,
}

/// How the relying party authenticates at the token endpoint (the config's own type).
pub use prehod_config::ClientAuth;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached: {0}")]
    Unavailable(String),
    #[error("the identity provider refused: {0}")]
    Refused(String),
    #[error("the ID token is not valid: {0}")]
    InvalidToken(String),
    #[error("the level of assurance {got} is below the required {wanted}")]
    LevelTooLow { got: u8, wanted: u8 },
    #[error("the response names another issuer ({0})")]
    WrongIssuer(String),
    #[error("configuration: {0}")]
    Config(String),
}

/// One login attempt's secrets, sealed into a short-lived cookie in the browser.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attempt {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where to go after the login: an URL of a configured portal (checked before).
    pub return_to: String,
    /// The level asked for.
    pub level: u8,
    pub created: u64,
}

/// What a successful login proves.
#[derive(Clone, Debug)]
pub struct Identity {
    pub sub: String,
    pub name: String,
    pub email: String,
    pub amr: Vec<String>,
    pub level: u8,
    pub auth_time: u64,
    pub op_sid: Option<String>,
    pub id_token: String,
}

/// The subject of a verified back-channel logout token.
#[derive(Debug, PartialEq, Eq)]
pub struct Logout {
    pub sid: Option<String>,
    pub sub: Option<String>,
}

struct Discovered {
    client: Client,
    token_endpoint: String,
    end_session: Option<String>,
    jwks: jsonwebtoken::jwk::JwkSet,
}

pub struct Provider {
    settings: Settings,
    http: reqwest::Client,
    current: RwLock<Arc<Discovered>>,
    /// When keys were last fetched again after an unknown `kid` (not the first discovery).
    last_refresh: Mutex<Option<Instant>>,
    /// Logout token `jti`s already seen (replay protection), kept for 10 minutes.
    seen_jti: moka::sync::Cache<String, ()>,
}

const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// The provider's HTTP client: timeouts, no redirects, extra trust roots, and `*.localhost`
/// resolved to loopback (RFC 6761; glibc does not).
pub fn http_client(settings: &Settings) -> Result<reqwest::Client, OidcError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout);
    for pem in &settings.extra_roots {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| OidcError::Config(e.to_string()))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    let host = url::Url::parse(&settings.issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .ok_or_else(|| OidcError::Config(format!("issuer {} has no host", settings.issuer)))?;
    if host == "localhost" || host.ends_with(".localhost") {
        b = b.resolve(&host, SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    b.build().map_err(|e| OidcError::Config(e.to_string()))
}

async fn fetch(settings: &Settings, http: &reqwest::Client) -> Result<Discovered, OidcError> {
    let issuer =
        IssuerUrl::new(settings.issuer.clone()).map_err(|e| OidcError::Config(e.to_string()))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| OidcError::Unavailable(format!("discovery: {e}")))?;
    let jwks_uri = metadata.jwks_uri().url().clone();
    let token_endpoint = metadata
        .token_endpoint()
        .map(|t| t.url().to_string())
        .ok_or_else(|| OidcError::Unavailable("discovery names no token endpoint".into()))?;
    let end_session = discovery_field(http, &settings.issuer, "end_session_endpoint").await;
    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(jwks_uri)
        .send()
        .await
        .map_err(|e| OidcError::Unavailable(format!("JWKS: {e}")))?
        .json()
        .await
        .map_err(|e| OidcError::Unavailable(format!("JWKS: {e}")))?;
    let redirect = RedirectUrl::new(settings.redirect_uri.clone())
        .map_err(|e| OidcError::Config(e.to_string()))?;
    let secret = match &settings.client_auth {
        ClientAuth::Secret(s) => Some(ClientSecret::new(s.clone())),
        ClientAuth::PrivateKeyJwt { .. } => None,
    };
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(settings.client_id.clone()),
        secret,
    )
    .set_redirect_uri(redirect);
    Ok(Discovered {
        client,
        token_endpoint,
        end_session,
        jwks,
    })
}

/// One field of the discovery document that `openidconnect`'s core metadata does not carry.
async fn discovery_field(http: &reqwest::Client, issuer: &str, field: &str) -> Option<String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc: serde_json::Value = http.get(url).send().await.ok()?.json().await.ok()?;
    doc.get(field)?.as_str().map(str::to_owned)
}

impl Provider {
    /// Discovers the provider. Fails when it cannot be reached: the caller retries.
    pub async fn discover(settings: Settings) -> Result<Self, OidcError> {
        let http = http_client(&settings)?;
        let discovered = fetch(&settings, &http).await?;
        Ok(Self {
            settings,
            http,
            current: RwLock::new(Arc::new(discovered)),
            last_refresh: Mutex::new(None),
            seen_jti: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
        })
    }

    fn current(&self) -> Arc<Discovered> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fetches discovery and JWKS again, at most once per 30 s. Returns whether it did.
    async fn refresh(&self) -> bool {
        {
            let mut last = self.last_refresh.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < JWKS_REFETCH_INTERVAL) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match fetch(&self.settings, &self.http).await {
            Ok(d) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(d);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "refreshing the provider's keys failed");
                false
            }
        }
    }

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// The `acr` value that asks for `level` (the lowest one mapped to at least it).
    fn acr_for(&self, level: u8) -> Option<&str> {
        self.settings
            .acr_levels
            .iter()
            .filter(|(_, l)| *l >= level)
            .min_by_key(|(_, l)| *l)
            .map(|(a, _)| a.as_str())
    }

    pub fn level_of(&self, acr: &str) -> Option<u8> {
        self.settings
            .acr_levels
            .iter()
            .find(|(a, _)| a == acr)
            .map(|(_, l)| *l)
    }

    /// The authorization URL for a new attempt at `level`, and the attempt to seal.
    pub fn start(&self, level: u8, return_to: String, now: u64) -> (String, Attempt) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let current = self.current();
        let mut req = current
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.settings.scopes {
            req = req.add_scope(Scope::new(scope.clone()));
        }
        if let Some(acr) = self.acr_for(level) {
            req = req.add_auth_context_value(AuthenticationContextClass::new(acr.to_owned()));
        }
        let (url, state, nonce) = req.url();
        let attempt = Attempt {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            return_to,
            level,
            created: now,
        };
        (url.to_string(), attempt)
    }

    /// Exchanges the code and checks the ID token completely. `iss` is the response's `iss`
    /// parameter (RFC 9207), when the provider sent one.
    pub async fn finish(
        &self,
        code: &str,
        iss: Option<&str>,
        attempt: &Attempt,
        now: u64,
    ) -> Result<Identity, OidcError> {
        if let Some(iss) = iss {
            if iss != self.settings.issuer {
                return Err(OidcError::WrongIssuer(iss.to_owned()));
            }
        }
        let current = self.current();
        let token = match &self.settings.client_auth {
            ClientAuth::Secret(_) => current
                .client
                .exchange_code(AuthorizationCode::new(code.to_owned()))
                .map_err(|e| OidcError::Config(e.to_string()))?
                .set_pkce_verifier(PkceCodeVerifier::new(attempt.verifier.clone()))
                .request_async(&self.http)
                .await
                .map_err(|e| match e {
                    openidconnect::RequestTokenError::ServerResponse(r) => {
                        OidcError::Refused(r.to_string())
                    }
                    other => OidcError::Unavailable(other.to_string()),
                })?,
            ClientAuth::PrivateKeyJwt { key_pem, rsa } => {
                self.token_with_client_assertion(
                    &current.token_endpoint,
                    code,
                    &attempt.verifier,
                    key_pem,
                    *rsa,
                    now,
                )
                .await?
            }
        };
        let id_token = token
            .id_token()
            .ok_or_else(|| OidcError::InvalidToken("no id_token".into()))?;
        let nonce = Nonce::new(attempt.nonce.clone());
        let verify = |d: &Discovered| {
            let verifier = d.client.id_token_verifier().set_allowed_algs([
                // Asymmetric algorithms only: never `none`, never HS* keyed by a public key.
                CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                CoreJwsSigningAlgorithm::EcdsaP384Sha384,
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            ]);
            id_token.claims(&verifier, &nonce).cloned()
        };
        let claims = match verify(&current) {
            Ok(c) => c,
            // An unknown key: the provider may have rotated. Fetch its keys again, once.
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(_))
                if self.refresh().await =>
            {
                verify(&self.current()).map_err(|e| OidcError::InvalidToken(e.to_string()))?
            }
            Err(e) => return Err(OidcError::InvalidToken(e.to_string())),
        };
        let iat = claims.issue_time().timestamp();
        let skew = self.settings.max_skew.as_secs() as i64;
        if iat > now as i64 + skew {
            return Err(OidcError::InvalidToken(format!(
                "issued in the future (iat {iat})"
            )));
        }
        if iat < now as i64 - 600 - skew {
            return Err(OidcError::InvalidToken(format!(
                "issued too long ago (iat {iat})"
            )));
        }
        let acr = claims
            .auth_context_ref()
            .map(|a| a.to_string())
            .ok_or_else(|| OidcError::InvalidToken("no acr".into()))?;
        let level = self
            .level_of(&acr)
            .ok_or_else(|| OidcError::InvalidToken(format!("unknown acr {acr:?}")))?;
        if level < attempt.level {
            return Err(OidcError::LevelTooLow {
                got: level,
                wanted: attempt.level,
            });
        }
        // `sid` is not among openidconnect's standard claims: read it from the verified token.
        let raw = id_token.to_string();
        let payload: serde_json::Value = raw
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p).ok()
            })
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .unwrap_or_default();
        Ok(Identity {
            sub: claims.subject().to_string(),
            name,
            email: claims.email().map(|e| e.to_string()).unwrap_or_default(),
            amr: claims
                .auth_method_refs()
                .map(|v| v.iter().map(|a| a.to_string()).collect())
                .unwrap_or_default(),
            level,
            auth_time: claims
                .auth_time()
                .map_or(now, |t| t.timestamp().max(0) as u64),
            op_sid: payload
                .get("sid")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            id_token: raw,
        })
    }

    /// The token request of `private_key_jwt` (RFC 7523 2.2), which `openidconnect` does not
    /// build itself: a short-lived JWT signed with the client's key, `aud` = token endpoint.
    async fn token_with_client_assertion(
        &self,
        token_endpoint: &str,
        code: &str,
        verifier: &str,
        key_pem: &[u8],
        rsa: bool,
        now: u64,
    ) -> Result<openidconnect::core::CoreTokenResponse, OidcError> {
        let (alg, key) = if rsa {
            (
                jsonwebtoken::Algorithm::RS256,
                jsonwebtoken::EncodingKey::from_rsa_pem(key_pem),
            )
        } else {
            (
                jsonwebtoken::Algorithm::ES256,
                jsonwebtoken::EncodingKey::from_ec_pem(key_pem),
            )
        };
        let key = key.map_err(|e| OidcError::Config(format!("client key: {e}")))?;
        let claims = serde_json::json!({
            "iss": self.settings.client_id,
            "sub": self.settings.client_id,
            "aud": token_endpoint,
            "iat": now,
            "exp": now + 60,
            "jti": crate::random_id(),
        });
        let assertion = jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), &claims, &key)
            .map_err(|e| OidcError::Config(format!("client assertion: {e}")))?;
        let resp = self
            .http
            .post(token_endpoint)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.settings.redirect_uri.as_str()),
                ("code_verifier", verifier),
                ("client_id", self.settings.client_id.as_str()),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        if !status.is_success() {
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            return Err(OidcError::Refused(
                error
                    .get("error")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("token request refused")
                    .to_owned(),
            ));
        }
        serde_json::from_slice(&body)
            .map_err(|e| OidcError::Refused(format!("token response: {e}")))
    }

    /// The provider's end-session URL for RP-initiated logout, when it has one.
    pub fn end_session_url(
        &self,
        id_token_hint: &str,
        post_logout_redirect_uri: &str,
    ) -> Option<String> {
        let endpoint = self.current().end_session.clone()?;
        let mut url = url::Url::parse(&endpoint).ok()?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token_hint)
            .append_pair("post_logout_redirect_uri", post_logout_redirect_uri)
            .append_pair("client_id", &self.settings.client_id);
        Some(url.to_string())
    }

    /// Verifies a back-channel logout token (OIDC Back-Channel Logout 1.0, 2.6): signature
    /// with the provider's keys, `iss`, `aud`, `iat`, the logout event, no `nonce`, `sid` or
    /// `sub`, and a `jti` not seen before.
    pub async fn verify_logout_token(&self, token: &str, now: u64) -> Result<Logout, OidcError> {
        let invalid = |m: &str| OidcError::InvalidToken(m.to_owned());
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed logout token"))?;
        if !matches!(
            header.alg,
            jsonwebtoken::Algorithm::ES256
                | jsonwebtoken::Algorithm::ES384
                | jsonwebtoken::Algorithm::RS256
                | jsonwebtoken::Algorithm::PS256
        ) {
            return Err(invalid("logout token algorithm not allowed"));
        }
        let kid = header
            .kid
            .clone()
            .ok_or_else(|| invalid("logout token has no kid"))?;
        let mut jwks = self.current().jwks.clone();
        if jwks.find(&kid).is_none() && self.refresh().await {
            jwks = self.current().jwks.clone();
        }
        let jwk = jwks
            .find(&kid)
            .ok_or_else(|| invalid("logout token signed with an unknown key"))?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk)
            .map_err(|_| invalid("unusable provider key"))?;
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(&[&self.settings.client_id]);
        v.set_required_spec_claims(&["iss", "aud", "iat"]);
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
            .map_err(|e| OidcError::InvalidToken(format!("logout token: {e}")))?
            .claims;
        let claim = |name: &str| claims.get(name).unwrap_or(&serde_json::Value::Null);
        let iat = claim("iat")
            .as_u64()
            .ok_or_else(|| invalid("logout token has no iat"))?;
        let skew = self.settings.max_skew.as_secs();
        if iat > now + skew || iat + 600 + skew < now {
            return Err(invalid("logout token iat out of range"));
        }
        if let Some(exp) = claim("exp").as_u64() {
            if exp + skew < now {
                return Err(invalid("logout token expired"));
            }
        }
        if !claim("events")
            .get("http://schemas.openid.net/event/backchannel-logout")
            .is_some_and(serde_json::Value::is_object)
        {
            return Err(invalid("logout token has no back-channel logout event"));
        }
        if claims.get("nonce").is_some() {
            return Err(invalid("a logout token must not have a nonce"));
        }
        let sid = claim("sid").as_str().map(str::to_owned);
        let sub = claim("sub").as_str().map(str::to_owned);
        if sid.is_none() && sub.is_none() {
            return Err(invalid("logout token has neither sid nor sub"));
        }
        let jti = claim("jti")
            .as_str()
            .ok_or_else(|| invalid("logout token has no jti"))?;
        if self.seen_jti.contains_key(jti) {
            return Err(invalid("logout token replayed"));
        }
        self.seen_jti.insert(jti.to_owned(), ());
        Ok(Logout { sid, sub })
    }
}
