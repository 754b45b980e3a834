//! The authorization response: its `iss` (RFC 9207), the code exchanged at the token endpoint
//! (`token.rs`), the ID token checked into an [`Identity`] (`id_token.rs`), and, when
//! configured, the claims it lacks from userinfo (`userinfo.rs`).

use super::{Attempt, Identity, OidcError, Profile, Provider};

impl Provider {
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
        self.check_response_iss(iss)?;
        let token = self
            .exchange_code(&current, code, &attempt.verifier, now)
            .await?;
        let identity = self.identity(&current, &token, attempt, now).await?;
        if !self.settings.userinfo {
            return Ok(identity);
        }
        self.with_userinfo(&current, &token, identity, now).await
    }

    /// RFC 9207: the authorization response's `iss` — of an error response too (2.4) — is
    /// this provider's; it must be there when the provider promised it, and always under
    /// FAPI 2.0 (5.3.2.2), whatever discovery said.
    pub fn check_response_iss(&self, iss: Option<&str>) -> Result<(), OidcError> {
        match iss {
            Some(iss) if iss != self.settings.issuer => Err(OidcError::WrongIssuer(iss.to_owned())),
            None if self.current().iss_in_response || self.settings.profile == Profile::Fapi2 => {
                Err(OidcError::MissingIssuer)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::oidc::test_provider::TestProvider;
    use crate::oidc::{ClientAuth, OidcError, Provider};

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
}
