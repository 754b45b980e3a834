//! Fetching the provider's keys again when a token names a `kid` they lack (a key rotation),
//! within budgets that anonymous back-channel traffic cannot take from logins
//! ([`KeyRefresh`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{discovery, Provider};

/// Who asks for the provider's keys again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Asker {
    /// An ID token the gateway itself fetched from the token endpoint over TLS.
    Login,
    /// A back-channel logout token: anyone can POST one.
    BackChannel,
}

/// A token bucket: `capacity` fetches at once, one more every `every`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    every: Duration,
    at: Instant,
}

impl Bucket {
    fn new(capacity: u32, every: Duration) -> Self {
        Self {
            tokens: f64::from(capacity),
            capacity: f64::from(capacity),
            every,
            at: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let earned = now.saturating_duration_since(self.at).as_secs_f64()
            / self.every.as_secs_f64().max(f64::MIN_POSITIVE);
        self.tokens = (self.tokens + earned).min(self.capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How often the keys are fetched again for an unknown `kid`. Logins and back-channel logout
/// tokens spend separate budgets, so a flood of forged logout tokens (anyone can send them)
/// never keeps a real key rotation from logging users in; a `kid` a back-channel token named
/// that was still unknown after a fetch is not fetched for again for
/// [`UNKNOWN_KID_FOR`]; and one fetch runs at a time (those waiting use its result).
pub(super) struct KeyRefresh {
    logins: Mutex<Bucket>,
    back_channel: Mutex<Bucket>,
    /// `kid`s still unknown after a fetch (the negative cache), consulted for back-channel
    /// tokens only: a login must never be refused because a forged token named its key first.
    unknown: moka::sync::Cache<String, ()>,
    fetching: tokio::sync::Mutex<()>,
}

/// Logins: 3 fetches at once, one more every 10 s.
const LOGIN_REFRESHES: (u32, Duration) = (3, Duration::from_secs(10));

/// Back-channel logout tokens: 2 fetches at once, one more a minute.
const BACK_CHANNEL_REFRESHES: (u32, Duration) = (2, Duration::from_secs(60));

const UNKNOWN_KID_FOR: Duration = Duration::from_secs(300);

impl KeyRefresh {
    pub(super) fn new() -> Self {
        Self {
            logins: Mutex::new(Bucket::new(LOGIN_REFRESHES.0, LOGIN_REFRESHES.1)),
            back_channel: Mutex::new(Bucket::new(
                BACK_CHANNEL_REFRESHES.0,
                BACK_CHANNEL_REFRESHES.1,
            )),
            unknown: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(UNKNOWN_KID_FOR)
                .build(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether `asker` may fetch the keys again now for `kid` (spends from its budget).
    fn allow(&self, asker: Asker, kid: &str) -> bool {
        let bucket = match asker {
            Asker::Login => &self.logins,
            Asker::BackChannel => {
                if self.unknown.contains_key(kid) {
                    return false;
                }
                &self.back_channel
            }
        };
        bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(Instant::now())
    }
}

/// The `kid` in a compact JWS's header, read without trusting anything else in it.
pub(super) fn kid_of(jws: &str) -> Option<String> {
    use base64::Engine;
    let header = jws.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let header: serde_json::Value = serde_json::from_slice(&json).ok()?;
    header.get("kid")?.as_str().map(str::to_owned)
}

impl Provider {
    /// Fetches discovery and JWKS again because a token named `kid`, which the current keys do
    /// not have, if `asker`'s budget allows. Returns whether `kid` is known afterwards.
    pub(super) async fn refresh_for(&self, asker: Asker, kid: &str) -> bool {
        let _one_at_a_time = self.key_refresh.fetching.lock().await;
        // A fetch that ran while this one waited may have brought the key.
        if self.current().jwks.find(kid).is_some() {
            return true;
        }
        if !self.key_refresh.allow(asker, kid) {
            tracing::debug!(?asker, kid, "not fetching the provider's keys again now");
            return false;
        }
        match discovery::fetch(&self.settings, &self.http).await {
            Ok(d) => {
                let known = d.jwks.find(kid).is_some();
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(d);
                if !known {
                    self.key_refresh.unknown.insert(kid.to_owned(), ());
                }
                known
            }
            Err(e) => {
                tracing::warn!(error = %e, "refreshing the provider's keys failed");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::oidc::test_provider::TestProvider;
    use crate::oidc::{ClientAuth, OidcError};

    #[test]
    fn back_channel_tokens_cannot_spend_the_logins_key_refreshes() {
        let r = KeyRefresh::new();
        // Anonymous back-channel tokens get their own small budget…
        let spent = (0..100)
            .filter(|i| r.allow(Asker::BackChannel, &format!("kid-{i}")))
            .count();
        assert_eq!(spent, BACK_CHANNEL_REFRESHES.0 as usize);
        // …and logins still have all of theirs.
        let logins = (0..100).filter(|_| r.allow(Asker::Login, "new")).count();
        assert_eq!(logins, LOGIN_REFRESHES.0 as usize);
        // A kid fetched for and still unknown is not fetched for again by back-channel
        // tokens, but a login naming it is never held back by that.
        let r = KeyRefresh::new();
        r.unknown.insert("forged".into(), ());
        assert!(!r.allow(Asker::BackChannel, "forged"));
        assert!(r.allow(Asker::Login, "forged"));
    }

    #[test]
    fn a_bucket_refills_over_time_up_to_its_capacity() {
        let mut b = Bucket::new(2, Duration::from_secs(10));
        let t = b.at;
        assert!(b.take(t) && b.take(t) && !b.take(t));
        assert!(!b.take(t + Duration::from_secs(9)));
        assert!(b.take(t + Duration::from_secs(11)));
        let later = t + Duration::from_secs(3600);
        assert!(b.take(later) && b.take(later) && !b.take(later));
    }

    #[test]
    fn the_kid_is_read_from_any_header_and_never_panics() {
        use base64::Engine;
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"kid":"k1"}"#);
        assert_eq!(kid_of(&format!("{h}.x.y")).as_deref(), Some("k1"));
        for junk in ["", ".", "žžž.a.b", "e30.e30.", "!!!"] {
            assert_eq!(kid_of(junk), None);
        }
    }

    #[tokio::test]
    async fn only_an_unknown_kid_fetches_the_keys_again() {
        let op = TestProvider::start().await;
        let provider = Provider::discover(op.settings(ClientAuth::Secret("secret".into())))
            .await
            .unwrap();
        // Discovery reads the JWKS (openidconnect's discovery reads it too): count from here.
        let at_start = op.jwks_fetches.load(Ordering::SeqCst);
        let fetches = || op.jwks_fetches.load(Ordering::SeqCst) - at_start;
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let pem = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        let forger = jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap();
        let now = crate::unix_now();
        for (kid, fetched) in [(op.kid.clone(), 0), ("rotated?".to_owned(), at_start)] {
            let (_, attempt) = provider.start(20, "https://portal.example/".into(), now);
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
            header.kid = Some(kid.clone());
            let jwt = jsonwebtoken::encode(&header, &op.claims(&attempt, now), &forger).unwrap();
            op.answer_raw(
                200,
                serde_json::json!({"access_token": "a", "token_type": "Bearer", "id_token": jwt})
                    .to_string(),
            );
            let result = provider
                .finish("code", Some(&op.issuer), &attempt, now)
                .await;
            assert!(matches!(result, Err(OidcError::InvalidToken(_))), "{kid}");
            // A known kid with a bad signature is a bad token: no fetch. An unknown one: one
            // more discovery.
            assert_eq!(fetches(), fetched, "{kid}");
        }
    }
}
