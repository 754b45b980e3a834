//! The token request: the authorization code and its PKCE verifier redeemed at the token
//! endpoint, and what a failed request means — an outage, a refusal, or an invalid token.

use openidconnect::core::CoreTokenResponse;
use openidconnect::{AuthorizationCode, OAuth2TokenResponse, PkceCodeVerifier};

use super::bounded::{read_body, BoundedHttp};
use super::discovery::Discovered;
use super::{OidcError, Provider};

impl Provider {
    /// Redeems `code` with the attempt's PKCE `verifier` at the token endpoint, the client
    /// authenticated by its secret or, with `private_key_jwt`, by a client assertion.
    pub(super) async fn exchange_code(
        &self,
        current: &Discovered,
        code: &str,
        verifier: &str,
        now: u64,
    ) -> Result<CoreTokenResponse, OidcError> {
        match &self.client_key {
            None => {
                // The status of the answer decides what a failure is (see `token_failure`);
                // openidconnect reports a 5xx page and a malformed ID token alike as `Parse`.
                let http = BoundedHttp::new(&self.http);
                current
                    .client
                    .exchange_code(AuthorizationCode::new(code.to_owned()))
                    .map_err(|e| OidcError::Config(e.to_string()))?
                    .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
                    .request_async(&http)
                    .await
                    .map_err(|e| match e {
                        openidconnect::RequestTokenError::Request(e) => {
                            OidcError::Unavailable(format!("token endpoint: {e}"))
                        }
                        other => token_failure(http.status(), other.to_string()),
                    })
            }
            Some(_) => {
                self.token_with_client_assertion(&current.token_endpoint, code, verifier, now)
                    .await
            }
        }
    }

    /// The token request of `private_key_jwt` (RFC 7523 2.2), which `openidconnect` does not
    /// build itself: a short-lived JWT signed with the client's key (`client_auth.rs`), its
    /// `aud` the token endpoint (the issuer under FAPI 2.0, `par.rs`). Under FAPI 2.0 the
    /// request carries a DPoP proof, and the access token must come back bound to its key.
    async fn token_with_client_assertion(
        &self,
        token_endpoint: &str,
        code: &str,
        verifier: &str,
        now: u64,
    ) -> Result<CoreTokenResponse, OidcError> {
        let mut form: Vec<(String, String)> = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.settings.redirect_uri.as_str()),
            ("code_verifier", verifier),
            ("client_id", self.settings.client_id.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        form.extend(self.client_authentication(now)?);
        let mut request = self.http.post(token_endpoint).form(&form);
        if let Some(dpop) = &self.dpop {
            request = request.header("DPoP", dpop.proof("POST", token_endpoint, now, None)?);
        }
        let resp = request
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("token endpoint: {e}")))?;
        let status = resp.status().as_u16();
        let body = read_body(resp, "token endpoint").await?;
        if status != 200 {
            let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let detail = error
                .get("error")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("token request refused");
            return Err(token_failure(status, detail.to_owned()));
        }
        // The ID token's claims are parsed here: one without `exp`, `iat` or `sub` fails.
        let token: CoreTokenResponse =
            serde_json::from_slice(&body).map_err(|e| token_failure(status, e.to_string()))?;
        // RFC 9449 5: a DPoP-bound token says so; a Bearer one would work for anyone who
        // copies it, which FAPI 2.0 does not allow.
        if self.dpop.is_some() && !token.token_type().as_ref().eq_ignore_ascii_case("DPoP") {
            return Err(OidcError::InvalidToken(format!(
                "the access token is not DPoP-bound (token_type {:?})",
                token.token_type().as_ref()
            )));
        }
        Ok(token)
    }
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

#[cfg(test)]
mod tests {
    use crate::oidc::test_provider::{client_auths, login, TestProvider};
    use crate::oidc::{ClientAuth, OidcError, Provider};

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
}
