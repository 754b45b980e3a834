//! The login side of the model: `login:`, `session:`, the OpenID providers (`oidc:` or `providers:`), the assertion, and how a portal's users may have logged in.

use crate::*;

/// Everything the gateway's own login needs.
#[derive(Debug)]
pub struct Auth {
    pub login: Login,
    pub session: SessionSettings,
    /// The OpenID providers, in the order of the login page's buttons: `providers:`, or the
    /// single `oidc:` section (one provider, id `rekono`). Never empty.
    pub providers: Vec<Oidc>,
    pub assertion: AssertionSettings,
    /// Certificate login (mTLS), when configured.
    pub certificate_login: Option<CertificateLogin>,
}

/// `login.support_email` when the config names none; also on the error pages of a gateway
/// without a login section.
pub const DEFAULT_SUPPORT_EMAIL: &str = "helpdesk@bankart.si";

#[derive(Debug)]
pub struct Login {
    /// The login host (lower case): the Bankart login page, the OIDC callback, logout, JWKS.
    pub host: String,
    /// The login host's public base URL, e.g. `https://login.bankart.si` (no trailing `/`).
    /// The OIDC redirect URI is this plus `/oidc/callback`.
    pub url: String,
    pub help_url: String,
    pub rekono_instructions_url: String,
    pub certificate_instructions_url: String,
    pub support_email: String,
    /// A directory whose templates replace the built-in ones (branding).
    pub templates: Option<PathBuf>,
    /// The path prefix reserved on every portal host for the gateway's own paths (`me`,
    /// `logout`, `sso`): never forwarded. `/NAME/`.
    pub portal_prefix: String,
}

/// [`Login::portal_prefix`] unless configured.
pub const DEFAULT_PORTAL_PREFIX: &str = "/.prehod/";

/// Where the gateway's session cookies reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CookieScope {
    /// Host-only `__Host-` cookies (the default): each portal and the login host have their
    /// own; single sign-on goes through the login host with single-use codes.
    Host,
    /// One cookie on this parent domain (`Domain=`), sent to every host under it — also to
    /// hosts the gateway does not guard. An explicit choice.
    ParentDomain(String),
}

#[derive(Debug)]
pub struct SessionSettings {
    pub cookie_scope: CookieScope,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// AES-256 keys; the first seals, all open. Never printed.
    pub keys: Vec<[u8; 32]>,
    pub cache_entries: u64,
    /// Bytes the session cache may hold.
    pub cache_memory: u64,
    /// Revocations held at most (≤ 80 bytes each); at the bound no new session is issued.
    pub max_revocations: u64,
    /// How long after an end of sessions ("end all", one ended from the sessions page) the
    /// subject's next Rekono login must authenticate afresh: the longest a Rekono single
    /// sign-on session lasts. Never shorter than `absolute_timeout`.
    pub fresh_login_for: Duration,
    /// Where the revocations made here are kept across restarts (read at start-up, not
    /// reloaded); without it and without `state:` a restart forgets every logout.
    pub revocation_file: Option<std::path::PathBuf>,
}

#[derive(Debug)]
pub struct Oidc {
    pub issuer: String,
    pub client_id: String,
    /// How the gateway authenticates to the token endpoint.
    pub client_auth: ClientAuth,
    pub scopes: Vec<String>,
    /// The provider's `acr` values and the levels they stand for.
    pub acr_levels: Vec<(String, u8)>,
    /// Extra trust anchors for the provider's TLS certificate (PEM).
    pub ca: Option<Vec<u8>>,
    pub timeout: Duration,
    /// RP-initiated logout also ends the session at the provider.
    pub logout_at_provider: bool,
    /// The provider's id (`[a-z0-9-]`, at most 32): what portals' `methods`, sessions, audit
    /// lines and metric labels name it by. `rekono` for the single `oidc:` section.
    pub id: String,
    /// The login page's button, Slovenian and English; `None` for `rekono` without one: the
    /// built-in Rekono texts.
    pub button: Option<(String, String)>,
    /// Put before every `sub` of this provider to make its user ids: `ID:`, except for
    /// `rekono`, whose ids stay the bare Rekono `sub` (as before providers were a list; a
    /// provider without a prefix refuses a `sub` with `:`). Ids of two providers never meet.
    pub user_id_prefix: String,
    /// What the client asks of itself and of the provider (`oidc.profile`).
    pub profile: Profile,
    /// After the ID token, the provider's userinfo endpoint is asked for the claims it lacks
    /// (with a DPoP-bound access token under [`Profile::Fapi2`]); its `sub` must match.
    pub userinfo: bool,
}

/// The id the single `oidc:` section gives its provider; the one provider whose user ids
/// carry no prefix.
pub const DEFAULT_PROVIDER_ID: &str = "rekono";

impl Oidc {
    /// This provider's user id for the `sub` it asserted.
    pub fn user_id(&self, sub: &str) -> String {
        format!("{}{sub}", self.user_id_prefix)
    }
}

/// The OpenID client's profile (`oidc.profile`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// OpenID Connect with PKCE, as Rekono asks.
    #[default]
    Default,
    /// The FAPI 2.0 Security Profile: pushed authorization requests, `private_key_jwt`,
    /// `iss` in every authorization response, PS256/ES256/EdDSA ID tokens, DPoP.
    Fapi2,
}

/// The smallest RSA key the OpenID client signs with or takes a signature from (FAPI 2.0
/// 5.4.1; NIST SP 800-131A has disallowed shorter ones since 2013), under every profile.
pub const MIN_RSA_BITS: u32 = 2048;

/// Client authentication at the provider's token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`
    Secret(String),
    /// `private_key_jwt`: a PEM private key (EC P-256 → ES256, RSA → RS256).
    PrivateKeyJwt { key_pem: Vec<u8>, rsa: bool },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets or keys.
        match self {
            ClientAuth::Secret(_) => f.write_str("client_secret_basic"),
            ClientAuth::PrivateKeyJwt { .. } => f.write_str("private_key_jwt"),
        }
    }
}

#[derive(Debug)]
pub struct AssertionSettings {
    /// EC P-256 private key (PEM).
    pub key_pem: Vec<u8>,
    pub lifetime: Duration,
}

/// How a portal's users may have logged in: an OpenID provider by its id, or a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginMethod {
    Provider(String),
    Certificate,
}

impl LoginMethod {
    /// `rekono`, the default provider.
    pub fn rekono() -> Self {
        LoginMethod::Provider(DEFAULT_PROVIDER_ID.to_owned())
    }
}
