//! Single sign-on across host-only cookies. The login host keeps the user's session in its
//! own `__Host-` cookie; a portal gets its own through a single-use code: after a login (or,
//! when the login host already has a session, at once) the browser is sent to
//! `https://PORTAL/.prehod/sso?code=…`, and the portal exchanges the code for its cookie.
//!
//! A code is sealed (AES-GCM, its own purpose), lives [`LIFETIME`] seconds, names the portal
//! host it is for and the URL to return to, carries the portal's session cookie, is accepted
//! once (a replay on this replica is refused; across replicas a used-code store needs the
//! shared state of the fleet), and is bound to the browser that asked for it: the host that
//! sends a browser to log in sets a random nonce in its own `__Host-` cookie and passes its
//! hash (the *binding*) along; the code carries the binding, and the host takes the code
//! only from the browser whose nonce hashes to it. A code minted by an attacker for their own
//! session is useless in a victim's browser (login CSRF), and nobody can swap a session.

use std::time::Duration;

use prehod_identity::seal::{SealError, Sealer};
use serde::{Deserialize, Serialize};

const PURPOSE: &[u8] = b"prehod sso code v1";
/// How long a code may take from the login host to the portal.
pub const LIFETIME: u64 = 30;
/// Where a portal host takes its code. Reserved on every portal host.
/// The code's path under the portal prefix (`/.prehod/sso`).
pub const PATH_IN_PREFIX: &str = "sso";

#[derive(Serialize, Deserialize)]
struct Code {
    /// The portal host the code is for.
    host: String,
    /// Where the portal sends the browser once its cookie is set.
    ret: String,
    /// The portal's session cookie value (a session sealed for that host).
    cookie: String,
    exp: u64,
    nonce: String,
    /// A form the portal kept before this login, to bind to its session there.
    #[serde(default)]
    form: Option<KeptForm>,
    /// The binding of the browser that asked for the login (see [`binding`]).
    bind: String,
    /// For a code to the login host (after a certificate login): the portal's binding, for
    /// the code the login host then gives the portal.
    #[serde(default)]
    next_bind: Option<String>,
}

/// The name of the cookie that holds a host's nonce while its browser is away logging in:
/// `__Host-<cookies.prefix>_sso` in either cookie scope (host-only, never planted by a sibling
/// host), under the prefix like the gateway's other cookies so that the proxy and the
/// forward-auth template take it out (computed once, in [`crate::auth::AuthState`]).
pub fn nonce_cookie_name(prefix: &str) -> String {
    crate::cookies::name(&format!("{prefix}_sso"), &prehod_config::CookieScope::Host)
}

/// A new nonce (for the host's cookie) and its binding (for the URL and the code).
pub fn new_binding() -> (String, String) {
    let nonce = prehod_identity::random_id();
    let bind = binding(&nonce);
    (nonce, bind)
}

/// This browser's nonce (the one it has, if well-formed, else a new one) and its binding.
pub fn binding_for(existing: Option<&str>) -> (String, String) {
    match existing.filter(|n| {
        n.len() >= 16
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        Some(n) => (n.to_owned(), binding(n)),
        None => new_binding(),
    }
}

/// The binding of a nonce: what may travel in URLs and codes without giving the nonce away.
pub fn binding(nonce: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(nonce.as_bytes());
    hex::encode(digest.get(..16).unwrap_or_default())
}

/// A binding as it may appear in a URL: 32 hex digits. Anything else is ignored.
pub fn is_binding(value: &str) -> bool {
    value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The login's side of a form kept on the portal before it (see `crate::portal::keep_form::bind`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptForm {
    /// The id the login attempt carried for it.
    pub id: String,
    pub attempt_created: u64,
    pub over_live_session: bool,
}

/// What a redeemed code gives the portal.
#[derive(Debug, PartialEq, Eq)]
pub struct Redeemed {
    /// The portal's session cookie value.
    pub cookie: String,
    pub return_to: String,
    pub form: Option<KeptForm>,
    /// For the login host: the portal's binding (see `redirect_through`).
    pub next_bind: Option<String>,
}

/// Where a code goes and what it carries.
pub struct Issue<'a> {
    /// `https://host[:port]…` of the host that takes the code.
    pub via: &'a str,
    pub return_to: &'a str,
    pub cookie: &'a str,
    pub form: Option<KeptForm>,
    /// The binding of the browser at `via`'s host.
    pub bind: &'a str,
    pub next_bind: Option<String>,
}

/// Why a code is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a code of this gateway, or altered.
    Invalid,
    Expired,
    /// Made for another portal.
    WrongHost,
    /// Already exchanged.
    Replayed,
    /// Not asked for by this browser (its nonce does not match the code's binding).
    OtherBrowser,
    /// The host already has the session of another person: a code never replaces it.
    OtherUser,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Invalid => "sso_code_invalid",
            Refusal::Expired => "sso_code_expired",
            Refusal::WrongHost => "sso_code_wrong_host",
            Refusal::Replayed => "sso_code_replayed",
            Refusal::OtherBrowser => "sso_code_other_browser",
            Refusal::OtherUser => "sso_code_other_user",
        }
    }
}

pub struct Codes {
    sealer: Sealer,
    path: String,
    /// Nonces of the codes exchanged here, for as long as they could be valid.
    used: moka::sync::Cache<String, ()>,
}

impl Codes {
    /// Codes taken at `path` (the portal prefix and [`PATH_IN_PREFIX`]).
    pub fn new(sealer: Sealer, path: String) -> Self {
        Self {
            sealer,
            path,
            used: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(LIFETIME + 5))
                .build(),
        }
    }

    /// Where codes are taken, on every portal host and the login host.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The single-use id of a genuine code (to claim it in the fleet's shared state).
    pub fn nonce_of(&self, code: &str) -> Option<String> {
        let plain = self.sealer.open(PURPOSE, code).ok()?;
        serde_json::from_slice::<Code>(&plain).ok().map(|c| c.nonce)
    }

    /// Another replica exchanged the code with this nonce: it is refused here as replayed.
    pub fn mark_used(&self, nonce: String) {
        self.used.insert(nonce, ());
    }

    /// For a configuration reload: the codes already exchanged stay used.
    pub fn adopt(mut self, old: &Codes) -> Self {
        self.used = old.used.clone();
        self
    }

    /// The URL that takes the browser to the host of `issue.via` with a code. `return_to` is
    /// an https URL of a configured portal, checked before.
    pub fn redirect(&self, issue: Issue<'_>, now: u64) -> Result<String, SealError> {
        let mut url =
            url::Url::parse(issue.via).map_err(|e| SealError::Crypto(format!("return: {e}")))?;
        let code = Code {
            host: url.host_str().unwrap_or_default().to_owned(),
            ret: issue.return_to.to_owned(),
            cookie: issue.cookie.to_owned(),
            exp: now + LIFETIME,
            nonce: prehod_identity::random_id(),
            form: issue.form,
            bind: issue.bind.to_owned(),
            next_bind: issue.next_bind,
        };
        let json = serde_json::to_vec(&code).map_err(|e| SealError::Crypto(e.to_string()))?;
        let sealed = self.sealer.seal(PURPOSE, &json)?;
        url.set_path(&self.path);
        url.set_query(None);
        url.query_pairs_mut().append_pair("code", &sealed);
        url.set_fragment(None);
        Ok(url.to_string())
    }

    /// Exchanges `code` on `host` at `now`, for the browser whose nonce cookie is `nonce`:
    /// the session cookie to set and the URL to go back to.
    pub fn redeem(
        &self,
        code: &str,
        host: &str,
        nonce: Option<&str>,
        now: u64,
    ) -> Result<Redeemed, Refusal> {
        let plain = self
            .sealer
            .open(PURPOSE, code)
            .map_err(|_| Refusal::Invalid)?;
        let code: Code = serde_json::from_slice(&plain).map_err(|_| Refusal::Invalid)?;
        if now > code.exp {
            return Err(Refusal::Expired);
        }
        if !code.host.eq_ignore_ascii_case(host) {
            return Err(Refusal::WrongHost);
        }
        let ours = nonce.is_some_and(|n| {
            let b = binding(n);
            b.len() == code.bind.len()
                && b.bytes()
                    .zip(code.bind.bytes())
                    .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                    == 0
        });
        if !ours {
            return Err(Refusal::OtherBrowser);
        }
        // Single use: the first exchange wins, every later one is refused.
        let entry = self.used.entry(code.nonce).or_insert(());
        if !entry.is_fresh() {
            return Err(Refusal::Replayed);
        }
        Ok(Redeemed {
            cookie: code.cookie,
            return_to: code.ret,
            form: code.form,
            next_bind: code.next_bind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes() -> Codes {
        Codes::new(Sealer::new(&[[7u8; 32]]), "/.prehod/sso".into())
    }

    #[test]
    fn a_code_is_exchanged_once_on_its_own_host_within_its_lifetime() {
        let c = codes();
        let (nonce, bind) = new_binding();
        let url = c
            .redirect(
                Issue {
                    via: "https://bips.bankart.si/app?x=1",
                    return_to: "https://bips.bankart.si/app?x=1",
                    cookie: "COOKIE",
                    form: None,
                    bind: &bind,
                    next_bind: None,
                },
                1000,
            )
            .expect("code");
        assert!(
            url.starts_with("https://bips.bankart.si/.prehod/sso?code="),
            "{url}"
        );
        let code = url::Url::parse(&url)
            .expect("url")
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .expect("code");
        let n = Some(nonce.as_str());
        assert_eq!(
            c.redeem(&code, "acq.bankart.si", n, 1001),
            Err(Refusal::WrongHost)
        );
        assert_eq!(
            c.redeem(&code, "bips.bankart.si", n, 1000 + LIFETIME + 1),
            Err(Refusal::Expired)
        );
        // Another browser (another nonce, or none) cannot take it.
        let (other, _) = new_binding();
        assert_eq!(
            c.redeem(&code, "bips.bankart.si", Some(&other), 1001),
            Err(Refusal::OtherBrowser)
        );
        assert_eq!(
            c.redeem(&code, "bips.bankart.si", None, 1001),
            Err(Refusal::OtherBrowser)
        );
        assert_eq!(
            c.redeem(&code, "bips.bankart.si", n, 1001),
            Ok(Redeemed {
                cookie: "COOKIE".into(),
                return_to: "https://bips.bankart.si/app?x=1".into(),
                form: None,
                next_bind: None,
            })
        );
        assert_eq!(
            c.redeem(&code, "bips.bankart.si", n, 1002),
            Err(Refusal::Replayed)
        );
        assert_eq!(
            c.redeem("forged", "bips.bankart.si", n, 1001),
            Err(Refusal::Invalid)
        );
        assert!(is_binding(&bind) && !is_binding("x"));
    }
}
