//! Downstream TLS: the versions, suites and groups of Mozilla's profile (`crate::tls_profile`),
//! ALPN h2 and http/1.1, and the server certificate chosen by SNI. A handshake without SNI, or for a name no certificate
//! covers, gets the first certificate and then a 421 page — never another portal's content.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssl::ex_data::Index;
use openssl::stack::Stack;
use pingora::protocols::tls::TlsRef;
use pingora::tls::error::ErrorStack;
use pingora::tls::ext;
use pingora::tls::pkey::{PKey, Private};
use pingora::tls::ssl::{
    AlpnError, NameType, Ssl, SslAcceptor, SslAcceptorBuilder, SslContext, SslMethod, SslMode,
    SslRef, SslVerifyMode,
};
use pingora::tls::x509::store::{X509Store, X509StoreBuilder};
use pingora::tls::x509::{X509Name, X509NameRef, X509};
use prehod_config::{Config, TlsProfile, TlsVersion};
use prehod_identity::cert::{ChainError, Presented};
use sha2::{Digest, Sha256};

/// What the handshake learned, kept on the connection for the HTTP layer
/// (`SslDigest.extension`).
#[derive(Debug)]
pub struct HandshakeInfo {
    /// The SNI the client sent, lower case.
    pub sni: Option<String>,
    /// On a host that asks for a client certificate: everything the handshake established
    /// about it (the certificate, the chain OpenSSL built, every error it reported). `None`
    /// elsewhere.
    pub client_cert: Option<Presented>,
    /// The verdict on `client_cert`, kept for the connection's later requests.
    pub cert_verdict: prehod_identity::cert::VerdictCache,
    /// Where the connection is in its life, for the guard's deadlines (`crate::connections`).
    pub connection: Arc<crate::lifecycle::Connection>,
}

/// The errors OpenSSL reports for one handshake, recorded by its verify callback.
type ErrorRecord = Arc<Mutex<Vec<ChainError>>>;

/// Asking for a client certificate, on the certificate-login host and certificate-only portals.
struct ClientAuth {
    host: String,
    /// Certificate-only portal hosts: their handshake fails without a good certificate.
    required_hosts: Vec<String>,
    store: X509Store,
    /// The anchors' names, sent in the CertificateRequest so that a browser offers only
    /// certificates of those issuers: set on every certificate's context
    /// ([`Certificate::new`]), read only by a handshake that asks for a certificate.
    ca_names: Vec<X509Name>,
    max_depth: u32,
    /// Where the verify callback of a handshake leaves its errors.
    record_index: Index<Ssl, ErrorRecord>,
    /// The verdict of each certificate's last full handshake (by SHA-256 of its DER): a
    /// resumed TLS session runs no verification, so it carries the verdict of the handshake
    /// that made it — or, when that is not known here, none (refused).
    verdicts: moka::sync::Cache<[u8; 32], Arc<Presented>>,
}

/// How long a verdict is kept for resumed sessions: longer than a TLS session lives
/// (OpenSSL's default for TLS, which the listener keeps: two hours).
const VERDICT_LIFETIME: Duration = Duration::from_secs(3 * 3600);

impl ClientAuth {
    fn new(config: &Config) -> Result<Option<Self>, TlsBuildError> {
        let Some(c) = config
            .auth
            .as_ref()
            .and_then(|a| a.certificate_login.as_ref())
        else {
            return Ok(None);
        };
        let mut store = X509StoreBuilder::new().map_err(TlsBuildError::ClientStore)?;
        let mut ca_names = Vec::new();
        for anchor in &c.anchors {
            for ca in &anchor.ca {
                store
                    .add_cert(ca.clone())
                    .map_err(TlsBuildError::ClientStore)?;
                ca_names.push(
                    X509NameRef::to_owned(ca.subject_name()).map_err(TlsBuildError::ClientStore)?,
                );
            }
        }
        let deepest = c
            .anchors
            .iter()
            .filter_map(|a| a.max_chain_depth)
            .fold(c.max_chain_depth, u32::max);
        Ok(Some(ClientAuth {
            required_hosts: config
                .portals
                .iter()
                .filter(|p| p.client_certificate_required)
                .map(|p| p.host.clone())
                .collect(),
            host: c.host.clone(),
            store: store.build(),
            ca_names,
            max_depth: deepest,
            record_index: Ssl::new_ex_index().map_err(TlsBuildError::ClientStore)?,
            verdicts: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(VERDICT_LIFETIME)
                .build(),
        }))
    }

    /// Whether `sni` asks for a client certificate, and whether it demands one.
    fn policy(&self, sni: Option<&str>) -> Option<Demand> {
        let sni = sni?;
        if self.required_hosts.iter().any(|h| h == sni) {
            Some(Demand::Required)
        } else if sni == self.host {
            Some(Demand::Optional)
        } else {
            None
        }
    }

    /// Sets up this handshake to ask for a client certificate and to record every error
    /// OpenSSL reports on its chain. No TLS 1.3 ticket is issued for it, so such a session
    /// is never resumed on a host with another certificate policy (a TLS 1.2 session can be:
    /// it carries its verdict, see [`ClientAuth::presented`]).
    fn ask(&self, ssl: &mut TlsRef, demand: Demand) {
        if let Err(e) = ssl.set_num_tickets(0) {
            tracing::error!(error = %e, "cannot turn off TLS 1.3 tickets for a certificate handshake");
        }
        let record = ErrorRecord::default();
        ssl.set_ex_data(self.record_index, record.clone());
        let mode = match demand {
            Demand::Required => SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
            Demand::Optional => SslVerifyMode::PEER,
        };
        ssl.set_verify_callback(mode, move |ok, store| {
            if !ok {
                record
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(ChainError {
                        depth: store.error_depth(),
                        code: store.error().as_raw(),
                    });
            }
            // Optional (the certificate-login host): the handshake completes whatever the
            // errors, so that the page can say why; the decision is taken from the record.
            // Required: the first error ends the handshake.
            ok || demand == Demand::Optional
        });
        if let Err(e) = ext::ssl_set_verify_cert_store(ssl, &self.store) {
            // Without the store no chain verifies: every certificate is refused.
            tracing::error!(error = %e, "cannot set the client-certificate trust store");
        }
        ssl.param_mut().set_depth(
            i32::try_from(self.max_depth)
                .unwrap_or(i32::MAX)
                .saturating_add(8),
        );
    }

    /// What this handshake established about the client's certificate.
    fn presented(&self, ssl: &TlsRef) -> Presented {
        let leaf = ssl.peer_certificate().and_then(|c| c.to_der().ok());
        let Some(leaf) = leaf else {
            return Presented {
                verified: true,
                ..Presented::default()
            };
        };
        let key: [u8; 32] = Sha256::digest(&leaf).into();
        if ssl.session_reused() {
            // No verification ran: the verdict is the one of the handshake that made this
            // TLS session, for this very certificate, if known.
            return match self.verdicts.get(&key) {
                Some(v) => (*v).clone(),
                None => Presented {
                    leaf: Some(leaf),
                    ..Presented::default()
                },
            };
        }
        let errors = ssl
            .ex_data(self.record_index)
            .map(|r| r.lock().unwrap_or_else(|e| e.into_inner()).clone());
        let presented = Presented {
            chain: ssl
                .verified_chain()
                .map(|chain| chain.iter().filter_map(|c| c.to_der().ok()).collect())
                .unwrap_or_default(),
            leaf: Some(leaf),
            // No record: the verify callback was never set up for this handshake.
            verified: errors.is_some(),
            errors: errors.unwrap_or_default(),
        };
        self.verdicts.insert(key, Arc::new(presented.clone()));
        presented
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Demand {
    Optional,
    Required,
}

/// A server certificate, with its key and chain, in a TLS context of its own: the handshake
/// switches to it (`SSL_set_SSL_CTX`, as nginx does for SNI), which costs a reference to what
/// the context holds — setting the certificate and key on each handshake instead
/// (`SSL_use_certificate`, `SSL_use_PrivateKey`) had OpenSSL check the key against the
/// certificate every time, ~35 000 instructions per handshake.
struct Certificate {
    context: SslContext,
}

impl Certificate {
    /// The certificate's context: the listener's settings ([`settings`], for what the
    /// handshake reads from the context it is switched to: ALPN, the session id context),
    /// the certificate, its key (checked against it here, once) and its intermediates, and
    /// `ca_names` for the CertificateRequest (sent only where [`ClientAuth::ask`] asks: copied
    /// into each such handshake instead, they cost ~27 000 instructions per handshake).
    fn new(
        chain: &[X509],
        key: &PKey<Private>,
        ca_names: &[X509Name],
        profile: TlsProfile,
        min_version: TlsVersion,
    ) -> Result<Self, TlsBuildError> {
        let build = || -> Result<SslContext, pingora::tls::error::ErrorStack> {
            let (mut builder, _) = settings(profile, min_version)?;
            if !ca_names.is_empty() {
                let mut stack = Stack::new()?;
                for name in ca_names {
                    stack.push(X509NameRef::to_owned(name)?)?;
                }
                builder.set_client_ca_list(stack);
            }
            // The config check gives every certificate at least its leaf.
            if let Some((leaf, intermediates)) = chain.split_first() {
                builder.set_certificate(leaf)?;
                for intermediate in intermediates {
                    builder.add_extra_chain_cert(intermediate.clone())?;
                }
            }
            builder.set_private_key(key)?;
            builder.check_private_key()?;
            Ok(builder.build().into_context())
        };
        Ok(Self {
            context: build().map_err(TlsBuildError::Certificate)?,
        })
    }
}

/// Server certificates indexed by the names they cover.
pub struct SniCertificates {
    certs: Vec<Certificate>,
    client_auth: Option<ClientAuth>,
    exact: HashMap<String, usize>,
    /// `*.bankart.si` is stored under `bankart.si`.
    wildcard: HashMap<String, usize>,
}

/// A TLS set-up that cannot be built: the gateway does not start.
#[derive(Debug, thiserror::Error)]
pub enum TlsBuildError {
    #[error("client-certificate trust store: {0}")]
    ClientStore(#[source] pingora::tls::error::ErrorStack),
    #[error("server certificate: {0}")]
    Certificate(#[source] pingora::tls::error::ErrorStack),
}

impl SniCertificates {
    pub fn new(config: &Config) -> Result<Self, TlsBuildError> {
        let client_auth = ClientAuth::new(config)?;
        let ca_names = client_auth
            .as_ref()
            .map_or(&[][..], |c| c.ca_names.as_slice());
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
            certs.push(Certificate::new(
                &c.chain,
                &c.key,
                ca_names,
                config.tls.profile,
                config.tls.min_version,
            )?);
        }
        Ok(Self {
            certs,
            exact,
            wildcard,
            client_auth,
        })
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

impl SniCertificates {
    /// The handshake's certificate callback: the server certificate by SNI, and the request
    /// for a client certificate where the host asks for one. Not called for a resumed TLS
    /// session (OpenSSL skips it), which is why a resumed session's certificate verdict
    /// comes from [`ClientAuth::presented`].
    pub fn choose(&self, ssl: &mut TlsRef) {
        let sni = ssl
            .servername(NameType::HOST_NAME)
            .map(str::to_ascii_lowercase);
        let Some(certificate) = self.certs.get(self.pick(sni.as_deref())) else {
            tracing::error!("no server certificate for this handshake");
            return;
        };
        // First: the switch replaces the handshake's certificate settings, where `ask` puts
        // the client-certificate trust store. The versions, options and groups were copied
        // from the listener's acceptor and stay; the cipher suites and signature algorithms
        // are read from the context switched to — built with the same profile (a reload keeps
        // the listener's: `crate::live`).
        if let Err(e) = ssl.set_ssl_context(&certificate.context) {
            // Without a certificate the handshake fails: the client sees a TLS alert.
            tracing::error!(error = %e, "cannot use the server certificate for this handshake");
            return;
        }
        // Only the certificate-login host (optional) and certificate-only portals (required)
        // ask for a client certificate: a Rekono user is never prompted.
        if let Some(ca) = &self.client_auth {
            if let Some(demand) = ca.policy(sni.as_deref()) {
                ca.ask(ssl, demand);
            }
        }
    }

    /// What the completed handshake established, with the guard's `connection`.
    pub fn handshake_info(
        &self,
        ssl: &TlsRef,
        connection: Arc<crate::lifecycle::Connection>,
    ) -> HandshakeInfo {
        let sni = ssl
            .servername(NameType::HOST_NAME)
            .map(str::to_ascii_lowercase);
        // A resumed TLS 1.2 session reports the SNI of its first handshake only when that one
        // was acknowledged, which pingora's does not: none at all. Such a connection may go
        // to any host (routing then follows Host), so it carries its certificate verdict too.
        let resumed_without_sni = sni.is_none() && ssl.session_reused();
        let client_cert = self
            .client_auth
            .as_ref()
            .filter(|c| c.policy(sni.as_deref()).is_some() || resumed_without_sni)
            .map(|c| c.presented(ssl));
        HandshakeInfo {
            sni,
            client_cert,
            cert_verdict: Default::default(),
            connection,
        }
    }
}

/// The TLS settings a listener keeps for the life of the process (a reload cannot change
/// them; see `crate::live`).
pub struct Fixed {
    profile: TlsProfile,
    min_version: TlsVersion,
}

impl Fixed {
    pub fn of(config: &Config) -> Self {
        Self {
            profile: config.tls.profile,
            min_version: config.tls.min_version,
        }
    }
}

/// The certificate callbacks of the current configuration snapshot: every handshake reads
/// the snapshot in use when it starts, so a reload changes certificates and client-certificate
/// policies for the next handshake.
pub struct LiveCertificates {
    pub live: Arc<crate::live::Live>,
}

impl LiveCertificates {
    /// [`SniCertificates::choose`] of the current snapshot.
    pub fn choose(&self, ssl: &mut TlsRef) {
        self.live.load().tls.choose(ssl);
    }

    /// [`SniCertificates::handshake_info`] of the current snapshot.
    pub fn handshake_info(
        &self,
        ssl: &TlsRef,
        connection: Arc<crate::lifecycle::Connection>,
    ) -> HandshakeInfo {
        self.live.load().tls.handshake_info(ssl, connection)
    }
}

/// ALPN: HTTP/2 when the client offers it, else HTTP/1.1; no ALPN answer for a client that
/// offers neither (it then speaks HTTP/1.1), as pingora's `enable_h2` does.
fn prefer_h2<'a>(_: &mut SslRef, offered: &'a [u8]) -> Result<&'a [u8], AlpnError> {
    pingora::tls::ssl::select_next_proto(b"\x02h2\x08http/1.1", offered).ok_or(AlpnError::NOACK)
}

/// The listener's TLS acceptor: rust-openssl's Mozilla intermediate v5 options, set to the
/// versions, suites and groups of `tls.profile` (`crate::tls_profile`), ALPN h2 and http/1.1.
/// The certificates come from the handshake's callbacks (`crate::connections::accept`).
pub fn acceptor(fixed: &Fixed) -> pingora::Result<SslAcceptor> {
    use pingora::{ErrorType, OrErr};
    let (settings, offered) = settings(fixed.profile, fixed.min_version)
        .or_err_with(ErrorType::InternalError, || {
            format!("setting up the TLS profile {}", fixed.profile.label())
        })?;
    tracing::info!(
        profile = fixed.profile.label(),
        min_version = offered.min_version.label(),
        groups = %offered.groups,
        "TLS profile"
    );
    Ok(settings.build())
}

/// The settings of the listener's acceptor, and of each certificate's context
/// ([`Certificate::new`]).
fn settings(
    profile: TlsProfile,
    min_version: TlsVersion,
) -> Result<(SslAcceptorBuilder, crate::tls_profile::Offered), ErrorStack> {
    let mut settings = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    let offered = crate::tls_profile::apply(&mut settings, profile, min_version)?;
    // Resumed sessions must stay bound to this server's settings (needed once client
    // certificates are verified on a host).
    settings.set_session_id_context(b"prehod")?;
    // An idle keep-alive connection need not hold OpenSSL's 16 KiB read and write record
    // buffers: they are freed between records and taken again for the next one.
    // NO_AUTO_CHAIN: the chain sent is the configured one; without it OpenSSL tried on every
    // handshake of a certificate without intermediates to build a chain from the context's
    // trust store, which is empty (~3 000 instructions per handshake, nothing sent).
    settings.set_mode(SslMode::RELEASE_BUFFERS | SslMode::NO_AUTO_CHAIN);
    settings.set_alpn_select_callback(prefer_h2);
    Ok((settings, offered))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::tls::ssl::SslOptions;

    /// Only the listener's options count (OpenSSL copies them into each connection at
    /// `SSL_new`; the certificate's context switched to by SNI does not change them), and
    /// OpenSSL 3 already refuses a client's renegotiation by default — so the end-to-end test
    /// (`tests/certificate.rs`, `a_client_cannot_renegotiate_a_certificate_connection`) passes
    /// without the option too. This one fails without it.
    #[test]
    fn the_listeners_settings_refuse_renegotiation_under_every_profile() {
        for profile in [TlsProfile::Intermediate, TlsProfile::Modern] {
            for min_version in [TlsVersion::Tls12, TlsVersion::Tls13] {
                let (built, _) = settings(profile, min_version).expect("settings");
                assert!(
                    built.options().contains(SslOptions::NO_RENEGOTIATION),
                    "{profile:?} from {min_version:?}"
                );
            }
        }
    }
}
