//! The authorization request: a new login attempt's URL at the provider (PKCE S256, state,
//! nonce, the level as `acr_values`, the person's language and hints) and the attempt's
//! secrets, which the browser keeps sealed until it comes back.

use std::time::Duration;

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthenticationContextClass, CsrfToken, Nonce, PkceCodeChallenge, Scope};
use serde::{Deserialize, Serialize};

use super::Provider;

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

impl Provider {
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
}
