//! Pushed authorization requests (RFC 9126), how the FAPI 2.0 profile sends every
//! authorization request: its parameters POSTed to the provider's
//! `pushed_authorization_request_endpoint`, the client authenticated as at the token endpoint,
//! and the browser sent to the authorization endpoint with `client_id` and the `request_uri`
//! the provider answered, nothing else.

use super::bounded::read_body;
use super::{Attempt, Hints, OidcError, Profile, Provider};

/// The longest `request_uri` sent on in the browser's `Location` (RFC 9126's are a URN of a
/// few dozen characters).
const MAX_REQUEST_URI: usize = 2048;

impl Provider {
    /// A new attempt at `level` and the URL to send the browser to: under the default
    /// profile, the authorization request itself ([`Provider::start_with`]); under FAPI 2.0,
    /// the request pushed first, and the URL only names it.
    pub async fn begin(
        &self,
        level: u8,
        return_to: String,
        now: u64,
        hints: &Hints,
    ) -> Result<(String, Attempt), OidcError> {
        let (url, attempt) = self.start_with(level, return_to, now, hints);
        match self.settings.profile {
            Profile::Default => Ok((url, attempt)),
            Profile::Fapi2 => Ok((self.push(&url, now).await?, attempt)),
        }
    }

    /// Pushes the authorization request `url` (its query) and returns the authorization URL
    /// that names it: `client_id` and `request_uri` only.
    async fn push(&self, url: &str, now: u64) -> Result<String, OidcError> {
        let current = self.current();
        let endpoint = current.par_endpoint.as_deref().ok_or_else(|| {
            OidcError::Metadata("no pushed_authorization_request_endpoint".into())
        })?;
        let url = url::Url::parse(url).map_err(|e| OidcError::Config(e.to_string()))?;
        let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        form.extend(self.client_authentication(now)?);
        let resp = self
            .http
            .post(endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Unavailable(format!("PAR endpoint: {e}")))?;
        let status = resp.status().as_u16();
        let body = read_body(resp, "PAR endpoint").await?;
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let field = |name: &str| body.get(name).and_then(serde_json::Value::as_str);
        match status {
            // RFC 9126 2.2: 201 Created, with the request_uri.
            201 => {}
            500.. => {
                return Err(OidcError::Unavailable(format!(
                    "PAR endpoint answered {status}"
                )))
            }
            _ => {
                return Err(OidcError::Refused(format!(
                    "PAR endpoint ({status}): {}",
                    field("error").unwrap_or("refused")
                )))
            }
        }
        let request_uri = field("request_uri").ok_or_else(|| {
            OidcError::Refused("the PAR endpoint's answer has no request_uri".into())
        })?;
        check_request_uri(request_uri)?;
        let mut authorize = url::Url::parse(&current.authorization_endpoint)
            .map_err(|e| OidcError::Metadata(format!("authorization_endpoint: {e}")))?;
        authorize
            .query_pairs_mut()
            .clear()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("request_uri", request_uri);
        Ok(authorize.to_string())
    }

    /// The form fields (besides `client_id`) that authenticate the client at the PAR and token endpoints with
    /// `private_key_jwt`; under FAPI 2.0 the assertion's audience is the issuer identifier
    /// (a string), otherwise the token endpoint.
    pub(super) fn client_authentication(
        &self,
        now: u64,
    ) -> Result<Vec<(String, String)>, OidcError> {
        let key = self.client_key.as_ref().ok_or_else(|| {
            OidcError::Config("this profile needs client_auth: private_key_jwt".into())
        })?;
        let audience = match self.settings.profile {
            Profile::Fapi2 => self.settings.issuer.clone(),
            Profile::Default => self.current().token_endpoint.clone(),
        };
        let assertion = key.assertion(&self.settings.client_id, &audience, now)?;
        Ok(vec![
            (
                "client_assertion_type".into(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion".into(), assertion),
        ])
    }
}

/// A `request_uri` the gateway sends on: at most [`MAX_REQUEST_URI`] characters, printable
/// ASCII without space (a URI), so a provider cannot make the redirect it answers huge or
/// carry what a URI cannot.
fn check_request_uri(uri: &str) -> Result<(), OidcError> {
    if uri.is_empty() || uri.len() > MAX_REQUEST_URI {
        return Err(OidcError::Refused(format!(
            "the PAR endpoint's request_uri is {} bytes long (at most {MAX_REQUEST_URI})",
            uri.len()
        )));
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(OidcError::Refused(
            "the PAR endpoint's request_uri has characters a URI cannot".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_request_uri;

    #[test]
    fn a_request_uri_is_short_and_printable() {
        assert!(
            check_request_uri("urn:ietf:params:oauth:request_uri:6esc_11ACC5bwc014ltc14eY22c")
                .is_ok()
        );
        assert!(check_request_uri(&"a".repeat(2048)).is_ok());
        for bad in [
            "".to_owned(),
            "a".repeat(2049),
            "urn:x y".into(),
            "urn:x\r\nSet-Cookie: a=b".into(),
            "urn:č".into(),
        ] {
            assert!(check_request_uri(&bad).is_err(), "{bad:?}");
        }
    }
}
