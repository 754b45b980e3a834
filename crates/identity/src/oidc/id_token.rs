//! The ID token of a token response, checked completely (OIDC Core 3.1.3.7) into the
//! [`Identity`] a login proves.

use openidconnect::core::{CoreJwsSigningAlgorithm, CoreTokenResponse};
use openidconnect::{Nonce, TokenResponse};

use super::discovery::Discovered;
use super::key_refresh::{kid_of, Asker};
use super::{Attempt, OidcError, Profile, Provider};

/// What a successful login proves.
#[derive(Clone, Debug)]
pub struct Identity {
    pub sub: String,
    pub name: String,
    pub email: String,
    pub amr: Vec<String>,
    pub level: u8,
    /// The `auth_time` claim (by the provider's clock), when the token has one.
    pub auth_time: Option<u64>,
    pub op_sid: Option<String>,
    pub id_token: String,
}

impl Provider {
    /// What the ID token in `token` proves, checked completely for `attempt`: signed by the
    /// provider's keys (`current`, or keys fetched again for an unknown `kid`), nonce,
    /// audience and `azp`, `iat`, the level, a fresh authentication when one was asked for.
    pub(super) async fn identity(
        &self,
        current: &Discovered,
        token: &CoreTokenResponse,
        attempt: &Attempt,
        now: u64,
    ) -> Result<Identity, OidcError> {
        let id_token = token
            .id_token()
            .ok_or_else(|| OidcError::InvalidToken("no id_token".into()))?;
        let nonce = Nonce::new(attempt.nonce.clone());
        let allowed = allowed_algs(self.settings.profile);
        let verify = |d: &Discovered| {
            let verifier = d
                .client
                .id_token_verifier()
                .set_allowed_algs(allowed.iter().cloned());
            id_token.claims(&verifier, &nonce).cloned()
        };
        // An unknown `kid`: the provider may have rotated. Fetch its keys again, once — and
        // only then: a bad signature by a known key is a bad token, not a reason to fetch.
        let unknown_kid =
            kid_of(&id_token.to_string()).filter(|kid| current.jwks.find(kid).is_none());
        let claims = match verify(current) {
            Ok(c) => c,
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(e)) => {
                match unknown_kid {
                    Some(kid) if self.refresh_for(Asker::Login, &kid).await => {
                        verify(&self.current())
                            .map_err(|e| OidcError::InvalidToken(e.to_string()))?
                    }
                    _ => return Err(OidcError::InvalidToken(e.to_string())),
                }
            }
            Err(e) => return Err(OidcError::InvalidToken(e.to_string())),
        };
        // OIDC Core 3.1.3.7 steps 4 and 5, which openidconnect leaves to its users: a token
        // for several audiences names the one it was issued to, and that must be us.
        match claims.authorized_party() {
            Some(azp) if azp.as_str() != self.settings.client_id => {
                return Err(OidcError::InvalidToken(format!(
                    "azp {:?} is another client",
                    azp.as_str()
                )));
            }
            None if claims.audiences().len() > 1 => {
                return Err(OidcError::InvalidToken(
                    "several audiences and no azp".into(),
                ));
            }
            _ => {}
        }
        let iat = claims.issue_time().timestamp();
        let skew = self.settings.max_skew.as_secs() as i64;
        if iat > now as i64 + skew {
            return Err(OidcError::InvalidToken(format!(
                "issued in the future (iat {iat})"
            )));
        }
        if iat < now as i64 - 600 - skew {
            return Err(OidcError::InvalidToken(format!(
                "issued too long ago (iat {iat})"
            )));
        }
        let acr = claims
            .auth_context_ref()
            .map(|a| a.to_string())
            .ok_or_else(|| OidcError::InvalidToken("no acr".into()))?;
        let level = self
            .level_of(&acr)
            .ok_or_else(|| OidcError::InvalidToken(format!("unknown acr {acr:?}")))?;
        if level < attempt.level {
            return Err(OidcError::LevelTooLow {
                got: level,
                wanted: attempt.level,
            });
        }
        let auth_time = claims.auth_time().map(|t| t.timestamp().max(0) as u64);
        if attempt.fresh {
            fresh_enough(auth_time, attempt.created, self.settings.max_skew.as_secs())?;
        }
        // `sid` is not among openidconnect's standard claims: read it from the verified token.
        let raw = id_token.to_string();
        let payload: serde_json::Value = raw
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p).ok()
            })
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string())
            .unwrap_or_default();
        let sub = claims.subject().to_string();
        // Certificate user ids are `PREFIX:VALUE`; a Rekono `sub` may never look like one.
        if sub.contains(':') {
            return Err(OidcError::InvalidToken(format!(
                "sub {sub:?} contains ':', which only certificate user ids may"
            )));
        }
        Ok(Identity {
            sub,
            name,
            email: claims.email().map(|e| e.to_string()).unwrap_or_default(),
            amr: claims
                .auth_method_refs()
                .map(|v| v.iter().map(|a| a.to_string()).collect())
                .unwrap_or_default(),
            level,
            auth_time,
            op_sid: payload
                .get("sid")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            id_token: raw,
        })
    }
}

/// The algorithms an ID token may be signed with: asymmetric ones only (never `none`, never
/// HS* keyed by a public key); under FAPI 2.0 (5.4.1) only PS256, ES256 and EdDSA.
fn allowed_algs(profile: Profile) -> &'static [CoreJwsSigningAlgorithm] {
    match profile {
        Profile::Default => &[
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EcdsaP384Sha384,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        ],
        Profile::Fapi2 => &[
            CoreJwsSigningAlgorithm::RsaSsaPssSha256,
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::EdDsa,
        ],
    }
}

/// OIDC Core 3.1.2.1: an ID token answering `max_age=0` must carry `auth_time`, and that must
/// be no earlier than the request (`asked`, by our clock; the provider's may differ by
/// `skew`).
fn fresh_enough(auth_time: Option<u64>, asked: u64, skew: u64) -> Result<(), OidcError> {
    match auth_time {
        Some(t) if t.saturating_add(skew) >= asked => Ok(()),
        _ => Err(OidcError::NotFresh { auth_time, asked }),
    }
}

#[cfg(test)]
mod tests {
    use crate::oidc::test_provider::{client_auths, login, TestProvider, CLIENT};
    use crate::oidc::{ClientAuth, Hints, OidcError, Provider};

    #[tokio::test]
    async fn a_good_id_token_logs_in() {
        let op = TestProvider::start().await;
        for auth in client_auths() {
            let id = login(&op, auth.clone(), Some(serde_json::json!({})))
                .await
                .unwrap();
            assert_eq!((id.sub.as_str(), id.level), ("user-1", 20));
            let with_azp = serde_json::json!({"azp": CLIENT});
            assert!(login(&op, auth, Some(with_azp)).await.is_ok());
        }
    }

    #[tokio::test]
    async fn an_id_token_for_another_authorized_party_is_refused() {
        let op = TestProvider::start().await;
        for auth in client_auths() {
            for edit in [
                // azp names another client.
                serde_json::json!({"azp": "another-client"}),
                // Several audiences and no azp.
                serde_json::json!({"aud": [CLIENT, "another-client"]}),
                // Several audiences, azp another one of them.
                serde_json::json!({"aud": [CLIENT, "another-client"], "azp": "another-client"}),
            ] {
                match login(&op, auth.clone(), Some(edit.clone())).await {
                    Err(OidcError::InvalidToken(m)) => {
                        assert!(m.contains("azp") || m.contains("aud"), "{edit}: {m}")
                    }
                    other => panic!("{edit} must be refused as an invalid token, got {other:?}"),
                }
            }
        }
    }

    /// Issue 17, item 8: after "end all sessions" the gateway asks for a fresh
    /// authentication; the answer must show one (OIDC Core 3.1.2.1), not the single sign-on
    /// session's old login time.
    #[tokio::test]
    async fn a_fresh_attempt_asks_for_it_and_accepts_only_an_authentication_after_it() {
        let op = TestProvider::start().await;
        let provider = Provider::discover(op.settings(ClientAuth::Secret("s".into())))
            .await
            .unwrap();
        let now = crate::unix_now();
        let hints = Hints {
            fresh: true,
            ..Hints::default()
        };
        let (url, attempt) = provider.start_with(20, "https://portal.example/".into(), now, &hints);
        let query: Vec<(String, String)> = url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert!(query.contains(&("prompt".into(), "login".into())), "{url}");
        assert!(query.contains(&("max_age".into(), "0".into())), "{url}");
        assert!(attempt.fresh);
        let (plain, ordinary) = provider.start(20, "https://portal.example/".into(), now);
        assert!(
            !plain.contains("prompt=") && !plain.contains("max_age="),
            "{plain}"
        );
        // The skew allowed for `iat` (60 s) holds for `auth_time` too.
        for (auth_time, fresh_ok) in [
            (None, false),
            (Some(now - 3600), false),
            (Some(now - 61), false),
            (Some(now - 60), true),
            (Some(now + 5), true),
        ] {
            let mut claims = op.claims(&attempt, now);
            if let Some(t) = auth_time {
                claims["auth_time"] = t.into();
            }
            op.answer_with_id_token(&claims);
            let result = provider
                .finish("code", Some(&op.issuer), &attempt, now)
                .await;
            match (result, fresh_ok) {
                (Ok(id), true) => assert_eq!(id.auth_time, auth_time),
                (
                    Err(OidcError::NotFresh {
                        auth_time: t,
                        asked,
                    }),
                    false,
                ) => {
                    assert_eq!((t, asked), (auth_time, now));
                }
                (other, _) => panic!("auth_time {auth_time:?}: {other:?}"),
            }
            // An ordinary attempt takes any login time, and says which it was.
            let mut claims = op.claims(&ordinary, now);
            if let Some(t) = auth_time {
                claims["auth_time"] = t.into();
            }
            op.answer_with_id_token(&claims);
            let id = provider
                .finish("code", Some(&op.issuer), &ordinary, now)
                .await
                .unwrap();
            assert_eq!(id.auth_time, auth_time);
        }
    }
}
