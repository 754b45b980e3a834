//! The signed identity assertion: a short-lived ES256 JWT the gateway adds to each request it
//! forwards, so a portal can verify who the user is with the gateway's JWKS instead of
//! trusting plain headers alone.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::HeaderValue;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::EcKey;
use openssl::pkey::PKey;
use serde::Serialize;

use crate::digest::KeyedDigest;
use crate::session::Session;

#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("the assertion key is not an EC P-256 private key in PEM: {0}")]
    Key(String),
    #[error("signing: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("the signed assertion is no header value")]
    NotAHeaderValue,
}

pub struct Signer {
    /// This signer's number in the process: a reload makes another signer (perhaps with
    /// another key, issuer or lifetime) while the cached sessions stay, so what a session keeps
    /// is kept by signer ([`crate::session::Prepared`]). Never a pointer, which a later signer
    /// could reuse.
    id: u64,
    kid: String,
    key: EncodingKey,
    jwks: serde_json::Value,
    issuer: String,
    lifetime: u64,
    /// [`Signer::key`] (session and audience) → an assertion still valid for at least half
    /// its lifetime, as a header value (the gateway sends it as it is). Signing costs far more
    /// than a request should; a session's assertion is reused. Looked up when the session
    /// object has not kept one yet: its first request, and a new object of the same session (a
    /// rolled cookie, a session evicted from the session cache and opened again, a
    /// certificate-only portal's session, made per request), and a session whose kept values
    /// the set of sessions in use gave up. As many as that set holds
    /// ([`crate::session::HOT_SESSIONS`]): ~900 bytes each with moka's entry, so that with many
    /// sessions cached they do not add to each one's memory (issue 20; 100 000 added ~94 bytes
    /// to each of 1 M cached sessions).
    recent: moka::sync::Cache<u128, (u64, HeaderValue)>,
    /// The key of [`Signer::key`]'s digest, drawn at start.
    digest: KeyedDigest,
}

/// Tells the signers of the process apart ([`Signer::id`]).
static SIGNERS: AtomicU64 = AtomicU64::new(0);

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    sid: &'a str,
    email: &'a str,
    name: &'a str,
    method: &'a str,
    level: u8,
    amr: &'a [String],
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_fingerprint: Option<&'a str>,
}

impl Signer {
    /// `pem`: an EC P-256 private key (PKCS#8 or SEC1). `issuer`: the login host's URL.
    pub fn new(pem: &[u8], issuer: String, lifetime: u64) -> Result<Self, AssertionError> {
        let bad = |e: &dyn std::fmt::Display| AssertionError::Key(e.to_string());
        let pkey = PKey::private_key_from_pem(pem).map_err(|e| bad(&e))?;
        let ec: EcKey<_> = pkey.ec_key().map_err(|e| bad(&e))?;
        if ec.group().curve_name() != Some(openssl::nid::Nid::X9_62_PRIME256V1) {
            return Err(AssertionError::Key("the curve is not P-256".into()));
        }
        let mut ctx = BigNumContext::new().map_err(|e| bad(&e))?;
        let (mut x, mut y) = (
            BigNum::new().map_err(|e| bad(&e))?,
            BigNum::new().map_err(|e| bad(&e))?,
        );
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
            .map_err(|e| bad(&e))?;
        let x = URL_SAFE_NO_PAD.encode(x.to_vec_padded(32).map_err(|e| bad(&e))?);
        let y = URL_SAFE_NO_PAD.encode(y.to_vec_padded(32).map_err(|e| bad(&e))?);
        // The kid is derived from the public key, so every replica with the key agrees.
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(format!("{x}.{y}")).into();
        let kid = hex::encode(&digest[..8]);
        let pkcs8 = pkey.private_key_to_pem_pkcs8().map_err(|e| bad(&e))?;
        Ok(Self {
            id: SIGNERS.fetch_add(1, Ordering::Relaxed),
            key: EncodingKey::from_ec_pem(&pkcs8)?,
            jwks: serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid, "x": x, "y": y}]}),
            kid,
            issuer,
            lifetime,
            recent: moka::sync::Cache::builder()
                .max_capacity(crate::session::HOT_SESSIONS as u64)
                .time_to_live(std::time::Duration::from_secs((lifetime / 2).max(1)))
                .build(),
            digest: KeyedDigest::random(),
        })
    }

    /// Like [`Signer::sign`], as a header value, but reuses an assertion issued for the same
    /// session and audience less than half a lifetime ago: the one `session` keeps for this
    /// signer and audience (a lock and a comparison, no allocation: the request path), else
    /// the one in this signer's cache (then kept by `session` too).
    pub fn sign_cached(
        &self,
        session: &Session,
        audience: &str,
        now: u64,
    ) -> Result<HeaderValue, AssertionError> {
        let fresh = |issued: u64| now.saturating_sub(issued) < self.lifetime / 2;
        let kept = &session.prepared;
        if let Some(value) = kept.assertion(self.id, audience, fresh) {
            return Ok(value);
        }
        let key = self.key(session, audience);
        if let Some((issued, value)) = self.recent.get(&key) {
            if fresh(issued) {
                kept.keep_assertion(self.id, audience, issued, value.clone(), fresh);
                return Ok(value);
            }
        }
        let value = HeaderValue::try_from(self.sign(session, audience, now)?)
            .map_err(|_| AssertionError::NotAHeaderValue)?;
        self.recent.insert(key, (now, value.clone()));
        kept.keep_assertion(self.id, audience, now, value.clone(), fresh);
        Ok(value)
    }

    /// The key of an assertion of `session` for `audience` in this signer's cache: a keyed
    /// 128-bit digest (as the session cache's key, [`KeyedDigest`]) of the audience and of
    /// every claim but the times — not of the session id alone, so that a session of another
    /// identity or level never takes one, however it came to that id (a certificate-only
    /// portal's session is named after the certificate, its level is the configuration's).
    /// `auth_time` is left out as it was with the id as the key: a certificate-only session's is
    /// the time of its request, and one assertion serves its requests for half a lifetime. No
    /// allocation, where the key was two new strings per look-up.
    fn key(&self, session: &Session, audience: &str) -> u128 {
        let fingerprint = session.cert_fingerprint.as_deref();
        let (level, has_fingerprint) = ([session.level], [u8::from(fingerprint.is_some())]);
        let amr = (session.amr.len() as u64).to_le_bytes();
        let text = [
            audience,
            &session.sid,
            &session.sub,
            &session.email,
            &session.name,
            session.method_label(),
            fingerprint.unwrap_or_default(),
        ];
        let parts = (text.into_iter().map(str::as_bytes))
            .chain([&level[..], &has_fingerprint[..], &amr[..]])
            .chain(session.amr.iter().map(String::as_bytes));
        self.digest.of_parts(parts)
    }

    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// An assertion about `session` for the portal at `audience`, valid from `now`.
    pub fn sign(
        &self,
        session: &Session,
        audience: &str,
        now: u64,
    ) -> Result<String, AssertionError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        let claims = Claims {
            iss: &self.issuer,
            aud: audience,
            sub: &session.sub,
            iat: now,
            nbf: now,
            exp: now + self.lifetime,
            sid: &session.sid,
            email: &session.email,
            name: &session.name,
            method: session.method_label(),
            level: session.level,
            amr: &session.amr,
            auth_time: session.auth_time,
            cert_fingerprint: session.cert_fingerprint.as_deref(),
        };
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a test's own fixture; a panic is the failure report
mod tests {
    use super::*;
    use crate::session::{Method, Session};

    fn signer() -> Signer {
        signer_of("https://login.example")
    }

    /// A signer with a key of its own.
    fn signer_of(issuer: &str) -> Signer {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        Signer::new(&key.private_key_to_pem_pkcs8().unwrap(), issuer.into(), 60).unwrap()
    }

    /// The claims of `token`, which must verify with `signer`'s published key for `audience`
    /// (as a portal verifies it; its times are the tests' own clock, not checked here).
    fn verified(signer: &Signer, token: &HeaderValue, audience: &str) -> serde_json::Value {
        let jwks: jsonwebtoken::jwk::JwkSet =
            serde_json::from_value(signer.jwks().clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
        v.set_issuer(&[signer.issuer()]);
        v.set_audience(&[audience]);
        v.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(token.to_str().unwrap(), &key, &v)
            .unwrap_or_else(|e| panic!("{audience}: {e}"))
            .claims
    }

    /// A change to a session, by what it changes.
    type Change = (&'static str, fn(&mut Session));

    fn session(sid: &str) -> Session {
        Session {
            sid: sid.into(),
            name: "n".into(),
            email: "e".into(),
            expires_at: u64::MAX,
            idle_until: u64::MAX,
            ..Session::new(Method::Rekono, "s", 20)
        }
    }

    #[test]
    fn assertions_are_reused_for_half_their_lifetime_per_session_and_audience() {
        let s = signer();
        let a = s.sign_cached(&session("1"), "https://acq", 1000).unwrap();
        assert_eq!(
            s.sign_cached(&session("1"), "https://acq", 1029).unwrap(),
            a
        );
        assert_ne!(
            s.sign_cached(&session("1"), "https://b2b", 1001).unwrap(),
            a,
            "per audience"
        );
        assert_ne!(
            s.sign_cached(&session("2"), "https://acq", 1001).unwrap(),
            a,
            "per session"
        );
        assert_ne!(
            s.sign_cached(&session("1"), "https://acq", 1030).unwrap(),
            a,
            "renewed at half its lifetime"
        );
        // Every reused assertion still has at least half its lifetime left.
        let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(a.as_bytes())
            .unwrap()
            .claims;
        assert_eq!(claims["exp"].as_u64().unwrap() - 1029, 31);
    }

    #[test]
    fn a_session_keeps_an_assertion_per_audience_and_never_sends_one_for_another() {
        // The attack: the client picks the portal (the host, so the audience) of each request;
        // it alternates between portals, some of whose audiences look alike, to get from what
        // its session keeps an assertion that one portal signs for another.
        let s = signer();
        let session = session("1");
        let audiences = [
            "https://acq",
            "https://acq/",
            "https://acq.evil",
            "https://ACQ",
            "https://acq:8443",
            "https://b2b",
        ];
        let first: Vec<HeaderValue> = audiences
            .iter()
            .map(|a| s.sign_cached(&session, a, 1000).unwrap())
            .collect();
        for (i, (a, token)) in audiences.iter().zip(&first).enumerate() {
            assert_eq!(verified(&s, token, a)["aud"], *a);
            assert!(first.iter().skip(i + 1).all(|other| other != token));
        }
        for now in [1001, 1015, 1029] {
            for (a, token) in audiences.iter().zip(&first).rev() {
                assert_eq!(s.sign_cached(&session, a, now).unwrap(), *token, "{a}");
            }
        }
        // They come from the session object, not from the signer's cache: without the cache,
        // the session still has them; another object of the session (its rolled cookie's)
        // has them from the cache only.
        s.recent.invalidate_all();
        assert_eq!(
            s.sign_cached(&session, audiences[0], 1029).unwrap(),
            first[0]
        );
        let rolled = s.sign_cached(&session.clone(), audiences[0], 1029).unwrap();
        assert_ne!(rolled, first[0]);
        assert_eq!(
            s.sign_cached(&session, audiences[5], 1029).unwrap(),
            first[5]
        );
        // At half its lifetime the session's own is given up, for the one the signer's cache
        // has from less than half a lifetime ago (the rolled object's)…
        assert_eq!(s.sign_cached(&session, audiences[0], 1030).unwrap(), rolled);
        // …and half a lifetime after that, for a new one, which is kept.
        let renewed = s.sign_cached(&session, audiences[0], 1059).unwrap();
        assert_ne!(renewed, rolled);
        assert_eq!(verified(&s, &renewed, audiences[0])["iat"], 1059);
        assert_eq!(
            s.sign_cached(&session, audiences[0], 1088).unwrap(),
            renewed
        );
    }

    #[test]
    fn a_reloaded_signer_never_sends_an_assertion_the_one_before_kept() {
        // The attack: the assertion key leaked and a reload replaced it; the sessions cached
        // before the reload (the session cache outlives it) must not go on sending assertions
        // signed with the old key, under the old issuer.
        let (old, new) = (signer(), signer_of("https://login.new"));
        let session = session("1");
        let before = old.sign_cached(&session, "https://acq", 1000).unwrap();
        let after = new.sign_cached(&session, "https://acq", 1001).unwrap();
        assert_ne!(after, before);
        assert_eq!(
            verified(&new, &after, "https://acq")["iss"],
            "https://login.new"
        );
        // Requests in flight across the reload: each signer sends its own, and the session
        // keeps only the newest signer's.
        assert_eq!(
            old.sign_cached(&session, "https://acq", 1002).unwrap(),
            before
        );
        assert_eq!(
            new.sign_cached(&session, "https://acq", 1003).unwrap(),
            after
        );
        assert_eq!(session.prepared.kept_assertions(), 1);
        verified(&old, &before, "https://acq");
    }

    #[test]
    fn a_session_on_more_portals_than_it_keeps_still_gets_each_its_own() {
        // A parent-domain session reaches every portal; what it keeps is bounded, and a portal
        // whose assertion it gave up gets its own again (from the signer's cache).
        let s = signer();
        let session = session("1");
        let audiences: Vec<String> = (0..40).map(|i| format!("https://p{i}")).collect();
        let first: Vec<HeaderValue> = audiences
            .iter()
            .map(|a| s.sign_cached(&session, a, 1000).unwrap())
            .collect();
        assert!(session.prepared.kept_assertions() <= 16);
        for (a, token) in audiences.iter().zip(&first).rev() {
            let again = s.sign_cached(&session, a, 1010).unwrap();
            assert_eq!(again, *token);
            assert_eq!(verified(&s, &again, a)["aud"], a.as_str());
        }
        assert!(session.prepared.kept_assertions() <= 16);
    }

    #[test]
    fn a_session_of_the_same_id_but_another_identity_never_takes_the_cached_assertion() {
        // The attack: the signer's cache was keyed by the session id alone. A session that
        // comes to another's id with another identity or level (a certificate-only session is
        // named after its certificate and takes its level from the configuration) must get an
        // assertion of its own claims, not the one cached for that id.
        let s = signer();
        let first = s.sign_cached(&session("1"), "https://acq", 1000).unwrap();
        let changes: [Change; 9] = [
            ("sub", |x| x.sub.push('x')),
            ("email", |x| x.email.push('x')),
            ("name", |x| x.name.push('x')),
            ("method", |x| x.method = Method::Certificate),
            ("provider", |x| x.provider = Some("bankart-staff".into())),
            ("level", |x| x.level = 30),
            ("amr", |x| x.amr.push("otp".into())),
            ("cert_fingerprint", |x| {
                x.cert_fingerprint = Some("ab".into())
            }),
            ("cert_fingerprint empty", |x| {
                x.cert_fingerprint = Some("".into())
            }),
        ];
        for (field, change) in changes {
            let mut other = session("1");
            change(&mut other);
            let token = s.sign_cached(&other, "https://acq", 1001).unwrap();
            assert_ne!(token, first, "{field}");
            let claims = verified(&s, &token, "https://acq");
            assert_eq!(claims["level"], other.level, "{field}");
            assert_eq!(claims["sub"], other.sub.as_str(), "{field}");
            assert_eq!(claims["email"], other.email.as_str(), "{field}");
            assert_eq!(claims["method"], other.method_label(), "{field}");
            assert_eq!(claims["amr"], serde_json::json!(other.amr), "{field}");
        }
        // Its times are not its identity: the same session made again later (a
        // certificate-only portal's, per request) reuses it, as with the id as the key.
        let mut later = session("1");
        later.auth_time = 999;
        later.expires_at = 5000;
        assert_eq!(s.sign_cached(&later, "https://acq", 1002).unwrap(), first);
    }
}
