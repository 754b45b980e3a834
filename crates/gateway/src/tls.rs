//! Downstream TLS: TLS 1.2 and 1.3 only, modern AEAD ciphers, ALPN h2 and http/1.1, and the
//! server certificate chosen by SNI. A handshake without SNI, or for a name no certificate
//! covers, gets the first certificate and then a 421 page — never another portal's content.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use pingora::tls::ext;
use pingora::tls::pkey::{PKey, Private};
use pingora::tls::ssl::{NameType, SslVersion};
use pingora::tls::x509::X509;
use prehod_config::{Config, TlsVersion};

/// TLS 1.2 suites: ECDHE with AES-GCM or ChaCha20-Poly1305 only (TLS 1.3 suites are all AEAD).
const TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

/// What the handshake learned, kept on the connection for the HTTP layer
/// (`SslDigest.extension`).
#[derive(Debug)]
pub struct HandshakeInfo {
    /// The SNI the client sent, lower case.
    pub sni: Option<String>,
    /// On the certificate-login host: the certificate the client presented (DER) and what
    /// OpenSSL made of its chain (`X509_V_OK` = 0). `None` elsewhere.
    pub client_cert: Option<ClientCert>,
}

#[derive(Clone, Debug)]
pub struct ClientCert {
    pub der: Option<Vec<u8>>,
    pub verify_code: i32,
    /// DER of the subject of the chain's root, as OpenSSL built it (the trust anchor).
    pub root_subject: Option<Vec<u8>>,
    /// How many certificates the verified chain has (leaf and root included).
    pub chain_len: usize,
}

/// Asking for a client certificate, only on one host.
struct ClientAuth {
    host: String,
    /// Certificate-only portal hosts: their handshake fails without a good certificate.
    required_hosts: Vec<String>,
    store: pingora::tls::x509::store::X509Store,
    max_depth: u32,
}

struct Certificate {
    chain: Vec<X509>,
    key: PKey<Private>,
}

/// Server certificates indexed by the names they cover.
pub struct SniCertificates {
    certs: Vec<Certificate>,
    client_auth: Option<ClientAuth>,
    exact: HashMap<String, usize>,
    /// `*.bankart.si` is stored under `bankart.si`.
    wildcard: HashMap<String, usize>,
}

impl SniCertificates {
    pub fn new(config: &Config) -> Self {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        let mut certs = Vec::new();
        for (i, c) in config.tls.certificates.iter().enumerate() {
            for name in &c.dns_names {
                // The first certificate naming a host wins, as listed in the config.
                match name.strip_prefix("*.") {
                    Some(suffix) => wildcard.entry(suffix.to_owned()).or_insert(i),
                    None => exact.entry(name.clone()).or_insert(i),
                };
            }
            certs.push(Certificate {
                chain: c.chain.clone(),
                key: c.key.clone(),
            });
        }
        let client_auth = config
            .auth
            .as_ref()
            .and_then(|a| a.certificate_login.as_ref())
            .and_then(|c| {
                let mut store = pingora::tls::x509::store::X509StoreBuilder::new().ok()?;
                for anchor in &c.anchors {
                    for ca in &anchor.ca {
                        store.add_cert(ca.clone()).ok()?;
                    }
                }
                let deepest = c
                    .anchors
                    .iter()
                    .filter_map(|a| a.max_chain_depth)
                    .fold(c.max_chain_depth, u32::max);
                Some(ClientAuth {
                    required_hosts: config
                        .portals
                        .iter()
                        .filter(|p| p.client_certificate_required)
                        .map(|p| p.host.clone())
                        .collect(),
                    host: c.host.clone(),
                    store: store.build(),
                    max_depth: deepest,
                })
            });
        Self {
            certs,
            exact,
            wildcard,
            client_auth,
        }
    }

    /// The index of the certificate for `sni`; the first one when none covers it.
    pub fn pick(&self, sni: Option<&str>) -> usize {
        let Some(sni) = sni else { return 0 };
        let sni = sni.to_ascii_lowercase();
        if let Some(&i) = self.exact.get(&sni) {
            return i;
        }
        sni.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent).copied())
            .unwrap_or(0)
    }
}

#[async_trait]
impl TlsAccept for SniCertificates {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        let sni = ssl
            .servername(NameType::HOST_NAME)
            .map(str::to_ascii_lowercase);
        // Only the certificate-login host asks for a client certificate (optional mode): a
        // Rekono user is never prompted. The callback accepts any certificate so that a bad
        // one gets a page saying why, not a TLS alert; OpenSSL's verdict is kept below.
        if let Some(ca) = self.client_auth.as_ref().filter(|c| {
            sni.as_deref()
                .is_some_and(|s| c.required_hosts.iter().any(|h| h == s))
        }) {
            // A certificate-only portal: no certificate, or one OpenSSL rejects, ends the
            // handshake (that is what `required` means).
            ssl.set_verify(
                pingora::tls::ssl::SslVerifyMode::PEER
                    | pingora::tls::ssl::SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            );
            if let Err(e) = ext::ssl_set_verify_cert_store(ssl, &ca.store) {
                tracing::error!(error = %e, "cannot set the client-certificate trust store");
            }
            ssl.param_mut().set_depth(ca.max_depth as i32 + 8);
        } else if let Some(ca) = self
            .client_auth
            .as_ref()
            .filter(|c| sni.as_deref() == Some(c.host.as_str()))
        {
            ssl.set_verify_callback(pingora::tls::ssl::SslVerifyMode::PEER, |_, _| true);
            if let Err(e) = ext::ssl_set_verify_cert_store(ssl, &ca.store) {
                tracing::error!(error = %e, "cannot set the client-certificate trust store");
            }
            ssl.param_mut().set_depth(ca.max_depth as i32 + 8);
        }
        let i = self.pick(sni.as_deref());
        let Some(cert) = self.certs.get(i) else {
            return;
        };
        let result = ext::ssl_use_certificate(ssl, &cert.chain[0])
            .and_then(|()| ext::ssl_use_private_key(ssl, &cert.key))
            .and_then(|()| {
                cert.chain[1..]
                    .iter()
                    .try_for_each(|intermediate| ext::ssl_add_chain_cert(ssl, intermediate))
            });
        if let Err(e) = result {
            // Without a certificate the handshake fails: the client sees a TLS alert.
            tracing::error!(error = %e, "cannot use the server certificate for this handshake");
        }
    }

    async fn handshake_complete_callback(
        &self,
        ssl: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let sni = ssl
            .servername(NameType::HOST_NAME)
            .map(str::to_ascii_lowercase);
        let client_cert = self
            .client_auth
            .as_ref()
            .filter(|c| {
                sni.as_deref()
                    .is_some_and(|s| s == c.host || c.required_hosts.iter().any(|h| h == s))
            })
            .map(|_| ClientCert {
                der: ssl.peer_certificate().and_then(|c| c.to_der().ok()),
                verify_code: ssl.verify_result().as_raw(),
                chain_len: ssl.verified_chain().map_or(0, |c| c.len()),
                root_subject: ssl.verified_chain().and_then(|chain| {
                    chain
                        .iter()
                        .last()
                        .and_then(|root| root.subject_name().to_der().ok())
                }),
            });
        Some(Arc::new(HandshakeInfo { sni, client_cert }))
    }
}

/// Builds the listener's TLS settings.
pub fn settings(config: &Config) -> pingora::Result<TlsSettings> {
    use pingora::{ErrorType, OrErr};
    let mut settings = TlsSettings::with_callbacks(Box::new(SniCertificates::new(config)))?;
    let min = match config.tls.min_version {
        TlsVersion::Tls12 => SslVersion::TLS1_2,
        TlsVersion::Tls13 => SslVersion::TLS1_3,
    };
    settings
        .set_min_proto_version(Some(min))
        .or_err(ErrorType::InternalError, "setting the minimum TLS version")?;
    settings
        .set_max_proto_version(Some(SslVersion::TLS1_3))
        .or_err(ErrorType::InternalError, "setting the maximum TLS version")?;
    settings
        .set_cipher_list(TLS12_CIPHERS)
        .or_err(ErrorType::InternalError, "setting the TLS 1.2 cipher list")?;
    // Resumed sessions must stay bound to this server's settings (needed once client
    // certificates are verified on a host).
    settings.set_session_id_context(b"prehod").or_err(
        ErrorType::InternalError,
        "setting the TLS session id context",
    )?;
    settings.enable_h2();
    Ok(settings)
}
