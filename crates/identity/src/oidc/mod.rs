//! The OpenID Connect relying party for Rekono (crate `openidconnect`): discovery and JWKS
//! (fetched again only when a token names an unknown `kid`, within budgets that anonymous
//! back-channel traffic cannot take from logins: see [`KeyRefresh`]), the authorization
//! code flow with PKCE S256, and every ID-token check of OIDC Core 3.1.3.7. Back-channel
//! logout tokens are checked with `jsonwebtoken`.
//!
//! The parts, each in the file named after what it does:
//!
//! - `discovery.rs`: the provider's metadata and keys (discovery, JWKS) and its HTTP client;
//! - `bounded.rs`: every answer of the provider read up to a size limit;
//! - `key_refresh.rs`: fetching the keys again for an unknown `kid`, within its budgets;
//! - `authorize.rs`: the authorization request (PKCE, state, nonce, level, hints);
//! - `callback.rs`: the authorization response, from the code to the [`Identity`], through
//!   `token.rs` (the token request and what its failures mean), `client_auth.rs` (the
//!   `private_key_jwt` client assertion, signed with OpenSSL) and `id_token.rs` (every check
//!   of the ID token);
//! - `logout.rs`: back-channel logout tokens and the provider's end-session URL;
//! - the FAPI 2.0 Security Profile ([`Profile::Fapi2`]): `par.rs` (pushed authorization
//!   requests, RFC 9126), `dpop.rs` (DPoP proofs, RFC 9449) and `userinfo.rs` (the userinfo
//!   call with a DPoP-bound access token, its `sub` checked), beside the profile's checks in
//!   the files above (issuer in discovery and response, ID-token algorithms).

mod authorize;
mod bounded;
mod callback;
mod client_auth;
mod discovery;
mod dpop;
mod id_token;
mod key_refresh;
mod logout;
mod par;
#[cfg(test)]
mod test_provider;
mod token;
mod userinfo;

use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use authorize::{Attempt, Hints};
pub use discovery::http_client;
pub use id_token::Identity;
pub use logout::{logout_claims, logout_token_header, Logout};

use client_auth::ClientKey;
use discovery::Discovered;
use key_refresh::KeyRefresh;

/// What the relying party needs to know; built from the config. Two are equal when every
/// setting is (a reload keeps a discovered provider only then).
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// `oidc.profile`: OpenID Connect as Rekono asks, or FAPI 2.0.
    pub profile: Profile,
    /// `oidc.userinfo`: fill the claims the ID token lacks from the userinfo endpoint.
    pub userinfo: bool,
}

/// The provider of a session sealed before providers were configurable (the config's id).
pub const DEFAULT_PROVIDER: &str = prehod_config::DEFAULT_PROVIDER_ID;
/// The client's profile (the config's own type).
pub use prehod_config::Profile;

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
    /// What the provider's discovery document says cannot serve the configured profile (no
    /// PAR endpoint under FAPI 2.0, another issuer): it is not used until it can.
    #[error("the provider's metadata does not fit the configuration: {0}")]
    Metadata(String),
    /// The attempt asked for a fresh authentication (`prompt=login`, `max_age=0`) and the
    /// ID token shows none: no `auth_time`, or one from before the attempt.
    #[error("a fresh authentication was asked for (max_age=0) and the ID token's auth_time {auth_time:?} is from before the request ({asked})")]
    NotFresh { auth_time: Option<u64>, asked: u64 },
}

/// The relying party for one provider: its settings, its metadata and keys as last
/// discovered, and what it remembers between requests.
pub struct Provider {
    settings: Settings,
    http: reqwest::Client,
    current: RwLock<Arc<Discovered>>,
    /// When keys may be fetched again after an unknown `kid` (not the first discovery).
    key_refresh: KeyRefresh,
    /// Logout token `jti`s already seen (replay protection), kept for 10 minutes.
    seen_jti: moka::sync::Cache<String, ()>,
    /// The `private_key_jwt` key, parsed once; `None` with a client secret.
    client_key: Option<ClientKey>,
    /// The DPoP key (FAPI 2.0), made when the provider is discovered and never stored.
    dpop: Option<dpop::DpopKey>,
}

impl Provider {
    /// Discovers the provider. Fails when it cannot be reached: the caller retries.
    pub async fn discover(settings: Settings) -> Result<Self, OidcError> {
        let client_key = match &settings.client_auth {
            ClientAuth::PrivateKeyJwt { key_pem, rsa } => Some(ClientKey::from_pem(
                key_pem,
                *rsa,
                settings.profile == Profile::Fapi2,
            )?),
            ClientAuth::Secret(_) => None,
        };
        let dpop = match settings.profile {
            Profile::Fapi2 => Some(dpop::DpopKey::generate()?),
            Profile::Default => None,
        };
        let http = http_client(&settings)?;
        let discovered = discovery::fetch(&settings, &http).await?;
        Ok(Self {
            settings,
            http,
            current: RwLock::new(Arc::new(discovered)),
            key_refresh: KeyRefresh::new(),
            seen_jti: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(600))
                .build(),
            client_key,
            dpop,
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

    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }
}
