//! One OpenID provider (`oidc`, or an item of `providers`): its id and button, the client's
//! authentication, scopes and acr levels.

use super::Checker;
use crate::raw;

impl Checker<'_> {
    /// One provider at `at` (`oidc` or `providers[N]`).
    pub(super) fn oidc(&mut self, raw: raw::Oidc, at: &str) -> Option<crate::Oidc> {
        let key = |k: &str| format!("{at}.{k}");
        let id = raw
            .id
            .clone()
            .unwrap_or_else(|| crate::DEFAULT_PROVIDER_ID.to_owned());
        if !is_provider_id(&id) {
            self.problem(
                &key("id"),
                format!("{id:?} is not a provider id: 1 to 32 of a-z, 0-9 and -"),
            );
        } else if id == "certificate" {
            self.problem(
                &key("id"),
                "\"certificate\" names certificate login in portals' methods: not a provider id",
            );
        }
        let button = raw.button.as_ref().map(|b| (b.sl.clone(), b.en.clone()));
        if let Some((sl, en)) = &button {
            if sl.trim().is_empty() || en.trim().is_empty() {
                self.problem(&key("button"), "both sl and en must be non-empty");
            }
        } else if id != crate::DEFAULT_PROVIDER_ID {
            self.problem(
                &key("button"),
                format!("provider {id:?} needs button: {{sl: …, en: …}} (only rekono has built-in texts)"),
            );
        }
        let issuer = raw.issuer.trim_end_matches('/').to_owned();
        match url::Url::parse(&issuer) {
            Ok(u) if u.scheme() == "https" && u.query().is_none() => {}
            _ => {
                self.problem(
                    &key("issuer"),
                    format!("{issuer:?} is not an https:// issuer URL"),
                );
                return None;
            }
        }
        if raw.client_id.is_empty() {
            self.problem(&key("client_id"), "must not be empty");
        }
        let profile = match raw.profile.as_deref() {
            None | Some("default") => Some(crate::Profile::Default),
            Some("fapi2") => Some(crate::Profile::Fapi2),
            Some(other) => {
                self.problem(
                    &key("profile"),
                    format!("{other:?} is not one of: default, fapi2"),
                );
                None
            }
        };
        // FAPI 2.0 (5.3.2.1): the client authenticates with a key, never a shared secret.
        if profile == Some(crate::Profile::Fapi2) {
            if raw.client_auth.as_deref() != Some("private_key_jwt") {
                let place = match raw.client_auth {
                    Some(_) => key("client_auth"),
                    None => key("profile"),
                };
                self.problem(
                    &place,
                    "profile fapi2 needs client_auth: private_key_jwt (a client secret is not allowed)",
                );
                return None;
            }
            if raw.client_secret.is_some() {
                self.problem(
                    &key("client_secret"),
                    "profile fapi2 does not allow a client secret (client_auth: private_key_jwt)",
                );
                return None;
            }
        }
        let client_auth = match raw.client_auth.as_deref().unwrap_or("client_secret_basic") {
            "client_secret_basic" => match raw.client_secret.as_deref() {
                Some(secret) if !secret.is_empty() => {
                    Some(crate::ClientAuth::Secret(secret.to_owned()))
                }
                _ => {
                    self.problem(
                        &key("client_secret"),
                        "client_secret_basic needs a non-empty client_secret",
                    );
                    None
                }
            },
            "private_key_jwt" => match &raw.client_key {
                Some(path) => self
                    .read_key_file(path, &key("client_key"))
                    .and_then(
                        |(p, pem)| match openssl::pkey::PKey::private_key_from_pem(&pem) {
                            Ok(k) if k.rsa().is_ok() && k.bits() < crate::MIN_RSA_BITS => {
                                self.problem(
                                    &key("client_key"),
                                    format!(
                                        "{} is a {}-bit RSA key: at least {} bits (FAPI 2.0 5.4.1, NIST SP 800-131A)",
                                        p.display(),
                                        k.bits(),
                                        crate::MIN_RSA_BITS
                                    ),
                                );
                                None
                            }
                            Ok(k) if k.rsa().is_ok() => Some(crate::ClientAuth::PrivateKeyJwt {
                                key_pem: pem,
                                rsa: true,
                            }),
                            Ok(k)
                                if k.ec_key().is_ok_and(|e| {
                                    e.group().curve_name()
                                        == Some(openssl::nid::Nid::X9_62_PRIME256V1)
                                }) =>
                            {
                                Some(crate::ClientAuth::PrivateKeyJwt {
                                    key_pem: pem,
                                    rsa: false,
                                })
                            }
                            _ => {
                                self.problem(
                                    &key("client_key"),
                                    format!(
                                        "{} is not an RSA or EC P-256 private key in PEM",
                                        p.display()
                                    ),
                                );
                                None
                            }
                        },
                    ),
                None => {
                    self.problem(
                        &key("client_key"),
                        "private_key_jwt needs client_key (a PEM private key)",
                    );
                    None
                }
            },
            other => {
                self.problem(
                    &key("client_auth"),
                    format!("{other:?} is not one of: client_secret_basic, private_key_jwt"),
                );
                None
            }
        };
        let scopes = raw
            .scopes
            .unwrap_or_else(|| vec!["openid".into(), "profile".into(), "email".into()]);
        if !scopes.iter().any(|s| s == "openid") {
            self.problem(&key("scopes"), "must include openid");
        }
        let acr_levels: Vec<(String, u8)> = raw
            .acr_levels
            .unwrap_or_else(|| {
                [
                    ("10".to_owned(), 10),
                    ("20".to_owned(), 20),
                    ("30".to_owned(), 30),
                ]
                .into()
            })
            .into_iter()
            .collect();
        for (acr, level) in &acr_levels {
            if !matches!(level, 10 | 20 | 30) {
                self.problem(
                    &format!("{at}.acr_levels.{acr}"),
                    format!("level {level} is not 10, 20 or 30"),
                );
            }
        }
        let ca = match &raw.ca {
            Some(path) => Some(self.read_file(path, &key("ca"), "CA")?.1),
            None => None,
        };
        let timeout = self
            .duration(raw.timeout.as_ref(), &key("timeout"))
            .unwrap_or(std::time::Duration::from_secs(5));
        Some(crate::Oidc {
            issuer,
            client_id: raw.client_id,
            client_auth: client_auth?,
            scopes,
            acr_levels,
            ca,
            timeout,
            logout_at_provider: raw.logout_at_provider.unwrap_or(true),
            profile: profile?,
            userinfo: raw.userinfo.unwrap_or(false),
            user_id_prefix: if id == crate::DEFAULT_PROVIDER_ID {
                String::new()
            } else {
                format!("{id}:")
            },
            id,
            button,
        })
    }
}

/// A provider id: 1 to 32 of `a-z`, `0-9`, `-` (it goes into URLs, user ids and labels).
pub(super) fn is_provider_id(id: &str) -> bool {
    (1..=32).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
