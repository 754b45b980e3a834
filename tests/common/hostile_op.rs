//! A hostile OpenID Provider, for tests only: real HTTPS on loopback with the test PKI's server
//! certificate, serving discovery, JWKS, an authorization endpoint that sends the browser
//! straight back to the gateway's callback with a code, and a token endpoint whose ID token
//! carries the one defect the test asked for. It lives under `tests/`, so no build of the
//! gateway contains it; the real gateway binary is pointed at it by its config alone.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_openssl::SslStream;

use super::login::{unescape, Browser, Page, CLIENT_ID, CLIENT_SECRET};
use super::{free_port, host, Gateway, Pki, Setup};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The `sub` of every ID token the provider issues (unless a test removes it).
pub const SUB: &str = "hostile-user-1";

/// How the ID token (or logout token) is signed, and what its header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// ES256 with the published EC key `es-1`: a good signature.
    Es256,
    /// RS256 with the published RSA key `rs-1`: a good signature.
    Rs256,
    /// `alg: none`, an empty signature, `kid` es-1.
    None,
    /// HS256 keyed with the PEM of the published RSA public key (algorithm confusion), `kid`
    /// rs-1.
    Hs256WithPublicKey,
    /// RS256 with `rs-1`, one bit of the signature flipped.
    BadSigRs256,
    /// ES256 with `es-1`, one bit of the signature flipped.
    BadSigEs256,
    /// ES256 with `es-1` and no `kid`, while the JWKS publishes two EC P-256 keys.
    NoKid,
    /// ES256 with a key the JWKS does not have, under a `kid` it does not name.
    UnknownKid,
    /// ES256 with the rotated key `es-2`, which the JWKS publishes only after `rotate()`.
    Rotated,
    /// ES256 with the attacker's key, which the header carries as `jwk` (and names by `kid`).
    EmbeddedJwk,
    /// ES256 with the attacker's key, which the header's `jku` points at (served, should the
    /// relying party ever ask, at `/attacker/jwks.json`).
    Jku,
}

/// What the authorization response carries for `state` or `iss`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    Right,
    Wrong,
    Missing,
}

/// What the provider does, set at start and changeable by the test.
#[derive(Clone, Debug)]
pub struct Behaviour {
    pub signing: Signing,
    /// Claims of the ID token to change: `Some(value)` sets, `None` removes.
    pub claims: Vec<(&'static str, Option<Value>)>,
    /// `iss` in the authorization response (RFC 9207).
    pub response_iss: Param,
    pub response_state: Param,
    /// Discovery says `authorization_response_iss_parameter_supported: true`.
    pub advertise_iss: bool,
    /// The token endpoint answers every request with this status and an HTML error page (an
    /// outage), instead of tokens.
    pub token_status: Option<u16>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            signing: Signing::Es256,
            claims: Vec::new(),
            response_iss: Param::Right,
            response_state: Param::Right,
            advertise_iss: true,
            token_status: None,
        }
    }
}

impl Behaviour {
    pub fn signing(signing: Signing) -> Self {
        Self {
            signing,
            ..Self::default()
        }
    }

    /// A good ES256 ID token with these claims changed (`None`: removed).
    pub fn claims(claims: Vec<(&'static str, Option<Value>)>) -> Self {
        Self {
            claims,
            ..Self::default()
        }
    }
}

/// One key pair of the provider (or of the attacker).
struct Key {
    kid: String,
    alg: jsonwebtoken::Algorithm,
    encoding: jsonwebtoken::EncodingKey,
    /// The public key as a JWK.
    jwk: Value,
}

impl Key {
    fn ec(kid: &str) -> Self {
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
            .expect("P-256");
        let ec = openssl::ec::EcKey::generate(&group).expect("EC key");
        let (mut x, mut y) = (
            openssl::bn::BigNum::new().expect("bn"),
            openssl::bn::BigNum::new().expect("bn"),
        );
        let mut ctx = openssl::bn::BigNumContext::new().expect("bn ctx");
        ec.public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .expect("coordinates");
        let pem = openssl::pkey::PKey::from_ec_key(ec)
            .expect("pkey")
            .private_key_to_pem_pkcs8()
            .expect("pem");
        Self {
            kid: kid.to_owned(),
            alg: jsonwebtoken::Algorithm::ES256,
            encoding: jsonwebtoken::EncodingKey::from_ec_pem(&pem).expect("EC key"),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": B64.encode(x.to_vec_padded(32).expect("x")),
                "y": B64.encode(y.to_vec_padded(32).expect("y")),
            }),
        }
    }

    /// An RSA key, and the PEM of its public key. The test provider's throwaway key may sign
    /// with the `rsa` crate (clippy.toml: RUSTSEC-2023-0071).
    #[allow(clippy::disallowed_methods)]
    fn rsa(kid: &str) -> (Self, Vec<u8>) {
        let rsa = openssl::rsa::Rsa::generate(2048).expect("RSA key");
        let public = rsa.public_key_to_pem().expect("public pem");
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": B64.encode(rsa.n().to_vec()),
            "e": B64.encode(rsa.e().to_vec()),
        });
        let pem = rsa.private_key_to_pem().expect("pem");
        let key = Self {
            kid: kid.to_owned(),
            alg: jsonwebtoken::Algorithm::RS256,
            encoding: jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("RSA key"),
            jwk,
        };
        (key, public)
    }

    fn sign(&self, header: jsonwebtoken::Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }

    fn header(&self) -> jsonwebtoken::Header {
        let mut h = jsonwebtoken::Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        h
    }
}

struct Keys {
    es1: Key,
    /// An older EC key still published: with it, a token without `kid` is ambiguous.
    es_old: Key,
    /// Published after `rotate()`.
    es2: Key,
    rs1: Key,
    rs1_public_pem: Vec<u8>,
    /// Not published by the provider.
    unknown: Key,
    attacker: Key,
}

/// One code the authorization endpoint handed out.
struct Grant {
    nonce: Option<String>,
    challenge: String,
    redirect_uri: String,
    acr: Option<String>,
    used: bool,
}

struct State {
    behaviour: Behaviour,
    rotated: bool,
    grants: HashMap<String, Grant>,
    /// `METHOD /path` of every request, in order.
    requests: Vec<String>,
    /// The `sid` of the last ID token issued.
    last_sid: Option<String>,
}

struct Inner {
    issuer: String,
    keys: Keys,
    state: Mutex<State>,
}

/// The running provider; stops when dropped.
pub struct HostileOp {
    inner: Arc<Inner>,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HostileOp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HostileOp {
    /// Starts the provider at `https://rekono.localhost:PORT` (a name on the test PKI's server
    /// certificate; `*.localhost` is loopback) on a port the kernel picks.
    pub async fn start(pki: &Pki, behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let issuer = format!("https://rekono.localhost:{}", addr.port());
        let (rs1, rs1_public_pem) = Key::rsa("rs-1");
        let keys = Keys {
            es1: Key::ec("es-1"),
            es_old: Key::ec("es-old"),
            es2: Key::ec("es-2"),
            rs1,
            rs1_public_pem,
            unknown: Key::ec("es-unknown"),
            attacker: Key::ec("attacker"),
        };
        let inner = Arc::new(Inner {
            issuer,
            keys,
            state: Mutex::new(State {
                behaviour,
                rotated: false,
                grants: HashMap::new(),
                requests: Vec::new(),
                last_sid: None,
            }),
        });
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
        b.set_certificate_chain_file(pki.path("server.crt"))
            .expect("server certificate");
        b.set_private_key_file(pki.path("server.key"), SslFiletype::PEM)
            .expect("server key");
        let acceptor = Arc::new(b.build());
        let served = inner.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, inner) = (acceptor.clone(), served.clone());
                tokio::spawn(async move {
                    let Ok(ssl) = Ssl::new(acceptor.context()) else {
                        return;
                    };
                    let Ok(mut stream) = SslStream::new(ssl, tcp) else {
                        return;
                    };
                    if Pin::new(&mut stream).accept().await.is_err() {
                        return;
                    }
                    let Some(request) = read_request(&mut stream).await else {
                        return;
                    };
                    let response = inner.handle(&request);
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { inner, addr, task }
    }

    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes what the provider does from now on.
    pub fn set(&self, behaviour: Behaviour) {
        self.state().behaviour = behaviour;
    }

    /// Publishes the rotated key `es-2` in the JWKS (and signs with it if the behaviour says
    /// `Signing::Rotated`).
    pub fn rotate(&self) {
        self.state().rotated = true;
    }

    /// Every request so far, as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    /// How many requests asked for a path starting with `prefix`.
    pub fn requested(&self, prefix: &str) -> usize {
        self.state()
            .requests
            .iter()
            .filter(|r| r.split(' ').nth(1).is_some_and(|p| p.starts_with(prefix)))
            .count()
    }

    /// The `sid` of the last ID token issued.
    pub fn last_sid(&self) -> Option<String> {
        self.state().last_sid.clone()
    }

    /// A back-channel logout token: good claims for the gateway's client, changed by `edits`
    /// (`None`: removed), signed as `signing` says.
    pub fn logout_token(
        &self,
        signing: Signing,
        sid: Option<&str>,
        edits: &[(&'static str, Option<Value>)],
    ) -> String {
        let now = unix_now();
        let mut claims = json!({
            "iss": self.inner.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 120,
            "jti": random_hex(16),
            "sub": SUB,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        });
        if let Some(sid) = sid {
            claims["sid"] = json!(sid);
        }
        edit(&mut claims, edits);
        let rotated = self.state().rotated;
        self.inner
            .keys
            .sign(signing, &claims, &self.inner.issuer, rotated)
    }
}

fn edit(claims: &mut Value, edits: &[(&'static str, Option<Value>)]) {
    let Some(map) = claims.as_object_mut() else {
        return;
    };
    for (name, value) in edits {
        match value {
            Some(v) => {
                map.insert((*name).to_owned(), v.clone());
            }
            None => {
                map.remove(*name);
            }
        }
    }
}

impl Keys {
    fn jwks(&self, rotated: bool) -> Value {
        let mut keys = vec![
            self.es1.jwk.clone(),
            self.es_old.jwk.clone(),
            self.rs1.jwk.clone(),
        ];
        if rotated {
            keys.push(self.es2.jwk.clone());
        }
        json!({ "keys": keys })
    }

    fn sign(&self, signing: Signing, claims: &Value, issuer: &str, rotated: bool) -> String {
        let flip = |jwt: String| {
            let (signed, sig) = jwt.rsplit_once('.').expect("three parts");
            let mut sig = B64.decode(sig).expect("signature");
            sig[0] ^= 0x01;
            format!("{signed}.{}", B64.encode(sig))
        };
        match signing {
            Signing::Es256 => self.es1.sign(self.es1.header(), claims),
            Signing::Rs256 => self.rs1.sign(self.rs1.header(), claims),
            Signing::None => {
                let header = json!({"alg": "none", "typ": "JWT", "kid": self.es1.kid});
                format!(
                    "{}.{}.",
                    B64.encode(header.to_string()),
                    B64.encode(claims.to_string())
                )
            }
            Signing::Hs256WithPublicKey => {
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
                h.kid = Some(self.rs1.kid.clone());
                let key = jsonwebtoken::EncodingKey::from_secret(&self.rs1_public_pem);
                jsonwebtoken::encode(&h, claims, &key).expect("sign")
            }
            Signing::BadSigRs256 => flip(self.rs1.sign(self.rs1.header(), claims)),
            Signing::BadSigEs256 => flip(self.es1.sign(self.es1.header(), claims)),
            Signing::NoKid => self
                .es1
                .sign(jsonwebtoken::Header::new(self.es1.alg), claims),
            Signing::UnknownKid => self.unknown.sign(self.unknown.header(), claims),
            Signing::Rotated => {
                assert!(rotated, "sign with es-2 only once it is published");
                self.es2.sign(self.es2.header(), claims)
            }
            Signing::EmbeddedJwk => {
                let mut h = self.attacker.header();
                h.jwk = Some(
                    serde_json::from_value(self.attacker.jwk.clone()).expect("the attacker's JWK"),
                );
                self.attacker.sign(h, claims)
            }
            Signing::Jku => {
                let mut h = self.attacker.header();
                h.jku = Some(format!("{issuer}/attacker/jwks.json"));
                self.attacker.sign(h, claims)
            }
        }
    }
}

/// One HTTP/1.1 request, read whole (headers and a `Content-Length` body).
struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

async fn read_request<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 1 << 20 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf.get(head_end + 4..).unwrap_or_default().to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_owned(),
        query: url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
        headers,
        body,
    })
}

fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\ncache-control: no-store\r\n\r\n{body}",
        body.len()
    ));
    out.into_bytes()
}

fn json_response(status: u16, body: &Value) -> Vec<u8> {
    response(
        status,
        &[("content-type", "application/json")],
        &body.to_string(),
    )
}

fn oauth_error(status: u16, error: &str) -> Vec<u8> {
    json_response(status, &json!({ "error": error }))
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn handle(&self, req: &Request) -> Vec<u8> {
        self.state()
            .requests
            .push(format!("{} {}", req.method, req.path));
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/.well-known/openid-configuration") => json_response(200, &self.discovery()),
            ("GET", "/jwks.json") => {
                let rotated = self.state().rotated;
                json_response(200, &self.keys.jwks(rotated))
            }
            // Where the `jku` header points: a relying party that fetched it would find the
            // attacker's key here. The tests assert nobody ever asks.
            ("GET", "/attacker/jwks.json") => {
                json_response(200, &json!({"keys": [self.keys.attacker.jwk]}))
            }
            ("GET", "/authorize") => self.authorize(req),
            ("POST", "/token") => self.token(req),
            _ => oauth_error(404, "not_found"),
        }
    }

    fn discovery(&self) -> Value {
        let i = &self.issuer;
        json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "jwks_uri": format!("{i}/jwks.json"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "acr_values_supported": ["10", "20", "30"],
            "authorization_response_iss_parameter_supported": self.state().behaviour.advertise_iss,
        })
    }

    /// Sends the browser straight back with a code (no login screens: the person is always
    /// "logged in"), with `state` and `iss` as the behaviour says.
    fn authorize(&self, req: &Request) -> Vec<u8> {
        let q = &req.query;
        let get = |k: &str| q.get(k).map(String::as_str);
        if get("client_id") != Some(CLIENT_ID)
            || get("response_type") != Some("code")
            || get("code_challenge_method") != Some("S256")
        {
            return response(400, &[], "bad authorization request");
        }
        let (Some(redirect_uri), Some(challenge)) = (get("redirect_uri"), get("code_challenge"))
        else {
            return response(400, &[], "bad authorization request");
        };
        let code = random_hex(16);
        let mut state = self.state();
        let behaviour = state.behaviour.clone();
        state.grants.insert(
            code.clone(),
            Grant {
                nonce: get("nonce").map(str::to_owned),
                challenge: challenge.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                acr: get("acr_values")
                    .and_then(|a| a.split(' ').next())
                    .map(str::to_owned),
                used: false,
            },
        );
        drop(state);
        let Ok(mut location) = url::Url::parse(redirect_uri) else {
            return response(400, &[], "bad redirect_uri");
        };
        {
            let mut pairs = location.query_pairs_mut();
            pairs.append_pair("code", &code);
            match (behaviour.response_state, get("state")) {
                (Param::Right, Some(s)) => {
                    pairs.append_pair("state", s);
                }
                (Param::Wrong, _) => {
                    pairs.append_pair("state", &format!("forged-state-{}", random_hex(16)));
                }
                _ => {}
            }
            match behaviour.response_iss {
                Param::Right => {
                    pairs.append_pair("iss", &self.issuer);
                }
                Param::Wrong => {
                    pairs.append_pair("iss", "https://evil.example");
                }
                Param::Missing => {}
            }
        }
        response(302, &[("location", location.as_str())], "")
    }

    /// The token endpoint: client_secret_basic, single-use codes bound to their redirect URI
    /// and PKCE challenge, as an honest provider checks them; then an ID token with the
    /// behaviour's defect.
    fn token(&self, req: &Request) -> Vec<u8> {
        if let Some(status) = self.state().behaviour.token_status {
            return response(
                status,
                &[("content-type", "text/html")],
                "<html>down for maintenance</html>",
            );
        }
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
        );
        if req.header("authorization") != Some(expected.as_str()) {
            return oauth_error(401, "invalid_client");
        }
        let form = req.form();
        let get = |k: &str| form.get(k).map(String::as_str);
        if get("grant_type") != Some("authorization_code") {
            return oauth_error(400, "unsupported_grant_type");
        }
        let mut state = self.state();
        let rotated = state.rotated;
        let behaviour = state.behaviour.clone();
        let Some(grant) = get("code").and_then(|c| state.grants.get_mut(c)) else {
            return oauth_error(400, "invalid_grant");
        };
        // A code is good once; a second use (replay) is refused.
        if grant.used {
            return oauth_error(400, "invalid_grant");
        }
        grant.used = true;
        let verifier = get("code_verifier").unwrap_or_default();
        let challenge = {
            use sha2::Digest;
            B64.encode(sha2::Sha256::digest(verifier.as_bytes()))
        };
        if challenge != grant.challenge || get("redirect_uri") != Some(grant.redirect_uri.as_str())
        {
            return oauth_error(400, "invalid_grant");
        }
        let now = unix_now();
        let sid = format!("sid-{}", random_hex(8));
        let mut claims = json!({
            "iss": self.issuer,
            "sub": SUB,
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "auth_time": now,
            "acr": grant.acr.clone().unwrap_or_else(|| "20".into()),
            "amr": ["pwd"],
            "sid": sid,
            "name": "Hostile Tester",
            "email": "hostile@rekono.localhost",
        });
        if let Some(nonce) = &grant.nonce {
            claims["nonce"] = json!(nonce);
        }
        state.last_sid = Some(sid);
        drop(state);
        edit(&mut claims, &behaviour.claims);
        let id_token = self
            .keys
            .sign(behaviour.signing, &claims, &self.issuer, rotated);
        json_response(
            200,
            &json!({
                "access_token": random_hex(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            }),
        )
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut b).expect("randomness");
    hex::encode(b)
}

/// The real gateway binary whose `oidc.issuer` is the hostile provider (config only), with
/// the `acq` (level 10) and `bips` (level 20) demo portals behind it.
pub struct HostileWorld {
    pub op: HostileOp,
    pub gw: Gateway,
    pub pki: Pki,
    _portals: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the provider with `behaviour` and a gateway pointed at it.
pub async fn hostile_world(behaviour: Behaviour) -> HostileWorld {
    // The HTTPS port is in the redirect URI, so it is chosen first; if another process takes
    // it before the gateway binds it, everything starts again.
    for _ in 0..5 {
        if let Some(world) = try_hostile_world(behaviour.clone()).await {
            return world;
        }
    }
    panic!("five attempts to start the gateway lost its port to another process");
}

async fn try_hostile_world(behaviour: Behaviour) -> Option<HostileWorld> {
    let pki = Pki::new();
    let op = HostileOp::start(&pki, behaviour).await;
    let mut setup = Setup::new();
    let mut portals = Vec::new();
    for name in ["acq", "bips"] {
        let (addr, task) = prehod_demo_portal::spawn(
            "127.0.0.1:0".parse().expect("literal address"),
            prehod_demo_portal::PortalInfo {
                name: name.to_owned(),
                title: format!("{name} portal"),
                own_login: false,
            },
        )
        .await
        .expect("demo portal binds");
        setup = setup.upstream(name, &[format!("http://{addr}")]);
        portals.push(task);
    }
    setup = setup.portal_yaml("bips", "min_level: 20");
    let port = free_port();
    setup.https_port = Some(port);
    let key = std::fs::read_to_string(pki.path("session.key")).expect("session key");
    setup.auth = Some(format!(
        "login:\n  host: login.bankart.localhost\n  url: https://login.bankart.localhost:{port}\n\
session:\n  keys: [\"{key}\"]\n\
oidc:\n  issuer: {issuer}\n  client_id: {CLIENT_ID}\n  client_secret: {CLIENT_SECRET}\n  ca: {ca}\n  timeout: 5s\n\
assertion:\n  key: {assertion}\n",
        key = key.trim(),
        issuer = op.issuer(),
        ca = pki.path("ca.crt").display(),
        assertion = pki.path("assertion.key").display(),
    ));
    let gw = Gateway::try_start(&pki, &setup)?;
    gw.wait_ready();
    Some(HostileWorld {
        op,
        gw,
        pki,
        _portals: portals,
    })
}

/// What a refused login must look like to the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// "Prijava ni uspela" (400).
    LoginFailed,
    /// "Stopnja zaupanja je prenizka" (403).
    LevelTooLow,
}

impl HostileWorld {
    pub fn portal_url(&self, portal: &str, path: &str) -> String {
        format!("https://{}:{}{path}", host(portal), self.gw.https.port())
    }

    pub fn login_url(&self, path: &str) -> String {
        format!(
            "https://login.bankart.localhost:{}{path}",
            self.gw.https.port()
        )
    }

    pub fn browser(&self) -> Browser {
        Browser::on(&self.gw, &self.pki, None)
    }

    /// From `bips` through the Bankart login page and the provider's authorization endpoint
    /// to the gateway callback URL the provider sends the browser to (not followed).
    pub async fn to_callback(&self, browser: &mut Browser) -> String {
        let login_page = browser.follow(&self.portal_url("bips", "/")).await;
        let marker = "id=\"login-rekono\" href=\"";
        let start = login_page
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no Rekono button: {}", login_page.body))
            + marker.len();
        let href = login_page.body[start..]
            .split('"')
            .next()
            .unwrap_or_default();
        let to_op = browser.navigate(&self.login_url(&unescape(href))).await;
        let authorize = to_op
            .location
            .expect("the gateway sends the browser to the provider");
        assert!(authorize.starts_with(self.op.issuer()), "{authorize}");
        let back = browser.navigate(&authorize).await;
        assert_eq!(back.status, 302, "{}", back.body);
        back.location.expect("the provider sends the browser back")
    }

    /// A whole login at `bips`: the gateway callback's answer.
    pub async fn login(&self, browser: &mut Browser) -> Page {
        let callback = self.to_callback(browser).await;
        browser.navigate(&callback).await
    }

    /// The value of a `prehod_denials_total` series, 0 when absent.
    pub fn denials(&self, reason: &str) -> f64 {
        metric(
            &self.gw.metrics(),
            &format!("prehod_denials_total{{reason=\"{reason}\"}}"),
        )
    }

    /// Polls the metrics until the `reason` series is at least 1.
    pub async fn expect_denial(&self, reason: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.denials(reason) < 1.0 {
            assert!(
                Instant::now() < deadline,
                "no denial {reason:?} in:\n{}",
                self.gw
                    .metrics()
                    .lines()
                    .filter(|l| l.starts_with("prehod_denials_total"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A login that must be refused: the page says `shown` (never "Rekono is not available"),
    /// no session cookie was set, the portal still asks for a login, and the refusal is
    /// counted under `reason`.
    pub async fn assert_refused(
        &self,
        browser: &mut Browser,
        page: &Page,
        shown: Shown,
        reason: &str,
    ) {
        assert!(
            !page.body.contains("Rekono trenutno ni dosegljiv"),
            "a refusal reported as an outage: {}",
            page.body
        );
        let (status, title) = match shown {
            Shown::LoginFailed => (400, "Prijava ni uspela"),
            Shown::LevelTooLow => (403, "Stopnja zaupanja je prenizka"),
        };
        assert_eq!(page.status, status, "{}", page.body);
        assert!(page.body.contains(title), "{}", page.body);
        let planted: Vec<&String> = browser
            .set_cookies
            .iter()
            .filter(|c| {
                c.strip_prefix("__Host-prehod_session=")
                    .is_some_and(|rest| !rest.starts_with(';') && !rest.is_empty())
            })
            .collect();
        assert!(planted.is_empty(), "a session cookie was set: {planted:?}");
        assert!(browser.cookie(super::login::SESSION).is_none());
        assert_eq!(
            browser.api(&self.portal_url("bips", "/")).await.status,
            401,
            "no session at the portal"
        );
        self.expect_denial(reason).await;
        assert_eq!(self.denials("rekono_unavailable"), 0.0);
        // Why, in the gateway's words (shown with `--nocapture`).
        for line in self.gw.log_lines() {
            if line.contains("Rekono login failed") {
                println!("{reason}: {line}");
            }
        }
    }

    /// A login that must succeed: redirected to the portal with a session cookie, and the
    /// portal receives the provider's `sub`.
    pub async fn assert_logged_in(&self, browser: &mut Browser, page: &Page) {
        assert_eq!(page.status, 302, "{}", page.body);
        // Host-only cookies: the portal takes its session with a single-use code.
        let sso = page.location.clone().unwrap_or_default();
        assert!(
            sso.starts_with(&self.portal_url("bips", "/.prehod/sso?code=")),
            "{sso}"
        );
        let back = browser.navigate(&sso).await;
        assert_eq!(
            back.location.as_deref(),
            Some(self.portal_url("bips", "/").as_str())
        );
        assert!(browser.cookie(super::login::SESSION).is_some(), "a session");
        let portal = browser.api(&self.portal_url("bips", "/")).await;
        assert_eq!(portal.status, 200, "{}", portal.body);
        assert_eq!(
            super::received_header(&portal.json(), "x-auth-user"),
            vec![SUB]
        );
    }

    /// Posts a logout token to the gateway's back-channel logout endpoint; the status.
    pub async fn backchannel_logout(&self, token: &str) -> u16 {
        self.browser()
            .http
            .post(self.login_url("/oidc/backchannel-logout"))
            .form(&[("logout_token", token)])
            .send()
            .await
            .expect("back-channel logout answers")
            .status()
            .as_u16()
    }
}

/// The value of the metric line that starts with `series` (exactly), 0 when absent.
pub fn metric(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}
