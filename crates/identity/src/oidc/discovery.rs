//! The provider's metadata and keys: OIDC discovery (with the fields `openidconnect`'s core
//! metadata lacks: the end-session endpoint, RFC 9207's `iss` promise), the JWKS, and the HTTP
//! client every request to the provider goes through.

use std::net::SocketAddr;

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, RedirectUrl,
};

use super::bounded::{read_body, BoundedHttp};
use super::{ClientAuth, OidcError, Profile, Settings};

pub(super) type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What discovery found: the `openidconnect` client, the endpoints and the keys.
pub(super) struct Discovered {
    pub(super) client: Client,
    pub(super) token_endpoint: String,
    pub(super) end_session: Option<String>,
    /// RFC 9207: the provider puts `iss` in every authorization response, so one without it
    /// is refused.
    pub(super) iss_in_response: bool,
    pub(super) jwks: jsonwebtoken::jwk::JwkSet,
    /// RFC 9126's `pushed_authorization_request_endpoint` (required under FAPI 2.0).
    pub(super) par_endpoint: Option<String>,
    pub(super) authorization_endpoint: String,
    pub(super) userinfo_endpoint: Option<String>,
}

/// The provider's HTTP client: timeouts, no redirects, extra trust roots, and `*.localhost`
/// resolved to loopback (RFC 6761; glibc does not).
pub fn http_client(settings: &Settings) -> Result<reqwest::Client, OidcError> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout);
    for pem in &settings.extra_roots {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| OidcError::Config(e.to_string()))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    let host = url::Url::parse(&settings.issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .ok_or_else(|| OidcError::Config(format!("issuer {} has no host", settings.issuer)))?;
    if host == "localhost" || host.ends_with(".localhost") {
        b = b.resolve(&host, SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    b.build().map_err(|e| OidcError::Config(e.to_string()))
}

/// Discovery and the JWKS, fetched now.
pub(super) async fn fetch(
    settings: &Settings,
    http: &reqwest::Client,
) -> Result<Discovered, OidcError> {
    let issuer =
        IssuerUrl::new(settings.issuer.clone()).map_err(|e| OidcError::Config(e.to_string()))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &BoundedHttp::new(http))
        .await
        .map_err(|e| match e {
            // Another issuer in the document: the provider answered, and not as configured.
            openidconnect::DiscoveryError::Validation(e) => {
                OidcError::Metadata(format!("discovery: {e}"))
            }
            e => OidcError::Unavailable(format!("discovery: {e}")),
        })?;
    // The keys `openidconnect` checks ID tokens with: the weak ones dropped.
    let strong = serde_json::to_value(metadata.jwks())
        .map(strong_keys_only)
        .and_then(serde_json::from_value)
        .map_err(|e| OidcError::Unavailable(format!("JWKS: {e}")))?;
    let metadata = metadata.set_jwks(strong);
    let jwks_uri = metadata.jwks_uri().url().clone();
    let authorization_endpoint = metadata.authorization_endpoint().url().to_string();
    let userinfo_endpoint = metadata.userinfo_endpoint().map(|u| u.url().to_string());
    let token_endpoint = metadata
        .token_endpoint()
        .map(|t| t.url().to_string())
        .ok_or_else(|| OidcError::Unavailable("discovery names no token endpoint".into()))?;
    // Fields `openidconnect`'s core metadata does not carry. Required like the rest of
    // discovery: a missed RFC 9207 flag would silently accept responses without `iss`.
    let doc = discovery_document(http, &settings.issuer).await?;
    let end_session = doc
        .get("end_session_endpoint")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    // openidconnect compares the issuer too; this says so in words, and holds for the
    // document read here, which could be another answer than the one it read.
    match doc.get("issuer").and_then(serde_json::Value::as_str) {
        Some(issuer) if issuer == settings.issuer => {}
        other => {
            return Err(OidcError::Metadata(format!(
                "discovery names the issuer {other:?}, not the configured {:?}",
                settings.issuer
            )))
        }
    }
    let par_endpoint = doc
        .get("pushed_authorization_request_endpoint")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    if settings.profile == Profile::Fapi2 && par_endpoint.is_none() {
        return Err(OidcError::Metadata(
            "profile fapi2 needs pushed authorization requests, and discovery names no \
             pushed_authorization_request_endpoint"
                .into(),
        ));
    }
    if settings.userinfo && userinfo_endpoint.is_none() {
        return Err(OidcError::Metadata(
            "oidc.userinfo is set, and discovery names no userinfo_endpoint".into(),
        ));
    }
    let endpoints = [
        Some(authorization_endpoint.as_str()),
        Some(token_endpoint.as_str()),
        Some(jwks_uri.as_str()),
        userinfo_endpoint.as_deref(),
        par_endpoint.as_deref(),
        end_session.as_deref(),
    ];
    all_https_when_the_issuer_is(&settings.issuer, endpoints.into_iter().flatten())?;
    let iss_in_response = doc
        .get("authorization_response_iss_parameter_supported")
        .and_then(serde_json::Value::as_bool)
        == Some(true);
    let jwks = http
        .get(jwks_uri)
        .send()
        .await
        .map_err(|e| OidcError::Unavailable(format!("JWKS: {e}")))?;
    // A provider's error, retried like an unreachable one.
    let jwks = read_body(jwks, "JWKS")
        .await
        .map_err(|e| OidcError::Unavailable(e.to_string()))?;
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&jwks)
        .map(strong_keys_only)
        .and_then(serde_json::from_value)
        .map_err(|e| OidcError::Unavailable(format!("JWKS: {e}")))?;
    let redirect = RedirectUrl::new(settings.redirect_uri.clone())
        .map_err(|e| OidcError::Config(e.to_string()))?;
    let secret = match &settings.client_auth {
        ClientAuth::Secret(s) => Some(ClientSecret::new(s.clone())),
        ClientAuth::PrivateKeyJwt { .. } => None,
    };
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(settings.client_id.clone()),
        secret,
    )
    .set_redirect_uri(redirect);
    Ok(Discovered {
        client,
        token_endpoint,
        end_session,
        iss_in_response,
        jwks,
        par_endpoint,
        authorization_endpoint,
        userinfo_endpoint,
    })
}

/// Every endpoint discovery names is `https://` when the issuer is (the config allows no
/// other issuer; only this crate's own tests run one on plain HTTP): a token, a client
/// assertion or the user's claims never go over plain HTTP because the document said so.
fn all_https_when_the_issuer_is<'a>(
    issuer: &str,
    endpoints: impl Iterator<Item = &'a str>,
) -> Result<(), OidcError> {
    if !issuer.starts_with("https://") {
        return Ok(());
    }
    for endpoint in endpoints {
        if url::Url::parse(endpoint)
            .map(|u| u.scheme() != "https")
            .unwrap_or(true)
        {
            return Err(OidcError::Metadata(format!(
                "discovery names the endpoint {endpoint:?}, not https://"
            )));
        }
    }
    Ok(())
}

/// A JWKS (as JSON) without its RSA keys of fewer than [`prehod_config::MIN_RSA_BITS`] bits
/// (FAPI 2.0 5.4.1), under every profile: a token signed by a key short enough to factor
/// proves nothing, whichever profile the client follows. A dropped key is logged by `kid`; a
/// token it signed then names an unknown key and is refused.
fn strong_keys_only(mut jwks: serde_json::Value) -> serde_json::Value {
    if let Some(keys) = jwks
        .get_mut("keys")
        .and_then(serde_json::Value::as_array_mut)
    {
        keys.retain(|key| {
            let bits = rsa_bits(key);
            let weak = bits.is_some_and(|b| b < prehod_config::MIN_RSA_BITS);
            if weak {
                tracing::warn!(
                    kid = key
                        .get("kid")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or(""),
                    bits,
                    "the provider's JWKS has a weak RSA key, not used"
                );
            }
            !weak
        });
    }
    jwks
}

/// The modulus size of an RSA JWK; `Some(0)` for one whose `n` is not base64url; `None` for
/// another key type.
fn rsa_bits(key: &serde_json::Value) -> Option<u32> {
    if key.get("kty").and_then(serde_json::Value::as_str) != Some("RSA") {
        return None;
    }
    let n = key
        .get("n")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, n)
        .unwrap_or_default();
    Some(
        openssl::bn::BigNum::from_slice(&bytes)
            .map(|n| n.num_bits().max(0).unsigned_abs())
            .unwrap_or(0),
    )
}

/// The discovery document as JSON, for the fields `openidconnect`'s core metadata lacks.
async fn discovery_document(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<serde_json::Value, OidcError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let unavailable = |e: reqwest::Error| OidcError::Unavailable(format!("discovery: {e}"));
    let resp = http
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unavailable)?;
    let body = read_body(resp, "discovery")
        .await
        .map_err(|e| OidcError::Unavailable(e.to_string()))?;
    serde_json::from_slice(&body).map_err(|e| OidcError::Unavailable(format!("discovery: {e}")))
}

#[cfg(test)]
mod tests {
    use super::strong_keys_only;

    fn rsa_jwk(kid: &str, bits: u32) -> serde_json::Value {
        let rsa = openssl::rsa::Rsa::generate(bits).unwrap();
        let b64 = |v: Vec<u8>| {
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v)
        };
        serde_json::json!({"kty": "RSA", "kid": kid, "n": b64(rsa.n().to_vec()), "e": b64(rsa.e().to_vec())})
    }

    #[test]
    fn an_https_issuer_s_endpoints_are_all_https() {
        use super::all_https_when_the_issuer_is as check;
        let https = ["https://op.example/token", "https://op.example/jwks"];
        assert!(check("https://op.example", https.into_iter()).is_ok());
        for bad in [
            "http://op.example/par",
            "HTTP://op.example/x",
            "ftp://op.example/",
            "not a url",
        ] {
            let endpoints = https.into_iter().chain([bad]);
            assert!(check("https://op.example", endpoints).is_err(), "{bad}");
        }
        // This crate's own test provider runs on plain HTTP, never configurable.
        assert!(check(
            "http://127.0.0.1:1",
            ["http://127.0.0.1:1/token"].into_iter()
        )
        .is_ok());
    }

    #[test]
    fn rsa_keys_under_2048_bits_are_dropped_from_the_jwks() {
        let jwks = serde_json::json!({"keys": [
            rsa_jwk("rs-512", 512),
            rsa_jwk("rs-1024", 1024),
            rsa_jwk("rs-2047", 2047),
            rsa_jwk("rs-2048", 2048),
            {"kty": "RSA", "kid": "rs-bad-n", "n": "!!", "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "x", "y": "y"},
        ]});
        let kept: Vec<String> = strong_keys_only(jwks)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(kept, ["rs-2048", "ec"]);
    }
}
