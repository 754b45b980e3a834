//! Single sign-on across host-only cookies. The login host keeps the user's session in its
//! own `__Host-` cookie; a portal gets its own through a single-use code: after a login (or,
//! when the login host already has a session, at once) the browser is sent to
//! `https://PORTAL/.prehod/sso?code=…`, and the portal exchanges the code for its cookie.
//!
//! A code is sealed (AES-GCM, its own purpose), lives [`LIFETIME`] seconds, names the portal
//! host it is for and the URL to return to, carries the portal's session cookie, and is
//! accepted once: a replay on this replica is refused (across replicas a used-code store
//! needs the shared state of the fleet).

use std::time::Duration;

use prehod_identity::seal::{SealError, Sealer};
use serde::{Deserialize, Serialize};

const PURPOSE: &[u8] = b"prehod sso code v1";
/// How long a code may take from the login host to the portal.
pub const LIFETIME: u64 = 30;
/// Where a portal host takes its code. Reserved on every portal host.
pub const PATH: &str = "/.prehod/sso";

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
}

/// The login's side of a form kept on the portal before it (see `crate::preserve::bind`).
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
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Invalid => "sso_code_invalid",
            Refusal::Expired => "sso_code_expired",
            Refusal::WrongHost => "sso_code_wrong_host",
            Refusal::Replayed => "sso_code_replayed",
        }
    }
}

pub struct Codes {
    sealer: Sealer,
    /// Nonces of the codes exchanged here, for as long as they could be valid.
    used: moka::sync::Cache<String, ()>,
}

impl Codes {
    pub fn new(sealer: Sealer) -> Self {
        Self {
            sealer,
            used: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(Duration::from_secs(LIFETIME + 5))
                .build(),
        }
    }

    /// The URL that takes the browser to `return_to`'s portal (an https URL of a configured
    /// portal, checked before) with a code for `cookie`.
    pub fn redirect(
        &self,
        return_to: &str,
        cookie: &str,
        form: Option<KeptForm>,
        now: u64,
    ) -> Result<String, SealError> {
        self.redirect_through(return_to, return_to, cookie, form, now)
    }

    /// The URL that takes the browser to the host of `via` (the login host, after a
    /// certificate login elsewhere) with a code for `cookie`; that host then goes on to
    /// `return_to`.
    pub fn redirect_through(
        &self,
        via: &str,
        return_to: &str,
        cookie: &str,
        form: Option<KeptForm>,
        now: u64,
    ) -> Result<String, SealError> {
        let mut url =
            url::Url::parse(via).map_err(|e| SealError::Crypto(format!("return: {e}")))?;
        let code = Code {
            host: url.host_str().unwrap_or_default().to_owned(),
            ret: return_to.to_owned(),
            cookie: cookie.to_owned(),
            exp: now + LIFETIME,
            nonce: prehod_identity::random_id(),
            form,
        };
        let json = serde_json::to_vec(&code).map_err(|e| SealError::Crypto(e.to_string()))?;
        let sealed = self.sealer.seal(PURPOSE, &json)?;
        url.set_path(PATH);
        url.set_query(None);
        url.query_pairs_mut().append_pair("code", &sealed);
        url.set_fragment(None);
        Ok(url.to_string())
    }

    /// Exchanges `code` on portal `host` at `now`: the session cookie to set and the URL to
    /// go back to.
    pub fn redeem(&self, code: &str, host: &str, now: u64) -> Result<Redeemed, Refusal> {
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
        // Single use: the first exchange wins, every later one is refused.
        let entry = self.used.entry(code.nonce).or_insert(());
        if !entry.is_fresh() {
            return Err(Refusal::Replayed);
        }
        Ok(Redeemed {
            cookie: code.cookie,
            return_to: code.ret,
            form: code.form,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes() -> Codes {
        Codes::new(Sealer::new(&[[7u8; 32]]))
    }

    #[test]
    fn a_code_is_exchanged_once_on_its_own_host_within_its_lifetime() {
        let c = codes();
        let url = c
            .redirect("https://bips.bankart.si/app?x=1", "COOKIE", None, 1000)
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
        assert_eq!(
            c.redeem(&code, "acq.bankart.si", 1001),
            Err(Refusal::WrongHost)
        );
        assert_eq!(
            c.redeem(&code, "bips.bankart.si", 1000 + LIFETIME + 1),
            Err(Refusal::Expired)
        );
        assert_eq!(
            c.redeem(&code, "bips.bankart.si", 1001),
            Ok(Redeemed {
                cookie: "COOKIE".into(),
                return_to: "https://bips.bankart.si/app?x=1".into(),
                form: None,
            })
        );
        assert_eq!(
            c.redeem(&code, "bips.bankart.si", 1002),
            Err(Refusal::Replayed)
        );
        assert_eq!(
            c.redeem("forged", "bips.bankart.si", 1001),
            Err(Refusal::Invalid)
        );
    }
}
