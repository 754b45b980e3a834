//! The adversary on the revocation path: an HTTP server on loopback that serves whatever the
//! test says at each path (CRLs by GET) and answers OCSP requests (POST) as the test says —
//! genuine answers made on the spot, answers captured earlier and replayed, stale ones — and
//! the CA side that makes them: CRLs, OCSP answers and client certificates written field by
//! field (`der.rs`) and signed with the test PKI's real keys by OpenSSL, so that a test can
//! produce exactly the validly signed but superseded, foreign or out-of-scope data an attacker
//! on that path could replay or substitute.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::der;
use crate::Pki;

mod scene;
pub use scene::{revoked_page, two_crls, until, CrlPath, Scene, SceneOptions, A, B};

pub const OID_CRL_NUMBER: &str = "2.5.29.20";
pub const OID_DELTA_CRL_INDICATOR: &str = "2.5.29.27";
pub const OID_ISSUING_DISTRIBUTION_POINT: &str = "2.5.29.28";
pub const OID_OCSP_NONCE: &str = "1.3.6.1.5.5.7.48.1.2";

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A CA of the test PKI with its private key: it signs CRLs, OCSP answers and certificates.
pub struct TestCa {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl TestCa {
    /// `name` is `ca` (the dev root) or `intermediate` (the dev CA's intermediate).
    pub fn load(pki: &Pki, name: &str) -> Self {
        Self {
            cert: X509::from_pem(&std::fs::read(pki.path(&format!("{name}.crt"))).expect("cert"))
                .expect("pem"),
            key: PKey::private_key_from_pem(
                &std::fs::read(pki.path(&format!("{name}.key"))).expect("key"),
            )
            .expect("key pem"),
        }
    }

    /// From a certificate and key file pair of a PKI (e.g. `clients/valid`).
    pub fn from_files(pki: &Pki, stem: &str) -> Self {
        let pem = std::fs::read(pki.path(&format!("{stem}.crt"))).expect("cert");
        Self {
            cert: X509::from_pem(&pem).expect("pem"),
            key: PKey::private_key_from_pem(
                &std::fs::read(pki.path(&format!("{stem}.key"))).expect("key"),
            )
            .expect("key pem"),
        }
    }

    pub fn subject_der(&self) -> Vec<u8> {
        self.cert.subject_name().to_der().expect("name")
    }

    /// The signature algorithm of this key (ECDSA or RSA, with SHA-256).
    fn algorithm(&self) -> Vec<u8> {
        if self.key.ec_key().is_ok() {
            der::seq(&[der::oid("1.2.840.10045.4.3.2")])
        } else {
            der::seq(&[der::oid("1.2.840.113549.1.1.11"), der::null()])
        }
    }

    fn sign(&self, tbs: &[u8]) -> Vec<u8> {
        let mut signer =
            openssl::sign::Signer::new(MessageDigest::sha256(), &self.key).expect("signer");
        signer.update(tbs).expect("sign");
        signer.sign_to_vec().expect("sign")
    }

    /// `tbs`, signed: a CRL or a certificate.
    fn signed(&self, tbs: Vec<u8>) -> Vec<u8> {
        let signature = self.sign(&tbs);
        der::seq(&[tbs, self.algorithm(), der::bits(&signature)])
    }

    /// A CRL of this CA as `spec` says (DER).
    pub fn crl(&self, spec: &CrlSpec) -> Vec<u8> {
        let mut tbs = vec![der::integer(1), self.algorithm(), self.subject_der()];
        tbs.push(der::time(spec.this_update));
        if let Some(next) = spec.next_update {
            tbs.push(der::time(next));
        }
        if !spec.revoked.is_empty() {
            let entries: Vec<Vec<u8>> = spec
                .revoked
                .iter()
                .map(|serial| {
                    der::seq(&[der::integer_raw(serial), der::time(spec.this_update - 60)])
                })
                .collect();
            tbs.push(der::seq(&entries));
        }
        let mut extensions = Vec::new();
        if let Some(n) = spec.number {
            extensions.push(der::extension(OID_CRL_NUMBER, false, &der::integer(n)));
        }
        if let Some(base) = spec.delta_of {
            extensions.push(der::extension(
                OID_DELTA_CRL_INDICATOR,
                true,
                &der::integer(base),
            ));
        }
        if let Some(idp) = &spec.issuing_distribution_point {
            extensions.push(der::extension(OID_ISSUING_DISTRIBUTION_POINT, true, idp));
        }
        if spec.unknown_critical_extension {
            extensions.push(der::extension("1.3.6.1.4.1.55555.7", true, &der::null()));
        }
        if !extensions.is_empty() {
            tbs.push(der::explicit(0, &der::seq(&extensions)));
        }
        self.signed(der::seq(&tbs))
    }

    /// An OCSP response (DER) signed with this key, about the certificate `ask` asked for.
    pub fn ocsp_answer(&self, ask: &OcspAsk, spec: &OcspSpec) -> Vec<u8> {
        let status = match spec.status {
            CertStatus::Good => vec![0x80, 0x00],
            CertStatus::Revoked => der::tlv(0xa1, &der::generalized_time(spec.this_update - 60)),
            CertStatus::Unknown => vec![0x82, 0x00],
        };
        let mut single = vec![ask.cert_id.clone(), status];
        single.push(der::generalized_time(spec.this_update));
        if let Some(next) = spec.next_update {
            single.push(der::explicit(0, &der::generalized_time(next)));
        }
        let mut data = vec![
            // responderID byName
            der::explicit(1, &self.subject_der()),
            der::generalized_time(spec.this_update.max(spec.produced_at.unwrap_or(0))),
            der::seq(&[der::seq(&single)]),
        ];
        let nonce = match &spec.nonce {
            NonceReply::Echo => ask.nonce.clone(),
            NonceReply::Fixed(n) => Some(n.clone()),
            NonceReply::Omit => None,
        };
        if let Some(n) = nonce {
            data.push(der::explicit(
                1,
                &der::seq(&[der::extension(OID_OCSP_NONCE, false, &n)]),
            ));
        }
        let tbs = der::seq(&data);
        let signature = self.sign(&tbs);
        let mut basic = vec![tbs, self.algorithm(), der::bits(&signature)];
        if !spec.certificates.is_empty() {
            let certs: Vec<Vec<u8>> = spec
                .certificates
                .iter()
                .map(|c| c.to_der().expect("der"))
                .collect();
            basic.push(der::explicit(0, &der::seq(&certs)));
        }
        let basic = der::seq(&basic);
        der::seq(&[
            der::tlv(0x0a, &[0]),
            der::explicit(
                0,
                &der::seq(&[der::oid("1.3.6.1.5.5.7.48.1.1"), der::octets(&basic)]),
            ),
        ])
    }

    /// Issues a client certificate `clients/NAME.crt` (with this CA's certificate after it when
    /// `send_chain`) and `.key` into `pki`: serial `serial` exactly as given (two's complement
    /// DER content, so a negative one too), CRL distribution point `crl_url` if any, and the
    /// OCSP-signing extended key usage instead of client authentication when `ocsp_signer`.
    pub fn issue(&self, pki: &Pki, name: &str, issue: &Issue<'_>) {
        let key = PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .expect("curve"),
            )
            .expect("key"),
        )
        .expect("pkey");
        let mut subject = vec![
            der::set(&[der::seq(&[
                der::oid("2.5.4.3"),
                der::tlv(0x0c, format!("Testni Uporabnik ({name})").as_bytes()),
            ])]),
            der::set(&[der::seq(&[
                der::oid("2.5.4.10"),
                der::tlv(0x0c, b"prehod development"),
            ])]),
        ];
        subject.push(der::set(&[der::seq(&[
            der::oid("2.5.4.5"),
            der::tlv(0x13, issue.user.as_bytes()),
        ])]));
        let now = now();
        let eku = if issue.ocsp_signer {
            "1.3.6.1.5.5.7.3.9"
        } else {
            "1.3.6.1.5.5.7.3.2"
        };
        let mut extensions = vec![
            der::extension("2.5.29.19", true, &der::seq(&[])),
            // keyUsage digitalSignature
            der::extension("2.5.29.15", true, &der::tlv(0x03, &[0x07, 0x80])),
            der::extension("2.5.29.37", false, &der::seq(&[der::oid(eku)])),
        ];
        if let Some(url) = issue.crl_url {
            // CRLDistributionPoints: one point, fullName [0] { uniformResourceIdentifier [6] }
            let uri = der::tlv(0x86, url.as_bytes());
            let point = der::seq(&[der::explicit(0, &der::tlv(0xa0, &uri))]);
            extensions.push(der::extension("2.5.29.31", false, &der::seq(&[point])));
        }
        let tbs = der::seq(&[
            der::explicit(0, &der::integer(2)),
            der::integer_raw(issue.serial),
            self.algorithm(),
            self.subject_der(),
            der::seq(&[der::time(now - 86_400), der::time(now + 86_400 * 365)]),
            der::seq(&subject),
            key.public_key_to_der().expect("spki"),
            der::explicit(3, &der::seq(&extensions)),
        ]);
        let cert = X509::from_der(&self.signed(tbs)).expect("the certificate parses");
        let mut pem = cert.to_pem().expect("pem");
        if issue.send_chain {
            pem.extend(self.cert.to_pem().expect("pem"));
        }
        std::fs::write(pki.path(&format!("clients/{name}.crt")), pem).expect("write");
        std::fs::write(
            pki.path(&format!("clients/{name}.key")),
            key.private_key_to_pem_pkcs8().expect("pem"),
        )
        .expect("write");
    }
}

/// What [`TestCa::issue`] makes.
pub struct Issue<'a> {
    /// The subject's serialNumber attribute (the user id).
    pub user: &'a str,
    /// The certificate's serial, two's complement as DER carries it.
    pub serial: &'a [u8],
    pub crl_url: Option<&'a str>,
    pub send_chain: bool,
    pub ocsp_signer: bool,
}

/// A CRL, as its CA would write it (or an attacker would want it).
#[derive(Clone)]
pub struct CrlSpec {
    pub number: Option<u64>,
    pub this_update: i64,
    pub next_update: Option<i64>,
    /// Serials (two's complement DER content) it lists.
    pub revoked: Vec<Vec<u8>>,
    /// A delta CRL on the base CRL of this number (critical deltaCRLIndicator).
    pub delta_of: Option<u64>,
    /// The issuingDistributionPoint extension's value (DER), critical.
    pub issuing_distribution_point: Option<Vec<u8>>,
    pub unknown_critical_extension: bool,
}

impl CrlSpec {
    /// CRL number `number`, issued a minute ago (plus `number` seconds, so that a higher
    /// number is also later), valid for a week, listing `revoked`.
    pub fn numbered(number: u64, revoked: &[u64]) -> Self {
        let t = now() - 60 + number as i64;
        Self {
            number: Some(number),
            this_update: t,
            next_update: Some(t + 7 * 86_400),
            revoked: revoked.iter().map(|s| serial(*s)).collect(),
            delta_of: None,
            issuing_distribution_point: None,
            unknown_critical_extension: false,
        }
    }
}

/// A positive serial as DER writes it.
pub fn serial(n: u64) -> Vec<u8> {
    let int = der::integer(n);
    der::read(&int).1.to_vec()
}

/// An issuingDistributionPoint value naming `url` as its distribution point (and, if set,
/// onlySomeReasons keyCompromise).
pub fn issuing_distribution_point(url: &str, only_some_reasons: bool) -> Vec<u8> {
    let uri = der::tlv(0x86, url.as_bytes());
    let mut items = vec![der::explicit(0, &der::tlv(0xa0, &uri))];
    if only_some_reasons {
        // [3] IMPLICIT ReasonFlags (BIT STRING): keyCompromise
        items.push(der::tlv(0x83, &[0x06, 0x40]));
    }
    der::seq(&items)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked,
    Unknown,
}

#[derive(Clone)]
pub enum NonceReply {
    /// The request's nonce, as a responder that supports nonces does.
    Echo,
    Fixed(Vec<u8>),
    /// None, as a responder that does not support nonces (or a replay of another answer).
    Omit,
}

#[derive(Clone)]
pub struct OcspSpec {
    pub status: CertStatus,
    pub this_update: i64,
    pub next_update: Option<i64>,
    pub produced_at: Option<i64>,
    pub nonce: NonceReply,
    /// Certificates embedded in the answer (e.g. the delegated responder's).
    pub certificates: Vec<X509>,
}

impl OcspSpec {
    /// A fresh answer: thisUpdate now, no nextUpdate, the nonce echoed, no certificates.
    pub fn fresh(status: CertStatus) -> Self {
        Self {
            status,
            this_update: now(),
            next_update: None,
            produced_at: None,
            nonce: NonceReply::Echo,
            certificates: Vec::new(),
        }
    }
}

/// What an OCSP request asked: the CertID (DER, to answer with), the serial and the nonce
/// extension's value (DER of the OCTET STRING inside extnValue), if any.
#[derive(Clone, Debug)]
pub struct OcspAsk {
    pub cert_id: Vec<u8>,
    pub serial: Vec<u8>,
    pub nonce: Option<Vec<u8>>,
}

impl OcspAsk {
    pub fn parse(request: &[u8]) -> Self {
        let (_, ocsp_request, _) = der::read(request);
        let (_, tbs, _) = der::read(ocsp_request);
        let mut cert_id = None;
        let mut nonce = None;
        for item in der::children(tbs) {
            match item[0] {
                // requestList: SEQUENCE OF Request { reqCert CertID, … }
                0x30 => {
                    let (_, list, _) = der::read(item);
                    let first = der::children(list)[0];
                    let (_, req, _) = der::read(first);
                    cert_id = Some(der::children(req)[0].to_vec());
                }
                // requestExtensions [2] EXPLICIT Extensions
                0xa2 => {
                    let (_, exts, _) = der::read(item);
                    let (_, exts, _) = der::read(exts);
                    for ext in der::children(exts) {
                        let (_, fields, _) = der::read(ext);
                        let fields = der::children(fields);
                        if fields[0] == der::oid(OID_OCSP_NONCE).as_slice() {
                            let (_, value, _) = der::read(fields[fields.len() - 1]);
                            nonce = Some(value.to_vec());
                        }
                    }
                }
                _ => {}
            }
        }
        let cert_id = cert_id.expect("a CertID in the OCSP request");
        let (_, fields, _) = der::read(&cert_id);
        let serial = der::read(der::children(fields)[3]).1.to_vec();
        Self {
            cert_id,
            serial,
            nonce,
        }
    }
}

/// How the server answers OCSP requests.
pub type OcspResponder = Arc<dyn Fn(&OcspAsk) -> Vec<u8> + Send + Sync>;

#[derive(Default)]
struct ServerState {
    files: HashMap<String, Vec<u8>>,
    ocsp: Option<OcspResponder>,
    ocsp_requests: Vec<OcspAsk>,
    gets: HashMap<String, usize>,
}

/// The revocation server: plain HTTP on a loopback port of its own (bound to port 0).
pub struct RevocationServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<ServerState>>,
}

impl RevocationServer {
    pub async fn start() -> Self {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(ServerState::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let Some((head, body)) = crate::http::read_request(&mut s).await else {
                        return;
                    };
                    let mut words = head.split_whitespace();
                    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                    let answer = {
                        let mut st = state.lock().expect("lock");
                        if method == "POST" {
                            let ask = OcspAsk::parse(&body);
                            st.ocsp_requests.push(ask.clone());
                            st.ocsp
                                .clone()
                                .map(|f| (f(&ask), "application/ocsp-response"))
                        } else {
                            *st.gets.entry(path.to_owned()).or_default() += 1;
                            st.files
                                .get(path)
                                .cloned()
                                .map(|b| (b, "application/pkix-crl"))
                        }
                    };
                    let (status, body, kind) = match answer {
                        Some((b, kind)) => ("200 OK", b, kind),
                        None => ("404 Not Found", Vec::new(), "text/plain"),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(&body).await;
                });
            }
        });
        Self { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves `body` at `path` (GET) from now on.
    pub fn serve(&self, path: &str, body: Vec<u8>) {
        self.state
            .lock()
            .expect("lock")
            .files
            .insert(path.to_owned(), body);
    }

    /// GETs of `path` so far.
    pub fn gets(&self, path: &str) -> usize {
        self.state
            .lock()
            .expect("lock")
            .gets
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Answers every OCSP request with `responder` from now on.
    pub fn ocsp(&self, responder: OcspResponder) {
        self.state.lock().expect("lock").ocsp = Some(responder);
    }

    /// The OCSP requests received so far.
    pub fn ocsp_requests(&self) -> Vec<OcspAsk> {
        self.state.lock().expect("lock").ocsp_requests.clone()
    }
}
