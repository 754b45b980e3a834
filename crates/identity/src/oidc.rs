//! The OpenID Connect relying party for Rekono (crate `openidconnect`): discovery and JWKS
//! (fetched again only when a token names an unknown `kid`, within budgets that anonymous
//! back-channel traffic cannot take from logins: see [`KeyRefresh`]), the authorization
//! code flow with PKCE S256, and every ID-token check of OIDC Core 3.1.3.7. Back-channel
//! logout tokens are checked with `jsonwebtoken`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AsyncHttpClient, AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
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
    #[error("the response has no `iss`, which the provider promises (RFC 9207)")]
    MissingIssuer,
    #[error("configuration: {0}")]
    Config(String),
    /// The attempt asked for a fresh authentication (`prompt=login`, `max_age=0`) and the
    /// ID token shows none: no `auth_time`, or one from before the attempt.
    #[error("a fresh authentication was asked for (max_age=0) and the ID token's auth_time {auth_time:?} is from before the request ({asked})")]
    NotFresh { auth_time: Option<u64>, asked: u64 },
}

/// What the authorization request tells the provider besides the level: the language the
/// person chose (OIDC `ui_locales`), the account already logged in (`login_hint`), and
/// whether the person must authenticate afresh, whatever single sign-on session the provider
/// holds (`prompt=login`, `max_age=0`).
#[derive(Clone, Debug, Default)]
pub struct Hints {
    pub ui_locale: Option<String>,
    pub login_hint: Option<String>,
    pub fresh: bool,
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
    /// Fresh authentication was asked for ([`Hints::fresh`]): the ID token must show an
    /// authentication at or after `created` ([`Provider::finish`]).
    #[serde(default)]
    pub fresh: bool,
}

/// What a successful login proves.
#[derive(Clone, Debug)]
pub struct Identity {
    pub sub: String,
    pub name: String,
    pub email: String,
    pub amr: Vec<String>,
    pub level: u8,
    /// The `auth_time` claim (by the provider's clock), when the token has one.
    pub auth_time: Option<u64>,
    pub op_sid: Option<String>,
    pub id_token: String,
}

/// The subject of a verified back-channel logout token.
#[derive(Debug, PartialEq, Eq)]
pub struct Logout {
    pub sid: Option<String>,
    pub sub: Option<String>,
    /// The token's id: seen once here; a fleet also claims it in its shared state.
    pub jti: String,
}

struct Discovered {
    client: Client,
    token_endpoint: String,
    end_session: Option<String>,
    /// RFC 9207: the provider puts `iss` in every authorization response, so one without it
    /// is refused.
    iss_in_response: bool,
    jwks: jsonwebtoken::jwk::JwkSet,
}

pub struct Provider {
    settings: Settings,
    http: reqwest::Client,
    current: RwLock<Arc<Discovered>>,
    /// When keys may be fetched again after an unknown `kid` (not the first discovery).
    key_refresh: KeyRefresh,
    /// Logout token `jti`s already seen (replay protection), kept for 10 minutes.
    seen_jti: moka::sync::Cache<String, ()>,
}

/// Who asks for the provider's keys again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Asker {
    /// An ID token the gateway itself fetched from the token endpoint over TLS.
    Login,
    /// A back-channel logout token: anyone can POST one.
    BackChannel,
}

/// A token bucket: `capacity` fetches at once, one more every `every`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    every: Duration,
    at: Instant,
}

impl Bucket {
    fn new(capacity: u32, every: Duration) -> Self {
        Self {
            tokens: f64::from(capacity),
            capacity: f64::from(capacity),
            every,
            at: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.at).as_secs_f64()
            / self.every.as_secs_f64().max(f64::MIN_POSITIVE);
        self.tokens = (self.tokens + earned).min(self.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How often the keys are fetched again for an unknown `kid`. Logins and back-channel logout
/// tokens spend separate budgets, so a flood of forged logout tokens (anyone can send them)
/// never keeps a real key rotation from logging users in; a `kid` a back-channel token named
/// that was still unknown after a fetch is not fetched for again for
/// [`UNKNOWN_KID_FOR`]; and one fetch runs at a time (those waiting use its result).
struct KeyRefresh {
    logins: Mutex<Bucket>,
    back_channel: Mutex<Bucket>,
    /// `kid`s still unknown after a fetch (the negative cache), consulted for back-channel
    /// tokens only: a login must never be refused because a forged token named its key first.
    unknown: moka::sync::Cache<String, ()>,
    fetching: tokio::sync::Mutex<()>,
}

/// Logins: 3 fetches at once, one more every 10 s.
const LOGIN_REFRESHES: (u32, Duration) = (3, Duration::from_secs(10));
/// Back-channel logout tokens: 2 fetches at once, one more a minute.
const BACK_CHANNEL_REFRESHES: (u32, Duration) = (2, Duration::from_secs(60));
const UNKNOWN_KID_FOR: Duration = Duration::from_secs(300);

impl KeyRefresh {
    fn new() -> Self {
        Self {
            logins: Mutex::new(Bucket::new(LOGIN_REFRESHES.0, LOGIN_REFRESHES.1)),
            back_channel: Mutex::new(Bucket::new(
                BACK_CHANNEL_REFRESHES.0,
                BACK_CHANNEL_REFRESHES.1,
            )),
            unknown: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(UNKNOWN_KID_FOR)
                .build(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether `asker` may fetch the keys again now for `kid` (spends from its budget).
    fn allow(&self, asker: Asker, kid: &str) -> bool {
        let bucket = match asker {
            Asker::Login => &self.logins,
            Asker::BackChannel => {
                if self.unknown.contains_key(kid) {
                    return false;
                }
                &self.back_channel
            }
        };
        bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(Instant::now())
    }
}

/// The `kid` in a compact JWS's header, read without trusting anything else in it.
fn kid_of(jws: &str) -> Option<String> {
    use base64::Engine;
    let header = jws.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(&json).ok()?;
    header.get("kid")?.as_str().map(str::to_owned)
}

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
    // Fields `openidconnect`'s core metadata does not carry. Required like the rest of
    // discovery: a missed RFC 9207 flag would silently accept responses without `iss`.
    let doc = discovery_document(http, &settings.issuer).await?;
    let end_session = doc
        .get("end_session_endpoint")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let iss_in_response = doc
        .get("authorization_response_iss_parameter_supported")
        .and_then(serde_json::Value::as_bool)
        == Some(true);
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
        iss_in_response,
        jwks,
    })
}

/// The discovery document as JSON, for the fields `openidconnect`'s core metadata lacks.
async fn discovery_document(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<serde_json::Value, OidcError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let unavailable = |e: reqwest::Error| OidcError::Unavailable(format!("discovery: {e}"));
    http.get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unavailable)?
        .json()
        .await
        .map_err(unavailable)
}

/// What a failed token request means, from the status the token endpoint answered with:
/// none or a 5xx is an outage (the login can be tried again later); another error status is
/// a refusal of the code; a 200 whose body is not a valid token response (an ID token without
/// `exp`, `iat` or `sub`, say) is an invalid token — a refused login, never an outage.
fn token_failure(status: u16, detail: String) -> OidcError {
    match status {
        0 | 500.. => OidcError::Unavailable(format!("token endpoint ({status}): {detail}")),
        200 => OidcError::InvalidToken(format!("token response: {detail}")),
        _ => OidcError::Refused(detail),
    }
}

/// The provider's HTTP client for one token request, remembering the status of the answer.
struct StatusRecorder<'a> {
    http: &'a reqwest::Client,
    status: AtomicU16,
}

impl StatusRecorder<'_> {
    /// The answer's status; 0 when there was none.
    fn status(&self) -> u16 {
        self.status.load(Ordering::Relaxed)
    }
}

impl<'c> AsyncHttpClient<'c> for StatusRecorder<'_> {
    type Error = openidconnect::HttpClientError<reqwest::Error>;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, Self::Error>>
                + Send
                + Sync
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.http.call(request).await?;
            self.status
                .store(response.status().as_u16(), Ordering::Relaxed);
            Ok(response)
        })
    }
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
            key_refresh: KeyRefresh::new(),
            seen_jti: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
        })
    }

    /// For a configuration reload: the logout-token `jti`s `old` has seen stay seen.
    pub fn adopt_seen(mut self, old: &Provider) -> Self {
        self.seen_jti = old.seen_jti.clone();
        self
    }

    fn current(&self) -> Arc<Discovered> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fetches discovery and JWKS again because a token named `kid`, which the current keys do
    /// not have, if `asker`'s budget allows. Returns whether `kid` is known afterwards.
    async fn refresh_for(&self, asker: Asker, kid: &str) -> bool {
        let _one_at_a_time = self.key_refresh.fetching.lock().await;
        // A fetch that ran while this one waited may have brought the key.
        if self.current().jwks.find(kid).is_some() {
            return true;
        }
        if !self.key_refresh.allow(asker, kid) {
            tracing::debug!(?asker, kid, "not fetching the provider's keys again now");
            return false;
        }
        match fetch(&self.settings, &self.http).await {
            Ok(d) => {
                let known = d.jwks.find(kid).is_some();
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(d);
                if !known {
                    self.key_refresh.unknown.insert(kid.to_owned(), ());
                }
                known
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
        self.start_with(level, return_to, now, &Hints::default())
    }

    /// [`Provider::start`] with the person's language (`ui_locales`) and, for a step-up, the
    /// account already logged in (`login_hint`).
    pub fn start_with(
        &self,
        level: u8,
        return_to: String,
        now: u64,
        hints: &Hints,
    ) -> (String, Attempt) {
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
        // openidconnect always asks for `openid`: adding it again sends it twice.
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(scope.clone()));
        }
        // Level 0 (a login on the login host's home, for no portal) asks for no level: the
        // account's own.
        if let Some(acr) = self.acr_for(level).filter(|_| level > 0) {
            req = req.add_auth_context_value(AuthenticationContextClass::new(acr.to_owned()));
        }
        if let Some(locale) = &hints.ui_locale {
            req = req.add_ui_locale(openidconnect::LanguageTag::new(locale.clone()));
        }
        if let Some(hint) = &hints.login_hint {
            req = req.set_login_hint(openidconnect::LoginHint::new(hint.clone()));
        }
        if hints.fresh {
            req = req
                .add_prompt(openidconnect::core::CoreAuthPrompt::Login)
                .set_max_age(Duration::ZERO);
        }
        let (url, state, nonce) = req.url();
        let attempt = Attempt {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            return_to,
            level,
            created: now,
            fresh: hints.fresh,
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
        let current = self.current();
        match iss {
            Some(iss) if iss != self.settings.issuer => {
                return Err(OidcError::WrongIssuer(iss.to_owned()));
            }
            None if current.iss_in_response => return Err(OidcError::MissingIssuer),
            _ => {}
        }
        let token = match &self.settings.client_auth {
            ClientAuth::Secret(_) => {
                // The status of the answer decides what a failure is (see `token_failure`);
                // openidconnect reports a 5xx page and a malformed ID token alike as `Parse`.
                let http = StatusRecorder {
                    http: &self.http,
                    status: AtomicU16::new(0),
                };
                current
                    .client
                    .exchange_code(AuthorizationCode::new(code.to_owned()))
                    .map_err(|e| OidcError::Config(e.to_string()))?
                    .set_pkce_verifier(PkceCodeVerifier::new(attempt.verifier.clone()))
                    .request_async(&http)
                    .await
                    .map_err(|e| match e {
                        openidconnect::RequestTokenError::Request(e) => {
                            OidcError::Unavailable(format!("token endpoint: {e}"))
                        }
                        other => token_failure(http.status(), other.to_string()),
                    })?
            }
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
        // An unknown `kid`: the provider may have rotated. Fetch its keys again, once — and
        // only then: a bad signature by a known key is a bad token, not a reason to fetch.
        let unknown_kid =
            kid_of(&id_token.to_string()).filter(|kid| current.jwks.find(kid).is_none());
        let claims = match verify(&current) {
            Ok(c) => c,
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(e)) => {
                match unknown_kid {
                    Some(kid) if self.refresh_for(Asker::Login, &kid).await => {
                        verify(&self.current())
                            .map_err(|e| OidcError::InvalidToken(e.to_string()))?
                    }
                    _ => return Err(OidcError::InvalidToken(e.to_string())),
                }
            }
            Err(e) => return Err(OidcError::InvalidToken(e.to_string())),
        };
        // OIDC Core 3.1.3.7 steps 4 and 5, which openidconnect leaves to its users: a token
        // for several audiences names the one it was issued to, and that must be us.
        match claims.authorized_party() {
            Some(azp) if azp.as_str() != self.settings.client_id => {
                return Err(OidcError::InvalidToken(format!(
                    "azp {:?} is another client",
                    azp.as_str()
                )));
            }
            None if claims.audiences().len() > 1 => {
                return Err(OidcError::InvalidToken(
                    "several audiences and no azp".into(),
                ));
            }
            _ => {}
        }
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
        let auth_time = claims.auth_time().map(|t| t.timestamp().max(0) as u64);
        if attempt.fresh {
            fresh_enough(auth_time, attempt.created, self.settings.max_skew.as_secs())?;
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
        let sub = claims.subject().to_string();
        // Certificate user ids are `PREFIX:VALUE`; a Rekono `sub` may never look like one.
        if sub.contains(':') {
            return Err(OidcError::InvalidToken(format!(
                "sub {sub:?} contains ':', which only certificate user ids may"
            )));
        }
        Ok(Identity {
            sub,
            name,
            email: claims.email().map(|e| e.to_string()).unwrap_or_default(),
            amr: claims
                .auth_method_refs()
                .map(|v| v.iter().map(|a| a.to_string()).collect())
                .unwrap_or_default(),
            level,
            auth_time,
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
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        if status != 200 {
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let detail = error
                .get("error")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("token request refused");
            return Err(token_failure(status, detail.to_owned()));
        }
        // The ID token's claims are parsed here: one without `exp`, `iat` or `sub` fails.
        serde_json::from_slice(&body).map_err(|e| token_failure(status, e.to_string()))
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
        let (alg, kid) = logout_token_header(token)?;
        let mut jwks = self.current().jwks.clone();
        if jwks.find(&kid).is_none() && self.refresh_for(Asker::BackChannel, &kid).await {
            jwks = self.current().jwks.clone();
        }
        let jwk = jwks
            .find(&kid)
            .ok_or_else(|| invalid("logout token signed with an unknown key"))?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk)
            .map_err(|_| invalid("unusable provider key"))?;
        let mut v = jsonwebtoken::Validation::new(alg);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(&[&self.settings.client_id]);
        v.set_required_spec_claims(&["iss", "aud", "iat"]);
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
            .map_err(|e| OidcError::InvalidToken(format!("logout token: {e}")))?
            .claims;
        let (logout, jti) = logout_claims(&claims, now, self.settings.max_skew.as_secs())?;
        if self.seen_jti.contains_key(&jti) {
            return Err(invalid("logout token replayed"));
        }
        self.seen_jti.insert(jti, ());
        Ok(logout)
    }
}

/// A logout token's header, read before anything is trusted: an allowed (asymmetric)
/// algorithm and the `kid` of the key to verify it with. Pure, so it is fuzzed.
pub fn logout_token_header(token: &str) -> Result<(jsonwebtoken::Algorithm, String), OidcError> {
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
        .ok_or_else(|| invalid("logout token has no kid"))?;
    Ok((header.alg, kid))
}

/// OIDC Core 3.1.2.1: an ID token answering `max_age=0` must carry `auth_time`, and that must
/// be no earlier than the request (`asked`, by our clock; the provider's may differ by
/// `skew`).
fn fresh_enough(auth_time: Option<u64>, asked: u64, skew: u64) -> Result<(), OidcError> {
    match auth_time {
        Some(t) if t.saturating_add(skew) >= asked => Ok(()),
        _ => Err(OidcError::NotFresh { auth_time, asked }),
    }
}

/// The claims of a logout token whose signature, `iss` and `aud` were verified: `iat` within
/// `skew` of the last 10 minutes, not expired, the back-channel logout event, no `nonce`, a
/// `sid` or `sub`. Returns the logout and its `jti` (for the replay check). Pure, so it is
/// fuzzed.
pub fn logout_claims(
    claims: &serde_json::Value,
    now: u64,
    skew: u64,
) -> Result<(Logout, String), OidcError> {
    let invalid = |m: &str| OidcError::InvalidToken(m.to_owned());
    let claim = |name: &str| claims.get(name).unwrap_or(&serde_json::Value::Null);
    let iat = claim("iat")
        .as_u64()
        .ok_or_else(|| invalid("logout token has no iat"))?;
    if iat > now.saturating_add(skew) || iat.saturating_add(600 + skew) < now {
        return Err(invalid("logout token iat out of range"));
    }
    if let Some(exp) = claim("exp").as_u64() {
        if exp.saturating_add(skew) < now {
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
    Ok((
        Logout {
            sid,
            sub,
            jti: jti.to_owned(),
        },
        jti.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    //! The relying party against a test-only provider on loopback whose token endpoint
    //! answers with whatever a test puts there: ID tokens signed with the provider's key but
    //! with bad claims, malformed responses, and failures.

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const CLIENT: &str = "prehod-test";

    /// What the token endpoint answers: status and body.
    type Answer = Arc<Mutex<(u16, String)>>;

    #[test]
    fn back_channel_tokens_cannot_spend_the_logins_key_refreshes() {
        let r = KeyRefresh::new();
        // Anonymous back-channel tokens get their own small budget…
        let spent = (0..100)
            .filter(|i| r.allow(Asker::BackChannel, &format!("kid-{i}")))
            .count();
        assert_eq!(spent, BACK_CHANNEL_REFRESHES.0 as usize);
        // …and logins still have all of theirs.
        let logins = (0..100).filter(|_| r.allow(Asker::Login, "new")).count();
        assert_eq!(logins, LOGIN_REFRESHES.0 as usize);
        // A kid fetched for and still unknown is not fetched for again by back-channel
        // tokens, but a login naming it is never held back by that.
        let r = KeyRefresh::new();
        r.unknown.insert("forged".into(), ());
        assert!(!r.allow(Asker::BackChannel, "forged"));
        assert!(r.allow(Asker::Login, "forged"));
    }

    #[test]
    fn a_bucket_refills_over_time_up_to_its_capacity() {
        let mut b = Bucket::new(2, Duration::from_secs(10));
        let t = b.at;
        assert!(b.take(t) && b.take(t) && !b.take(t));
        assert!(!b.take(t + Duration::from_secs(9)));
        assert!(b.take(t + Duration::from_secs(11)));
        let later = t + Duration::from_secs(3600);
        assert!(b.take(later) && b.take(later) && !b.take(later));
    }

    #[test]
    fn the_kid_is_read_from_any_header_and_never_panics() {
        use base64::Engine;
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"kid":"k1"}"#);
        assert_eq!(kid_of(&format!("{h}.x.y")).as_deref(), Some("k1"));
        for junk in ["", ".", "žžž.a.b", "e30.e30.", "!!!"] {
            assert_eq!(kid_of(junk), None);
        }
    }

    struct TestProvider {
        issuer: String,
        kid: String,
        key: jsonwebtoken::EncodingKey,
        answer: Answer,
        /// How many times the JWKS was fetched.
        jwks_fetches: Arc<std::sync::atomic::AtomicUsize>,
        task: tokio::task::JoinHandle<()>,
    }

    impl TestProvider {
        async fn start() -> Self {
            let group =
                openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
            let pkey =
                openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
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

        fn settings(&self, client_auth: ClientAuth) -> Settings {
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
            }
        }

        /// The claims of a good ID token for `attempt`.
        fn claims(&self, attempt: &Attempt, now: u64) -> serde_json::Value {
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

        fn answer_with_id_token(&self, claims: &serde_json::Value) {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.kid = Some(self.kid.clone());
            let jwt = jsonwebtoken::encode(&header, claims, &self.key).unwrap();
            self.answer_raw(
                200,
                serde_json::json!({"access_token": "a", "token_type": "Bearer", "id_token": jwt})
                    .to_string(),
            );
        }

        fn answer_raw(&self, status: u16, body: String) {
            *self.answer.lock().unwrap() = (status, body);
        }
    }

    /// Both ways the gateway authenticates at the token endpoint (they build the request
    /// differently, so each is tried).
    fn client_auths() -> Vec<ClientAuth> {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::ec::EcKey::generate(&group).unwrap();
        let pem = openssl::pkey::PKey::from_ec_key(key)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        vec![
            ClientAuth::Secret("secret".into()),
            ClientAuth::PrivateKeyJwt {
                key_pem: pem,
                rsa: false,
            },
        ]
    }

    async fn login(
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

    #[tokio::test]
    async fn only_an_unknown_kid_fetches_the_keys_again() {
        let op = TestProvider::start().await;
        let provider = Provider::discover(op.settings(ClientAuth::Secret("secret".into())))
            .await
            .unwrap();
        // Discovery reads the JWKS (openidconnect's discovery reads it too): count from here.
        let at_start = op.jwks_fetches.load(Ordering::SeqCst);
        let fetches = || op.jwks_fetches.load(Ordering::SeqCst) - at_start;
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let pem = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        let forger = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap();
        let now = crate::unix_now();
        for (kid, fetched) in [(op.kid.clone(), 0), ("rotated?".to_owned(), at_start)] {
            let (_, attempt) = provider.start(20, "https://portal.example/".into(), now);
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.kid = Some(kid.clone());
            let jwt = jsonwebtoken::encode(&header, &op.claims(&attempt, now), &forger).unwrap();
            op.answer_raw(
                200,
                serde_json::json!({"access_token": "a", "token_type": "Bearer", "id_token": jwt})
                    .to_string(),
            );
            let result = provider
                .finish("code", Some(&op.issuer), &attempt, now)
                .await;
            assert!(matches!(result, Err(OidcError::InvalidToken(_))), "{kid}");
            // A known kid with a bad signature is a bad token: no fetch. An unknown one: one
            // more discovery.
            assert_eq!(fetches(), fetched, "{kid}");
        }
    }

    #[tokio::test]
    async fn a_good_id_token_logs_in() {
        let op = TestProvider::start().await;
        for auth in client_auths() {
            let id = login(&op, auth.clone(), Some(serde_json::json!({})))
                .await
                .unwrap();
            assert_eq!((id.sub.as_str(), id.level), ("user-1", 20));
            let with_azp = serde_json::json!({"azp": CLIENT});
            assert!(login(&op, auth, Some(with_azp)).await.is_ok());
        }
    }

    #[tokio::test]
    async fn an_id_token_for_another_authorized_party_is_refused() {
        let op = TestProvider::start().await;
        for auth in client_auths() {
            for edit in [
                // azp names another client.
                serde_json::json!({"azp": "another-client"}),
                // Several audiences and no azp.
                serde_json::json!({"aud": [CLIENT, "another-client"]}),
                // Several audiences, azp another one of them.
                serde_json::json!({"aud": [CLIENT, "another-client"], "azp": "another-client"}),
            ] {
                match login(&op, auth.clone(), Some(edit.clone())).await {
                    Err(OidcError::InvalidToken(m)) => {
                        assert!(m.contains("azp") || m.contains("aud"), "{edit}: {m}")
                    }
                    other => panic!("{edit} must be refused as an invalid token, got {other:?}"),
                }
            }
        }
    }

    #[tokio::test]
    async fn a_malformed_id_token_is_an_invalid_token_not_an_outage() {
        let op = TestProvider::start().await;
        for auth in client_auths() {
            for missing in ["exp", "iat", "sub", "iss", "aud"] {
                let edit = serde_json::json!({ missing: null });
                match login(&op, auth.clone(), Some(edit)).await {
                    Err(OidcError::InvalidToken(_)) => {}
                    other => panic!("an ID token without {missing}: {other:?}"),
                }
            }
            for body in [
                "not json".to_owned(),
                r#"{"access_token":"a","token_type":"Bearer","id_token":"not.a.jwt"}"#.to_owned(),
                r#"{"access_token":"a","token_type":"Bearer"}"#.to_owned(),
            ] {
                op.answer_raw(200, body.clone());
                match login(&op, auth.clone(), None).await {
                    Err(OidcError::InvalidToken(_)) => {}
                    other => panic!("a token response {body}: {other:?}"),
                }
            }
        }
    }

    #[tokio::test]
    async fn an_outage_stays_an_outage_and_a_refusal_a_refusal() {
        let mut op = TestProvider::start().await;
        for auth in client_auths() {
            for (status, body) in [(503, "{}"), (500, "<html>oops</html>"), (502, "")] {
                op.answer_raw(status, body.into());
                match login(&op, auth.clone(), None).await {
                    Err(OidcError::Unavailable(_)) => {}
                    other => panic!("{status} {body}: {other:?}"),
                }
            }
            op.answer_raw(400, r#"{"error":"invalid_grant"}"#.into());
            match login(&op, auth.clone(), None).await {
                Err(OidcError::Refused(_)) => {}
                other => panic!("invalid_grant: {other:?}"),
            }
        }
        // The token endpoint stops answering after discovery.
        let provider = Provider::discover(op.settings(ClientAuth::Secret("s".into())))
            .await
            .unwrap();
        op.task.abort();
        let _ = (&mut op.task).await;
        let now = crate::unix_now();
        let (_, attempt) = provider.start(20, "https://portal.example/".into(), now);
        match provider
            .finish("code", Some(&op.issuer), &attempt, now)
            .await
        {
            Err(OidcError::Unavailable(_)) => {}
            other => panic!("an unreachable token endpoint: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_response_without_iss_is_refused_when_the_provider_promises_it() {
        let op = TestProvider::start().await;
        let provider = Provider::discover(op.settings(ClientAuth::Secret("s".into())))
            .await
            .unwrap();
        let now = crate::unix_now();
        let (_, attempt) = provider.start(20, "https://portal.example/".into(), now);
        op.answer_with_id_token(&op.claims(&attempt, now));
        assert!(matches!(
            provider.finish("code", None, &attempt, now).await,
            Err(OidcError::MissingIssuer)
        ));
    }

    /// Issue 17, item 8: after "end all sessions" the gateway asks for a fresh
    /// authentication; the answer must show one (OIDC Core 3.1.2.1), not the single sign-on
    /// session's old login time.
    #[tokio::test]
    async fn a_fresh_attempt_asks_for_it_and_accepts_only_an_authentication_after_it() {
        let op = TestProvider::start().await;
        let provider = Provider::discover(op.settings(ClientAuth::Secret("s".into())))
            .await
            .unwrap();
        let now = crate::unix_now();
        let hints = Hints {
            fresh: true,
            ..Hints::default()
        };
        let (url, attempt) = provider.start_with(20, "https://portal.example/".into(), now, &hints);
        let query: Vec<(String, String)> = url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert!(query.contains(&("prompt".into(), "login".into())), "{url}");
        assert!(query.contains(&("max_age".into(), "0".into())), "{url}");
        assert!(attempt.fresh);
        let (plain, ordinary) = provider.start(20, "https://portal.example/".into(), now);
        assert!(
            !plain.contains("prompt=") && !plain.contains("max_age="),
            "{plain}"
        );
        // The skew allowed for `iat` (60 s) holds for `auth_time` too.
        for (auth_time, fresh_ok) in [
            (None, false),
            (Some(now - 3600), false),
            (Some(now - 61), false),
            (Some(now - 60), true),
            (Some(now + 5), true),
        ] {
            let mut claims = op.claims(&attempt, now);
            if let Some(t) = auth_time {
                claims["auth_time"] = t.into();
            }
            op.answer_with_id_token(&claims);
            let result = provider
                .finish("code", Some(&op.issuer), &attempt, now)
                .await;
            match (result, fresh_ok) {
                (Ok(id), true) => assert_eq!(id.auth_time, auth_time),
                (
                    Err(OidcError::NotFresh {
                        auth_time: t,
                        asked,
                    }),
                    false,
                ) => {
                    assert_eq!((t, asked), (auth_time, now));
                }
                (other, _) => panic!("auth_time {auth_time:?}: {other:?}"),
            }
            // An ordinary attempt takes any login time, and says which it was.
            let mut claims = op.claims(&ordinary, now);
            if let Some(t) = auth_time {
                claims["auth_time"] = t.into();
            }
            op.answer_with_id_token(&claims);
            let id = provider
                .finish("code", Some(&op.issuer), &ordinary, now)
                .await
                .unwrap();
            assert_eq!(id.auth_time, auth_time);
        }
    }
}
