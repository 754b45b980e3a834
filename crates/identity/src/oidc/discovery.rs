//! The provider's metadata and keys: OIDC discovery (with the fields `openidconnect`'s core
//! metadata lacks: the end-session endpoint, RFC 9207's `iss` promise), the JWKS, and the HTTP
//! client every request to the provider goes through.

use std::net::SocketAddr;

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, RedirectUrl,
};

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
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| match e {
            // Another issuer in the document: the provider answered, and not as configured.
            openidconnect::DiscoveryError::Validation(e) => {
                OidcError::Metadata(format!("discovery: {e}"))
            }
            e => OidcError::Unavailable(format!("discovery: {e}")),
        })?;
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
    let iss_in_response = doc
        .get("authorization_response_iss_parameter_supported")
        .and_then(serde_json::Value::as_bool)
        == Some(true);
    let jwks: jsonwebtoken::jwk::JwkSet = http
        .get(jwks_uri)
        .send()
        .await
        .map_err(|e| OidcError::Unavailable(format!("JWKS: {e}")))?
        .json()
        .await
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
    http.get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(unavailable)?
        .json()
        .await
        .map_err(unavailable)
}
