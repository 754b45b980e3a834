//! The first step of `GET /authorize`: the query checked and parsed into an [`AuthRequest`], or
//! the reason it is refused — a page when nothing may be redirected, else an error back to the
//! relying party.

use std::collections::HashMap;

use http::StatusCode;

use crate::exchange::{html, redirect, with_params, Resp};
use crate::pages::{self, Lang};
use crate::Client;

/// An authorization request that passed every check.
#[derive(Debug)]
pub(in crate::endpoints) struct AuthRequest {
    /// The client's index in the configuration.
    pub client: usize,
    /// Exactly one of the client's registered redirect URIs.
    pub redirect_uri: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The PKCE S256 challenge (43 characters).
    pub code_challenge: String,
    /// The lowest level named in `acr_values`.
    pub min_level: Option<u8>,
    pub max_age: Option<u64>,
    /// `prompt` includes `none`: answered from the single-sign-on session only.
    pub prompt_none: bool,
    /// `prompt` includes `login`: no single sign-on.
    pub prompt_login: bool,
    pub login_hint: Option<String>,
    /// The first of `ui_locales`.
    pub ui_locale: Option<String>,
}

/// Why an authorization request is refused.
#[derive(Debug, PartialEq, Eq)]
pub(in crate::endpoints) enum Refusal {
    /// No known `client_id`: nothing is redirected.
    UnknownClient,
    /// The `redirect_uri` is not one the client registered: nothing is redirected.
    UnregisteredRedirect,
    /// An error for the relying party at its (registered) redirect URI.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: &'static str,
    },
}

impl AuthRequest {
    /// Checks the query of an authorization request for `clients`: client, redirect URI,
    /// response type, scope and PKCE, in that order.
    pub fn parse(clients: &[Client], q: &HashMap<String, String>) -> Result<Self, Refusal> {
        // Without a known client and an exactly registered redirect URI, nothing is redirected.
        let client = q
            .get("client_id")
            .and_then(|id| clients.iter().position(|c| &c.client_id == id))
            .ok_or(Refusal::UnknownClient)?;
        let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
        if !clients
            .get(client)
            .is_some_and(|c| c.redirect_uris.contains(&redirect_uri))
        {
            return Err(Refusal::UnregisteredRedirect);
        }
        let state = q.get("state").cloned();
        let fail = |error, description| Refusal::Redirect {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            error,
            description,
        };
        if q.get("response_type").map(String::as_str) != Some("code") {
            return Err(fail(
                "unsupported_response_type",
                "only the code flow is supported",
            ));
        }
        if !has_word(q.get("scope"), "openid") {
            return Err(fail("invalid_scope", "scope must include openid"));
        }
        let code_challenge = q.get("code_challenge").cloned().unwrap_or_default();
        if let Some(description) = pkce_problem(q.get("code_challenge_method"), &code_challenge) {
            return Err(fail("invalid_request", description));
        }
        Ok(AuthRequest {
            client,
            state,
            nonce: q.get("nonce").cloned(),
            code_challenge,
            min_level: q
                .get("acr_values")
                .and_then(|v| v.split(' ').filter_map(|a| a.parse::<u8>().ok()).min()),
            max_age: q.get("max_age").and_then(|m| m.parse().ok()),
            prompt_none: has_word(q.get("prompt"), "none"),
            prompt_login: has_word(q.get("prompt"), "login"),
            login_hint: q.get("login_hint").cloned(),
            ui_locale: q
                .get("ui_locales")
                .and_then(|l| l.split(' ').next())
                .map(str::to_owned),
            redirect_uri,
        })
    }
}

/// Whether the space-separated list `value` has `word`.
fn has_word(value: Option<&String>, word: &str) -> bool {
    value.is_some_and(|v| v.split(' ').any(|w| w == word))
}

/// What is wrong with the PKCE parameters, if anything: S256 with a base64url SHA-256.
fn pkce_problem(method: Option<&String>, challenge: &str) -> Option<&'static str> {
    match method.map(String::as_str) {
        Some("S256") if challenge.len() == 43 => None,
        Some("S256") => Some("code_challenge must be a base64url SHA-256"),
        Some(_) => Some("only the S256 code_challenge_method is accepted"),
        None => Some("PKCE (code_challenge with S256) is required"),
    }
}

impl Refusal {
    /// The answer: a page in `l`, or the error redirect (with `state` and the issuer `iss`).
    pub fn into_response(self, l: Lang, iss: &str) -> Resp {
        let page = |message| html(StatusCode::BAD_REQUEST, pages::error(l, message));
        match self {
            Refusal::UnknownClient => page(l.t(
                "Neznan odjemalec (client_id).",
                "Unknown client (client_id).",
            )),
            Refusal::UnregisteredRedirect => page(l.t(
                "Naslov za preusmeritev (redirect_uri) ni registriran.",
                "The redirect_uri is not registered for this client.",
            )),
            Refusal::Redirect {
                redirect_uri,
                state,
                error,
                description,
            } => error_redirect(&redirect_uri, state.as_deref(), iss, error, description),
        }
    }
}

/// An authorization error at `redirect_uri` (RFC 6749 4.1.2.1, with RFC 9207's `iss`).
pub(super) fn error_redirect(
    redirect_uri: &str,
    state: Option<&str>,
    iss: &str,
    error: &str,
    description: &str,
) -> Resp {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(s) = state {
        params.push(("state", s));
    }
    params.push(("iss", iss));
    redirect(&with_params(redirect_uri, &params), &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients() -> Vec<Client> {
        vec![Client {
            client_id: "portal".to_owned(),
            name: "Portal".to_owned(),
            secret: Some("s".to_owned()),
            jwt_keys: Vec::new(),
            redirect_uris: vec!["https://portal.example/cb".to_owned()],
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            id_token_alg: jsonwebtoken::Algorithm::ES256,
        }]
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// Parameters to set (`Some`) or remove (`None`) in a valid request.
    type Changes<'a> = &'a [(&'a str, Option<&'a str>)];

    fn query(changes: Changes<'_>) -> HashMap<String, String> {
        let mut q: HashMap<String, String> = [
            ("client_id", "portal"),
            ("redirect_uri", "https://portal.example/cb"),
            ("response_type", "code"),
            ("scope", "openid email"),
            ("state", "st"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in changes {
            match v {
                Some(v) => q.insert((*k).to_owned(), (*v).to_owned()),
                None => q.remove(*k),
            };
        }
        q
    }

    fn refusal(changes: Changes<'_>) -> Refusal {
        match AuthRequest::parse(&clients(), &query(changes)) {
            Ok(a) => panic!("accepted: {a:?}"),
            Err(r) => r,
        }
    }

    fn redirected_error(changes: Changes<'_>) -> (&'static str, &'static str) {
        match refusal(changes) {
            Refusal::Redirect {
                redirect_uri,
                state,
                error,
                description,
            } => {
                assert_eq!(redirect_uri, "https://portal.example/cb");
                assert_eq!(state.as_deref(), Some("st"));
                (error, description)
            }
            other => panic!("not redirected: {other:?}"),
        }
    }

    #[test]
    fn without_a_known_client_and_registered_uri_nothing_is_redirected() {
        assert_eq!(
            refusal(&[("client_id", Some("other"))]),
            Refusal::UnknownClient
        );
        assert_eq!(refusal(&[("client_id", None)]), Refusal::UnknownClient);
        for uri in [
            Some("https://portal.example/cb/"),
            Some("https://evil/cb"),
            None,
        ] {
            assert_eq!(
                refusal(&[("redirect_uri", uri)]),
                Refusal::UnregisteredRedirect
            );
        }
    }

    #[test]
    fn the_code_flow_with_openid_and_s256_pkce_is_required() {
        let cases: [(Changes<'_>, &str, &str); 6] = [
            (
                &[("response_type", Some("token"))],
                "unsupported_response_type",
                "only the code flow is supported",
            ),
            (
                &[("scope", Some("email profile"))],
                "invalid_scope",
                "scope must include openid",
            ),
            (
                &[("scope", None)],
                "invalid_scope",
                "scope must include openid",
            ),
            (
                &[("code_challenge_method", None)],
                "invalid_request",
                "PKCE (code_challenge with S256) is required",
            ),
            (
                &[("code_challenge_method", Some("plain"))],
                "invalid_request",
                "only the S256 code_challenge_method is accepted",
            ),
            (
                &[("code_challenge", Some("short"))],
                "invalid_request",
                "code_challenge must be a base64url SHA-256",
            ),
        ];
        for (changes, error, description) in cases {
            assert_eq!(
                redirected_error(changes),
                (error, description),
                "{changes:?}"
            );
        }
    }

    #[test]
    fn a_valid_request_is_parsed() {
        let a = AuthRequest::parse(
            &clients(),
            &query(&[
                ("acr_values", Some("30 20 x")),
                ("max_age", Some("60")),
                ("prompt", Some("login consent")),
                ("ui_locales", Some("en-GB sl")),
                ("nonce", Some("n")),
                ("login_hint", Some("ana@example.si")),
            ]),
        )
        .expect("a valid request");
        assert_eq!(a.client, 0);
        assert_eq!(a.redirect_uri, "https://portal.example/cb");
        assert_eq!(a.state.as_deref(), Some("st"));
        assert_eq!(a.nonce.as_deref(), Some("n"));
        assert_eq!(a.code_challenge, CHALLENGE);
        assert_eq!(a.min_level, Some(20));
        assert_eq!(a.max_age, Some(60));
        assert!(a.prompt_login && !a.prompt_none);
        assert_eq!(a.login_hint.as_deref(), Some("ana@example.si"));
        assert_eq!(a.ui_locale.as_deref(), Some("en-GB"));
    }
}
