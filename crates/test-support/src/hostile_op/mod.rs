//! A hostile OpenID Provider, for tests only: real HTTPS on loopback with the test PKI's server
//! certificate, serving discovery, JWKS, an authorization endpoint that sends the browser
//! straight back to the gateway's callback with a code, and a token endpoint whose ID token
//! carries the one defect the test asked for. It lives in the test-support crate, which no build of
//! the gateway contains; the real gateway binary is pointed at it by its config alone.

mod endpoints;
mod http;
mod keys;
mod world;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use openssl::ssl::{Ssl, SslAcceptor, SslFiletype, SslMethod};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio_openssl::SslStream;

use self::http::read_request;
use self::keys::{Key, Keys};
use crate::login::CLIENT_ID;
use crate::Pki;

pub use world::{hostile_world, HostileWorld, Shown};

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
    /// PS256 (a FAPI 2.0 algorithm) with the published 1024-bit RSA key `rs-weak`.
    Ps256Weak,
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
    /// FAPI 2.0: discovery names a pushed authorization request endpoint (`/par`) and
    /// userinfo; the gateway is configured with `profile: fapi2` (review-fapi).
    pub fapi2: bool,
    /// The PAR endpoint answers 201 with a well-formed JSON body of about this many bytes
    /// (a `request_uri` that long), written as fast as the relying party reads it.
    pub par_body: Option<usize>,
    /// The gateway is configured with `oidc.userinfo: true`.
    pub userinfo_call: bool,
    /// The userinfo endpoint's claims (`sub` the ID token's unless set here).
    pub userinfo: Value,
    /// Userinfo answers 200 with a well-formed JSON body of about this many bytes (a `name`
    /// that long), written as fast as the relying party reads it.
    pub userinfo_body: Option<usize>,
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
            fapi2: false,
            par_body: None,
            userinfo_call: false,
            userinfo: json!({}),
            userinfo_body: None,
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

/// One code the authorization endpoint handed out.
pub(crate) struct Grant {
    nonce: Option<String>,
    challenge: String,
    redirect_uri: String,
    acr: Option<String>,
    used: bool,
}

pub(crate) struct State {
    behaviour: Behaviour,
    rotated: bool,
    grants: HashMap<String, Grant>,
    /// `METHOD /path` of every request, in order.
    requests: Vec<String>,
    /// The `sid` of the last ID token issued.
    last_sid: Option<String>,
    /// Pushed authorization requests by `request_uri` (FAPI 2.0).
    pushed: HashMap<String, HashMap<String, String>>,
    /// Headers of every token and userinfo request (FAPI 2.0: the DPoP proofs).
    pub(crate) seen_headers: Vec<(String, Vec<(String, String)>)>,
}

pub(crate) struct Inner {
    issuer: String,
    keys: Keys,
    state: Mutex<State>,
    /// Bytes of the PAR answer written so far (`Behaviour::par_body`).
    par_written: std::sync::atomic::AtomicU64,
    /// Whether a whole `par_body` answer was written (the relying party read it all).
    par_complete: std::sync::atomic::AtomicBool,
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
            weak: openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(1024).expect("rsa"))
                .expect("pkey"),
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
                pushed: HashMap::new(),
                seen_headers: Vec::new(),
            }),
            par_written: std::sync::atomic::AtomicU64::new(0),
            par_complete: std::sync::atomic::AtomicBool::new(false),
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
                    let (huge_par, huge_userinfo) = {
                        let b = &inner
                            .state
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .behaviour;
                        (b.par_body, b.userinfo_body)
                    };
                    match (request.path.as_str(), huge_par, huge_userinfo) {
                        ("/par", Some(size), _) => {
                            let open = b"{\"request_uri\":\"urn:ietf:params:oauth:request_uri:";
                            let close = b"\",\"expires_in\":60}";
                            inner
                                .huge_answer(&mut stream, "201 Created", "/par", open, close, size)
                                .await;
                            return;
                        }
                        ("/userinfo", _, Some(size)) => {
                            let open = format!("{{\"sub\":\"{SUB}\",\"name\":\"");
                            inner
                                .huge_answer(
                                    &mut stream,
                                    "200 OK",
                                    "/userinfo",
                                    open.as_bytes(),
                                    b"\"}",
                                    size,
                                )
                                .await;
                            return;
                        }
                        _ => {}
                    }
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

    /// The headers of every token and userinfo request, by path.
    pub fn seen_headers(&self) -> Vec<(String, Vec<(String, String)>)> {
        self.state().seen_headers.clone()
    }

    /// Bytes of the huge PAR or userinfo answer written so far, and whether one was written whole.
    pub fn par_written(&self) -> (u64, bool) {
        use std::sync::atomic::Ordering;
        (
            self.inner.par_written.load(Ordering::SeqCst),
            self.inner.par_complete.load(Ordering::SeqCst),
        )
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

impl Inner {
    /// An answer whose JSON body is `size` bytes long (`open`, filler, `close`), written in
    /// 64 KiB pieces for as long as the relying party reads them.
    async fn huge_answer<S: tokio::io::AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        status: &str,
        path: &str,
        open: &[u8],
        close: &[u8],
        size: usize,
    ) {
        use std::sync::atomic::Ordering;
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .requests
            .push(format!("HUGE {path}"));
        let filler = size.saturating_sub(open.len() + close.len());
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            open.len() + filler + close.len()
        );
        if stream.write_all(head.as_bytes()).await.is_err() || stream.write_all(open).await.is_err()
        {
            return;
        }
        let piece = vec![b'A'; 64 * 1024];
        let mut left = filler;
        while left > 0 {
            let n = left.min(piece.len());
            if stream.write_all(&piece[..n]).await.is_err() {
                return;
            }
            left -= n;
            self.par_written.fetch_add(n as u64, Ordering::SeqCst);
        }
        if stream.write_all(close).await.is_ok() && stream.flush().await.is_ok() {
            self.par_complete.store(true, Ordering::SeqCst);
        }
        let _ = stream.shutdown().await;
    }
}

pub(crate) fn edit(claims: &mut Value, edits: &[(&'static str, Option<Value>)]) {
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

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    openssl::rand::rand_bytes(&mut b).expect("randomness");
    hex::encode(b)
}
