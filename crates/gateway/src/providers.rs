//! The OpenID providers a login may go through (`providers:`, or the single `oidc:` one),
//! built once: each one's relying-party settings, its discovered metadata and keys, its
//! callback path, and the user ids it makes. Which provider a request is about is decided by
//! the login's sealed attempt (callback), the session (logout, step-up) or a logout token's
//! `iss` (back-channel logout) — never by a provider's answer alone.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use prehod_identity::oidc::{Provider, Settings};

/// One configured provider.
pub struct LoginProvider {
    /// `rekono`, `bankart-staff`, … (`[a-z0-9-]`).
    pub id: String,
    pub settings: Settings,
    /// Filled by the discovery background task once the provider answers.
    discovered: RwLock<Option<Arc<Provider>>>,
    pub logout_at_provider: bool,
    /// Put before the provider's `sub` (and `sid`) to make the gateway's ids: `ID:`, or empty
    /// for `rekono` (see [`LoginProvider::user_id`]).
    pub user_id_prefix: String,
    /// The login page's button (Slovenian, English); `None`: the built-in Rekono texts.
    pub button: Option<(String, String)>,
    /// Where this provider's answers come back on the login host: `/oidc/callback` for
    /// `rekono` (registered so before providers were a list), `/oidc/callback/ID` for others.
    pub callback_path: String,
}

/// The callback path of every provider but `rekono`: this, then its id.
pub const CALLBACK_PREFIX: &str = "/oidc/callback/";
/// `rekono`'s callback path.
pub const REKONO_CALLBACK: &str = "/oidc/callback";

impl LoginProvider {
    pub fn new(config: &prehod_config::Oidc, login_url: &str) -> Self {
        let callback_path = if config.id == prehod_config::DEFAULT_PROVIDER_ID {
            REKONO_CALLBACK.to_owned()
        } else {
            format!("{CALLBACK_PREFIX}{}", config.id)
        };
        Self {
            id: config.id.clone(),
            settings: Settings {
                issuer: config.issuer.clone(),
                client_id: config.client_id.clone(),
                client_auth: config.client_auth.clone(),
                redirect_uri: format!("{login_url}{callback_path}"),
                scopes: config.scopes.clone(),
                acr_levels: config.acr_levels.clone(),
                extra_roots: config.ca.iter().cloned().collect(),
                timeout: config.timeout,
                max_skew: Duration::from_secs(60),
                profile: config.profile,
                userinfo: config.userinfo,
            },
            discovered: RwLock::new(None),
            logout_at_provider: config.logout_at_provider,
            user_id_prefix: config.user_id_prefix.clone(),
            button: config.button.clone(),
            callback_path,
        }
    }

    /// The provider's metadata and keys, once discovered.
    pub fn discovered(&self) -> Option<Arc<Provider>> {
        self.discovered
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_discovered(&self, provider: Provider) {
        let provider = match self.discovered() {
            Some(previous) => provider.adopt_seen(&previous),
            None => provider,
        };
        *self.discovered.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(provider));
    }

    /// The gateway's user id for the `sub` this provider asserted: `ID:sub` (bare for
    /// `rekono`, whose `sub` never has a `:`), so two providers' users never meet.
    pub fn user_id(&self, sub: &str) -> String {
        format!("{}{sub}", self.user_id_prefix)
    }

    /// The key of this provider's session id (`sid`) in sessions and revocations: `ID:sid`;
    /// `rekono`'s bare, unless it has a `:` (then `rekono:sid`, which no other provider's
    /// can be). One provider's back-channel logout never names another's sessions.
    pub fn op_sid(&self, sid: &str) -> String {
        if self.user_id_prefix.is_empty() && !sid.contains(':') {
            sid.to_owned()
        } else if self.user_id_prefix.is_empty() {
            format!("{}:{sid}", self.id)
        } else {
            format!("{}{sid}", self.user_id_prefix)
        }
    }

    /// A new discovery with these settings keeps what the running one learnt only when every
    /// relying-party setting is the same: issuer, client id, client authentication and its
    /// key, scopes, `acr` levels, trust roots, timeout, profile, userinfo. A reload that
    /// removes a compromised CA, rotates a leaked key or demotes an `acr` must not leave
    /// logins going through the provider built with the old ones while the new discovery
    /// fails (which whoever holds the removed CA's certificate can make it do).
    pub fn same_registration(&self, other: &LoginProvider) -> bool {
        self.id == other.id && self.settings == other.settings
    }

    /// For a configuration reload: the discovered provider of `old`, when it is the same
    /// registration, serves until this one is discovered again.
    pub fn adopt(&self, old: &LoginProvider) {
        if self.same_registration(old) {
            *self.discovered.write().unwrap_or_else(|e| e.into_inner()) = old.discovered();
        }
    }
}

/// The configured providers, in the order of the login page's buttons. Never empty.
pub struct Providers(Vec<LoginProvider>);

impl Providers {
    pub fn new(configs: &[prehod_config::Oidc], login_url: &str) -> Self {
        Self(
            configs
                .iter()
                .map(|c| LoginProvider::new(c, login_url))
                .collect(),
        )
    }

    pub fn iter(&self) -> std::slice::Iter<'_, LoginProvider> {
        self.0.iter()
    }

    /// The first provider: a login that names none, and a portal without `methods`.
    pub fn first(&self) -> Option<&LoginProvider> {
        self.0.first()
    }

    pub fn by_id(&self, id: &str) -> Option<&LoginProvider> {
        self.0.iter().find(|p| p.id == id)
    }

    /// The provider whose callback path `path` is.
    pub fn by_callback(&self, path: &str) -> Option<&LoginProvider> {
        self.0.iter().find(|p| p.callback_path == path)
    }

    /// The providers with this issuer (a logout token's `iss`): each with its own keys.
    pub fn by_issuer<'a>(&'a self, issuer: &'a str) -> impl Iterator<Item = &'a LoginProvider> {
        self.0.iter().filter(move |p| {
            p.settings.issuer.trim_end_matches('/') == issuer.trim_end_matches('/')
        })
    }

    /// The provider of an OpenID session (`rekono` for one sealed before providers were a
    /// list); `None` for a certificate session or a provider no longer configured.
    pub fn of_session(
        &self,
        session: &prehod_identity::session::Session,
    ) -> Option<&LoginProvider> {
        match session.method {
            prehod_identity::session::Method::Rekono => self.by_id(session.method_label()),
            prehod_identity::session::Method::Certificate => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(id: &str, prefix: &str) -> LoginProvider {
        LoginProvider::new(
            &prehod_config::Oidc {
                issuer: format!("https://{id}.localhost"),
                client_id: "c".into(),
                client_auth: prehod_config::ClientAuth::Secret("s".into()),
                scopes: vec!["openid".into()],
                acr_levels: vec![],
                ca: None,
                timeout: Duration::from_secs(1),
                logout_at_provider: true,
                id: id.into(),
                button: None,
                user_id_prefix: prefix.into(),
                profile: prehod_config::Profile::Default,
                userinfo: false,
            },
            "https://login.bankart.localhost",
        )
    }

    #[test]
    fn a_reload_to_another_profile_does_not_keep_the_old_provider() {
        use crate::testing::{Dev, DEV};
        let dev = Dev::new();
        let first = |text: &str| {
            let auth = dev.config(text).auth.expect("a login");
            LoginProvider::new(&auth.providers[0], "https://login.bankart.localhost")
        };
        let today = first(DEV);
        assert!(first(DEV).same_registration(&today));
        let fapi = DEV.replace(
            "    client_secret: prehod-dev-secret\n",
            "    client_auth: private_key_jwt\n    client_key: ${PREHOD_DEV_CERTS}/oidc-client.key\n    profile: fapi2\n",
        );
        assert_ne!(fapi, DEV);
        let fapi = first(&fapi);
        assert!(!fapi.same_registration(&today));
        assert!(!today.same_registration(&fapi));
        let userinfo = first(&DEV.replace(
            "    client_secret: prehod-dev-secret\n",
            "    client_secret: prehod-dev-secret\n    userinfo: true\n",
        ));
        assert!(!userinfo.same_registration(&today));
    }

    #[test]
    fn a_reload_that_changes_any_relying_party_setting_does_not_keep_the_old_provider() {
        let today = provider("rekono", "");
        assert!(provider("rekono", "").same_registration(&today));
        type Edit = fn(&mut LoginProvider);
        let edits: [(&str, Edit); 8] = [
            ("trust roots", |p| {
                p.settings.extra_roots = vec![b"another CA".to_vec()]
            }),
            ("client secret", |p| {
                p.settings.client_auth = prehod_config::ClientAuth::Secret("rotated".into())
            }),
            ("client key", |p| {
                p.settings.client_auth = prehod_config::ClientAuth::PrivateKeyJwt {
                    key_pem: b"another key".to_vec(),
                    rsa: false,
                }
            }),
            ("acr levels", |p| {
                p.settings.acr_levels = vec![("x".into(), 1)]
            }),
            ("scopes", |p| p.settings.scopes.push("email".into())),
            ("timeout", |p| p.settings.timeout = Duration::from_secs(9)),
            ("issuer", |p| p.settings.issuer.push('/')),
            ("client id", |p| p.settings.client_id.push('2')),
        ];
        for (what, edit) in edits {
            let mut changed = provider("rekono", "");
            edit(&mut changed);
            assert!(!changed.same_registration(&today), "{what}");
            assert!(!today.same_registration(&changed), "{what}");
        }
    }

    #[test]
    fn user_ids_and_provider_session_ids_of_two_providers_never_meet() {
        let rekono = provider("rekono", "");
        let staff = provider("staff", "staff:");
        assert_eq!(rekono.user_id("u1"), "u1");
        assert_eq!(staff.user_id("u1"), "staff:u1");
        assert_ne!(rekono.user_id("u1"), staff.user_id("u1"));
        // The `sid` staff would have to send to end a Rekono session "staff:x" cannot be
        // made: its own are all `staff:`-prefixed, and a Rekono `sid` with `:` gets
        // `rekono:` before it.
        assert_eq!(rekono.op_sid("x"), "x");
        assert_eq!(rekono.op_sid("staff:x"), "rekono:staff:x");
        assert_eq!(staff.op_sid("x"), "staff:x");
        assert_ne!(staff.op_sid("x"), rekono.op_sid("staff:x"));
        assert_eq!(rekono.callback_path, "/oidc/callback");
        assert_eq!(staff.callback_path, "/oidc/callback/staff");
        assert_eq!(
            staff.settings.redirect_uri,
            "https://login.bankart.localhost/oidc/callback/staff"
        );
    }
}
