//! The userinfo call (OIDC Core 5.3), when configured (`oidc.userinfo`): the claims the ID token
//! lacks (name, e-mail), asked with the access token — under FAPI 2.0 a DPoP-bound one, with a
//! proof that carries its hash (`ath`) — and taken only when userinfo's `sub` is the ID
//! token's (OIDC Core 5.3.2: otherwise the answer is not about this login and is refused).

use openidconnect::core::CoreTokenResponse;
use openidconnect::OAuth2TokenResponse;

use super::bounded::read_body;
use super::discovery::Discovered;
use super::{Identity, OidcError, Provider};

impl Provider {
    /// `identity` with the claims it lacks from the userinfo endpoint.
    pub(super) async fn with_userinfo(
        &self,
        current: &Discovered,
        token: &CoreTokenResponse,
        mut identity: Identity,
        now: u64,
    ) -> Result<Identity, OidcError> {
        let endpoint = current
            .userinfo_endpoint
            .as_deref()
            .ok_or_else(|| OidcError::Metadata("no userinfo_endpoint".into()))?;
        let access = token.access_token().secret();
        let request = match &self.dpop {
            Some(dpop) => self
                .http
                .get(endpoint)
                .header("Authorization", format!("DPoP {access}"))
                .header("DPoP", dpop.proof("GET", endpoint, now, Some(access))?),
            None => self.http.get(endpoint).bearer_auth(access),
        };
        let unavailable = |e: reqwest::Error| OidcError::Unavailable(format!("userinfo: {e}"));
        let resp = request.send().await.map_err(unavailable)?;
        let status = resp.status().as_u16();
        match status {
            200 => {}
            500.. => {
                return Err(OidcError::Unavailable(format!(
                    "userinfo answered {status}"
                )))
            }
            _ => return Err(OidcError::Refused(format!("userinfo answered {status}"))),
        }
        let body = read_body(resp, "userinfo").await?;
        let claims: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| OidcError::InvalidToken(format!("userinfo: {e}")))?;
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(serde_json::Value::as_str)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        match text("sub") {
            Some(sub) if sub == identity.sub => {}
            other => {
                return Err(OidcError::InvalidToken(format!(
                    "userinfo's sub {other:?} is not the ID token's"
                )))
            }
        }
        if identity.name.is_empty() {
            identity.name = text("name").unwrap_or_default();
        }
        if identity.email.is_empty() {
            identity.email = text("email").unwrap_or_default();
        }
        Ok(identity)
    }
}
