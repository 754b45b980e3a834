//! The simulator's configuration (YAML) and its accounts file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::Factor;

#[derive(Debug, thiserror::Error)]
pub enum SimConfigError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

fn read(path: &Path) -> Result<String, SimConfigError> {
    std::fs::read_to_string(path).map_err(|e| SimConfigError::File {
        path: path.to_owned(),
        message: format!("cannot read: {e}"),
    })
}

/// `${NAME}` in paths, for the dev PKI directory.
fn expand(path: &str, base: &Path) -> PathBuf {
    let mut s = path.to_owned();
    while let Some(start) = s.find("${") {
        let Some(end) = s[start..].find('}') else {
            break;
        };
        let name = &s[start + 2..start + end];
        let value = std::env::var(name).unwrap_or_default();
        s.replace_range(start..start + end + 1, &value);
    }
    let p = PathBuf::from(s);
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: SocketAddr,
    listen_mtls: SocketAddr,
    /// Base URL people and relying parties use, e.g. `https://rekono.localhost:8444`.
    public_url: String,
    public_mtls_url: String,
    tls: RawTls,
    accounts: String,
    #[serde(default)]
    levels: Option<BTreeMap<u8, Vec<Factor>>>,
    clients: Vec<RawClient>,
    /// CA that signs the relying parties' back-channel logout endpoints.
    backchannel_ca: Option<String>,
    #[serde(default)]
    danger_allow_non_loopback: bool,
    /// Where "Pozabljeno geslo?" and "Ustvari račun" lead (Rekono's own pages by default).
    #[serde(default)]
    forgot_password_url: Option<String>,
    #[serde(default)]
    create_account_url: Option<String>,
    /// Serve the FAPI 2.0 Security Profile: pushed authorization requests only, DPoP-bound
    /// access tokens, a userinfo that checks the proof (see [`SimConfig::fapi2`]).
    #[serde(default)]
    fapi2: bool,
    /// Misbehave on purpose (tests of the relying party's refusals).
    #[serde(default)]
    danger_misbehave: Misbehave,
}

/// What the simulator gets wrong on purpose, for tests of the relying party: each switch
/// breaks one promise of the FAPI 2.0 profile. All off by default. Also switchable while it
/// runs ([`crate::Sim::misbehave`]).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Misbehave {
    /// Sign ID tokens with RS256 whatever the client's `id_token_alg`.
    #[serde(default)]
    pub sign_rs256: bool,
    /// No `iss` in authorization responses (and discovery does not promise it).
    #[serde(default)]
    pub omit_iss: bool,
    /// Discovery names this issuer instead of its own.
    #[serde(default)]
    pub discovery_issuer: Option<String>,
    /// Discovery names no `pushed_authorization_request_endpoint`.
    #[serde(default)]
    pub no_par_endpoint: bool,
    /// Userinfo answers with this `sub` instead of the account's.
    #[serde(default)]
    pub userinfo_sub: Option<String>,
}

/// Where the login screen's links lead unless configured: Rekono's public site (set
/// `forgot_password_url` and `create_account_url` to the exact pages).
pub const FORGOT_PASSWORD_URL: &str = "https://www.rekono.si/";
pub const CREATE_ACCOUNT_URL: &str = "https://www.rekono.si/";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: String,
    key: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawClient {
    pub client_id: String,
    pub name: String,
    /// For `client_secret_basic`.
    pub secret: Option<String>,
    /// PEM public keys for `private_key_jwt`.
    #[serde(default)]
    pub jwt_keys: Vec<String>,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    /// `ES256` (default), `PS256`, `EdDSA` or `RS256`.
    pub id_token_alg: Option<String>,
}

/// A relying party registered with the simulator.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    pub secret: Option<String>,
    pub jwt_keys: Vec<(jsonwebtoken::Algorithm, Vec<u8>)>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub id_token_alg: jsonwebtoken::Algorithm,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccounts {
    accounts: Vec<RawAccount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    email: String,
    /// argon2 PHC string.
    password_hash: String,
    /// Shown by `prehod dev` only; must match `password_hash` or the file is refused.
    demo_password: Option<String>,
    name: String,
    phone: Option<String>,
    totp_secret: Option<String>,
    #[serde(default)]
    certificates: Vec<String>,
    level: u8,
    /// Stable subject; default derived from the e-mail.
    sub: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub sub: String,
    pub email: String,
    pub password_hash: String,
    pub demo_password: Option<String>,
    pub name: String,
    pub phone: Option<String>,
    pub totp_secret_base32: Option<String>,
    pub totp_secret: Option<Vec<u8>>,
    /// SHA-256 fingerprints (hex) of the linked certificates.
    pub certificates: Vec<String>,
    pub level: u8,
}

#[derive(Debug)]
pub struct SimConfig {
    pub listen: SocketAddr,
    pub listen_mtls: SocketAddr,
    pub public_url: String,
    pub public_mtls_url: String,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub accounts: Vec<Account>,
    pub levels: BTreeMap<u8, Vec<Factor>>,
    pub clients: Vec<Client>,
    pub backchannel_ca: Option<PathBuf>,
    pub danger_allow_non_loopback: bool,
    /// "Pozabljeno geslo?" (default [`FORGOT_PASSWORD_URL`]).
    pub forgot_password_url: String,
    /// "Ustvari račun" (default [`CREATE_ACCOUNT_URL`]).
    pub create_account_url: String,
    /// The FAPI 2.0 Security Profile: authorization requests only by PAR (RFC 9126), access
    /// tokens only DPoP-bound (RFC 9449), userinfo only with a DPoP proof carrying `ath`.
    pub fapi2: bool,
    /// What it gets wrong on purpose (tests only).
    pub misbehave: Misbehave,
}

pub fn default_levels() -> BTreeMap<u8, Vec<Factor>> {
    BTreeMap::from([
        (10, vec![Factor::Sms]),
        (20, vec![Factor::Sms, Factor::Otp, Factor::Push]),
        (30, vec![Factor::Otp, Factor::Push, Factor::Certificate]),
    ])
}

impl SimConfig {
    pub fn load(path: &Path) -> Result<Self, SimConfigError> {
        let base = path.parent().unwrap_or(Path::new("."));
        let raw: RawConfig =
            serde_yaml::from_str(&read(path)?).map_err(|e| SimConfigError::File {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let accounts_path = expand(&raw.accounts, base);
        let accounts = load_accounts(&accounts_path)?;
        let clients = raw
            .clients
            .iter()
            .map(|c| client(c, base))
            .collect::<Result<Vec<_>, _>>()?;
        let config = Self {
            listen: raw.listen,
            listen_mtls: raw.listen_mtls,
            public_url: raw.public_url.trim_end_matches('/').to_owned(),
            public_mtls_url: raw.public_mtls_url.trim_end_matches('/').to_owned(),
            tls_cert: expand(&raw.tls.cert, base),
            tls_key: expand(&raw.tls.key, base),
            accounts,
            levels: raw.levels.unwrap_or_else(default_levels),
            clients,
            backchannel_ca: raw.backchannel_ca.map(|p| expand(&p, base)),
            danger_allow_non_loopback: raw.danger_allow_non_loopback,
            forgot_password_url: raw
                .forgot_password_url
                .unwrap_or_else(|| FORGOT_PASSWORD_URL.to_owned()),
            create_account_url: raw
                .create_account_url
                .unwrap_or_else(|| CREATE_ACCOUNT_URL.to_owned()),
            fapi2: raw.fapi2,
            misbehave: raw.danger_misbehave,
        };
        config.validate()?;
        Ok(config)
    }

    /// Refuses non-loopback addresses unless told it is deliberate.
    pub fn validate(&self) -> Result<(), SimConfigError> {
        for addr in [self.listen, self.listen_mtls] {
            if !addr.ip().is_loopback() && !self.danger_allow_non_loopback {
                return Err(SimConfigError::Invalid(format!(
                    "the Rekono simulator binds loopback only; {addr} is not (set danger_allow_non_loopback: true for a test network)"
                )));
            }
        }
        for level in self.accounts.iter().map(|a| a.level) {
            if !self.levels.contains_key(&level) {
                return Err(SimConfigError::Invalid(format!(
                    "no factors are configured for level {level}"
                )));
            }
        }
        Ok(())
    }

    pub fn issuer(&self) -> String {
        format!("{}{}", self.public_url, crate::BASE_PATH)
    }
}

pub fn client(c: &RawClient, base: &Path) -> Result<Client, SimConfigError> {
    let jwt_keys = c
        .jwt_keys
        .iter()
        .map(|p| {
            let path = expand(p, base);
            let pem = std::fs::read(&path).map_err(|e| SimConfigError::File {
                path: path.clone(),
                message: format!("cannot read: {e}"),
            })?;
            let key = openssl::pkey::PKey::public_key_from_pem(&pem).map_err(|e| {
                SimConfigError::File {
                    path: path.clone(),
                    message: format!("not a PEM public key: {e}"),
                }
            })?;
            let alg = if key.rsa().is_ok() {
                jsonwebtoken::Algorithm::RS256
            } else {
                jsonwebtoken::Algorithm::ES256
            };
            Ok((alg, pem))
        })
        .collect::<Result<Vec<_>, SimConfigError>>()?;
    let id_token_alg = match c.id_token_alg.as_deref() {
        None | Some("ES256") => jsonwebtoken::Algorithm::ES256,
        Some("RS256") => jsonwebtoken::Algorithm::RS256,
        Some("PS256") => jsonwebtoken::Algorithm::PS256,
        Some("EdDSA") => jsonwebtoken::Algorithm::EdDSA,
        Some(other) => {
            return Err(SimConfigError::Invalid(format!(
                "id_token_alg {other} is not ES256, PS256, EdDSA or RS256"
            )))
        }
    };
    if c.secret.is_none() && jwt_keys.is_empty() {
        return Err(SimConfigError::Invalid(format!(
            "client {} has neither a secret nor jwt_keys",
            c.client_id
        )));
    }
    Ok(Client {
        client_id: c.client_id.clone(),
        name: c.name.clone(),
        secret: c.secret.clone(),
        jwt_keys,
        redirect_uris: c.redirect_uris.clone(),
        post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
        backchannel_logout_uri: c.backchannel_logout_uri.clone(),
        id_token_alg,
    })
}

pub fn load_accounts(path: &Path) -> Result<Vec<Account>, SimConfigError> {
    let base = path.parent().unwrap_or(Path::new("."));
    let raw: RawAccounts =
        serde_yaml::from_str(&read(path)?).map_err(|e| SimConfigError::File {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let bad = |message: String| SimConfigError::File {
        path: path.to_owned(),
        message,
    };
    raw.accounts
        .into_iter()
        .map(|a| {
            if !matches!(a.level, 10 | 20 | 30) {
                return Err(bad(format!(
                    "{}: level {} is not 10, 20 or 30",
                    a.email, a.level
                )));
            }
            let parsed = argon2::PasswordHash::new(&a.password_hash).map_err(|e| {
                bad(format!(
                    "{}: password_hash is not an argon2 PHC string: {e}",
                    a.email
                ))
            })?;
            if let Some(demo) = &a.demo_password {
                use argon2::PasswordVerifier;
                argon2::Argon2::default()
                    .verify_password(demo.as_bytes(), &parsed)
                    .map_err(|_| {
                        bad(format!(
                            "{}: demo_password does not match password_hash",
                            a.email
                        ))
                    })?;
            }
            let totp_secret = match &a.totp_secret {
                Some(s) => Some(
                    crate::totp::base32_decode(s)
                        .ok_or_else(|| bad(format!("{}: totp_secret is not base32", a.email)))?,
                ),
                None => None,
            };
            let certificates = a
                .certificates
                .iter()
                .map(|p| {
                    let cert_path = expand(p, base);
                    let pem = std::fs::read(&cert_path).map_err(|e| {
                        bad(format!(
                            "{}: cannot read certificate {}: {e}",
                            a.email,
                            cert_path.display()
                        ))
                    })?;
                    let cert = openssl::x509::X509::from_pem(&pem).map_err(|e| {
                        bad(format!(
                            "{}: {} is not a PEM certificate: {e}",
                            a.email,
                            cert_path.display()
                        ))
                    })?;
                    let digest = cert
                        .digest(openssl::hash::MessageDigest::sha256())
                        .map_err(|e| bad(format!("{}: fingerprint: {e}", a.email)))?;
                    Ok(hex::encode(digest))
                })
                .collect::<Result<Vec<_>, SimConfigError>>()?;
            Ok(Account {
                sub: a.sub.unwrap_or_else(|| {
                    use sha2::Digest;
                    format!(
                        "rekono-{}",
                        &hex::encode(sha2::Sha256::digest(a.email.to_ascii_lowercase()))[..16]
                    )
                }),
                email: a.email,
                password_hash: a.password_hash,
                demo_password: a.demo_password,
                name: a.name,
                phone: a.phone,
                totp_secret_base32: a.totp_secret,
                totp_secret,
                certificates,
                level: a.level,
            })
        })
        .collect()
}

/// An argon2id PHC string for `password` (the `prehod rekono-sim hash-password` command).
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}
