//! The development and test PKI: a dev CA, one server certificate for every dev host name,
//! client certificates for each case the gateway must tell apart, and a CRL.
//!
//! Everything is generated (rcgen), never committed: `prehod dev` writes it to `certs/dev/`
//! when missing (and a new server certificate when the one there is about to expire), and the
//! tests write a fresh one into a temporary directory. The server certificate is ECDSA P-256,
//! valid 90 days: what both of Mozilla's profiles take (`tls.profile`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("generating {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The host names the dev server certificate covers for a base domain such as
/// `bankart.localhost`: the domain, every name under it, and the simulator's host.
pub fn dev_server_names(domain: &str) -> Vec<String> {
    vec![
        domain.to_owned(),
        format!("*.{domain}"),
        "rekono.localhost".to_owned(),
        // The simulator run a second time as Bankart's staff IdP (`prehod dev`).
        "staff-idp.localhost".to_owned(),
        "localhost".to_owned(),
    ]
}

/// The files a generated PKI consists of, relative to its directory.
pub mod files {
    pub const CA_CERT: &str = "ca.crt";
    pub const CA_KEY: &str = "ca.key";
    pub const SERVER_CERT: &str = "server.crt";
    pub const SERVER_KEY: &str = "server.key";
    pub const CRL: &str = "ca.crl.pem";
    pub const UNTRUSTED_CA_CERT: &str = "untrusted-ca.crt";
    /// The dev CA's intermediate, which issues `clients/deep.crt` (and its key, for tests
    /// that run an OCSP responder for it).
    pub const INTERMEDIATE_CERT: &str = "intermediate.crt";
    pub const INTERMEDIATE_KEY: &str = "intermediate.key";
    /// EC P-256 key the gateway signs identity assertions with.
    pub const ASSERTION_KEY: &str = "assertion.key";
    /// A 32-byte session sealing key, base64.
    pub const SESSION_KEY: &str = "session.key";
    /// EC P-256 key the gateway authenticates to the simulator with (`private_key_jwt`, the
    /// FAPI 2.0 dev setup `deploy/dev-fapi/`), and its public half the simulator knows.
    pub const OIDC_CLIENT_KEY: &str = "oidc-client.key";
    pub const OIDC_CLIENT_PUB: &str = "oidc-client.pub";
    /// Client certificates: `clients/NAME.crt` and `clients/NAME.key`.
    pub const CLIENTS: [&str; 10] = [
        "valid",
        "expired",
        "revoked",
        "no-client-auth",
        "untrusted",
        "not-yet-valid",
        "impostor",
        "policy",
        "deep",
        "critical",
    ];
    /// Forgeries and broken chains, each refused for the reason its name says:
    /// - `forged`, `forged-not-yet-valid`, `forged-expired`: signed by an attacker's key under
    ///   the dev CA's exact name (valid dates; valid from 2 minutes from now; expired 2 minutes
    ///   ago — both inside the default clock skew);
    /// - `forged-akid`: the same, carrying the dev CA's authority key identifier;
    /// - `forged-intermediate`: issued by an intermediate that names the dev CA as its issuer
    ///   but is signed by the attacker's key (the `.crt` holds the chain);
    /// - `expired-intermediate`: issued by a real intermediate of the dev CA that expired
    ///   yesterday (the `.crt` holds the chain);
    /// - `future-root`: issued by `future-ca.crt`, a root valid only from tomorrow (trust it as
    ///   an anchor to see the refusal).
    pub const FORGED: [&str; 7] = [
        "forged",
        "forged-not-yet-valid",
        "forged-expired",
        "forged-akid",
        "forged-intermediate",
        "expired-intermediate",
        "future-root",
    ];
    /// A root CA that is valid only from tomorrow.
    pub const FUTURE_CA_CERT: &str = "future-ca.crt";
    /// The certificate policy `clients/policy.crt` carries (under POŠTA®CA's arc).
    pub const POLICY_OID: &str = "1.3.6.1.4.1.15284.1.1";
}

/// Writes a fresh PKI for `server_names` into `dir`, replacing what is there.
pub fn generate(dir: &Path, server_names: &[String]) -> Result<(), PkiError> {
    let out = Writer { dir };
    let now = OffsetDateTime::now_utc();

    let ca = new_ca("prehod dev CA", now)?;
    out.write(files::CA_CERT, &ca.pem())?;
    out.write(files::CA_KEY, &ca.key().serialize_pem())?;
    let untrusted = new_ca("prehod untrusted dev CA", now)?;
    out.write(files::UNTRUSTED_CA_CERT, &untrusted.pem())?;
    // Same name as the dev CA, another key: what an impostor would make.
    let impostor = new_ca("prehod dev CA", now)?;
    // An intermediate under the dev CA: `deep` is issued by it (a chain of three).
    let intermediate = {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "prehod dev intermediate CA");
        dn.push(DnType::OrganizationName, "prehod development");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(1825);
        params.serial_number = Some(SerialNumber::from(2u64));
        params.use_authority_key_identifier_extension = true;
        CertifiedIssuer::signed_by(params, new_key("intermediate key")?, &ca).map_err(|source| {
            PkiError::Generate {
                what: "intermediate CA",
                source,
            }
        })?
    };

    out.write(files::INTERMEDIATE_CERT, &intermediate.pem())?;
    out.write(files::INTERMEDIATE_KEY, &intermediate.key().serialize_pem())?;

    issue_server(&out, &ca, server_names, now)?;

    let assertion = new_key("assertion key")?;
    out.write(files::ASSERTION_KEY, &assertion.serialize_pem())?;
    out.write(files::SESSION_KEY, &session_key()?)?;
    oidc_client_key(&out)?;

    let mut revoked_serial = None;
    for (i, name) in files::CLIENTS.iter().enumerate() {
        let serial = 1000 + i as u64;
        let mut params = leaf_params(&format!("Testni Uporabnik ({name})"), now, serial)?;
        params.distinguished_name.push(
            DnType::CustomDnType(vec![2, 5, 4, 5]),
            format!("SI-DEV-{serial}"),
        );
        params.subject_alt_names = vec![SanType::Rfc822Name(
            format!("{name}@uporabnik.bankart.localhost")
                .try_into()
                .map_err(|source| PkiError::Generate {
                    what: "client e-mail",
                    source,
                })?,
        )];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        match *name {
            "expired" => {
                params.not_before = now - Duration::days(60);
                params.not_after = now - Duration::days(1);
            }
            "no-client-auth" => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
            }
            "revoked" => revoked_serial = Some(serial),
            "policy" => {
                // certificatePolicies: SEQUENCE { SEQUENCE { OID 1.3.6.1.4.1.15284.1.1 } }
                let der = vec![
                    0x30, 0x0d, 0x30, 0x0b, 0x06, 0x09, 0x2b, 0x06, 0x01, 0x04, 0x01, 0xf7, 0x34,
                    0x01, 0x01,
                ];
                params
                    .custom_extensions
                    .push(rcgen::CustomExtension::from_oid_content(
                        &[2, 5, 29, 32],
                        der,
                    ));
            }
            "critical" => {
                // A critical extension nobody knows (a private OID, value NULL).
                let mut ext = rcgen::CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 55555, 1],
                    vec![0x05, 0x00],
                );
                ext.set_criticality(true);
                params.custom_extensions.push(ext);
            }
            "not-yet-valid" => {
                params.not_before = now + Duration::days(2);
                params.not_after = now + Duration::days(30);
            }
            _ => {}
        }
        let issuer = match *name {
            "untrusted" => &untrusted,
            "impostor" => &impostor,
            "deep" => &intermediate,
            _ => &ca,
        };

        let key = new_key("client key")?;
        let cert = params
            .signed_by(&key, issuer)
            .map_err(|source| PkiError::Generate {
                what: "client certificate",
                source,
            })?;
        // A client sends its chain: `deep` comes with its intermediate.
        let chain = if *name == "deep" {
            format!("{}{}", cert.pem(), intermediate.pem())
        } else {
            cert.pem()
        };
        out.write(&format!("clients/{name}.crt"), &chain)?;
        out.write(&format!("clients/{name}.key"), &key.serialize_pem())?;
    }

    forgeries(&out, &ca, now)?;

    let crl_pem = crl_pem(
        &ca,
        (now - Duration::minutes(5), now + Duration::days(7)),
        1,
        revoked_serial.into_iter(),
        now - Duration::minutes(1),
    )?;
    out.write(files::CRL, &crl_pem)?;
    Ok(())
}

/// A CRL of `issuer` in PEM: valid over `(this_update, next_update)`, numbered `number`, that
/// revokes `serials` at `revoked_at`.
fn crl_pem(
    issuer: &rcgen::Issuer<'_, KeyPair>,
    (this_update, next_update): (OffsetDateTime, OffsetDateTime),
    number: u64,
    serials: impl Iterator<Item = u64>,
    revoked_at: OffsetDateTime,
) -> Result<String, PkiError> {
    let crl = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs: serials
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from(serial),
                revocation_time: revoked_at,
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(issuer)
    .map_err(|source| PkiError::Generate {
        what: "CRL",
        source,
    })?;
    crl.pem().map_err(|source| PkiError::Generate {
        what: "CRL PEM",
        source,
    })
}

/// The certificates of [`files::FORGED`]: what an attacker makes to pass as a user of `ca`,
/// and chains whose CA certificates are out of date.
fn forgeries(
    out: &Writer<'_>,
    ca: &CertifiedIssuer<'static, KeyPair>,
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    // The attacker's CA: the dev CA's exact name, the attacker's key.
    let attacker = new_ca("prehod dev CA", now)?;
    // The same, presenting the real CA's key identifier (so the AKID points at the real CA).
    let real_skid = ca_params("prehod dev CA", now).key_identifier(ca.key());
    let attacker_with_akid = {
        let mut params = ca_params("prehod dev CA", now);
        params.key_identifier_method = KeyIdMethod::PreSpecified(real_skid);
        CertifiedIssuer::self_signed(params, new_key("attacker key")?).map_err(|source| {
            PkiError::Generate {
                what: "attacker CA",
                source,
            }
        })?
    };
    let intermediate = |name: &str,
                        issuer: &CertifiedIssuer<'static, KeyPair>,
                        not_before: OffsetDateTime,
                        not_after: OffsetDateTime|
     -> Result<CertifiedIssuer<'static, KeyPair>, PkiError> {
        let mut params = ca_params(name, now);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(SerialNumber::from(3u64));
        params.use_authority_key_identifier_extension = true;
        CertifiedIssuer::signed_by(params, new_key("intermediate key")?, issuer).map_err(|source| {
            PkiError::Generate {
                what: "intermediate CA",
                source,
            }
        })
    };
    let forged_intermediate = intermediate(
        "prehod forged intermediate CA",
        &attacker,
        now - Duration::days(1),
        now + Duration::days(365),
    )?;
    let expired_intermediate = intermediate(
        "prehod expired intermediate CA",
        ca,
        now - Duration::days(60),
        now - Duration::days(1),
    )?;
    let future_root = {
        let mut params = ca_params("prehod future CA", now);
        params.not_before = now + Duration::days(1);
        CertifiedIssuer::self_signed(params, new_key("CA key")?).map_err(|source| {
            PkiError::Generate {
                what: "future CA",
                source,
            }
        })?
    };
    out.write(files::FUTURE_CA_CERT, &future_root.pem())?;
    for (i, name) in files::FORGED.iter().enumerate() {
        // The serial of `valid`, so that a forgery claims the valid user's identity.
        let mut params = leaf_params(&format!("Testni Uporabnik ({name})"), now, 1000)?;
        if *name == "future-root" || *name == "expired-intermediate" {
            params.serial_number = Some(SerialNumber::from(2000 + i as u64));
        }
        params
            .distinguished_name
            .push(DnType::CustomDnType(vec![2, 5, 4, 5]), "SI-DEV-1000");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        match *name {
            "forged-not-yet-valid" => {
                params.not_before = now + Duration::minutes(2);
                params.not_after = now + Duration::days(30);
            }
            "forged-expired" => {
                params.not_before = now - Duration::days(30);
                params.not_after = now - Duration::minutes(2);
            }
            _ => {}
        }
        let (issuer, chain_ca) = match *name {
            "forged-akid" => (&attacker_with_akid, None),
            "forged-intermediate" => (&forged_intermediate, Some(&forged_intermediate)),
            "expired-intermediate" => (&expired_intermediate, Some(&expired_intermediate)),
            "future-root" => (&future_root, None),
            _ => (&attacker, None),
        };
        let key = new_key("client key")?;
        let cert = params
            .signed_by(&key, issuer)
            .map_err(|source| PkiError::Generate {
                what: "forged client certificate",
                source,
            })?;
        let chain = match chain_ca {
            Some(c) => format!("{}{}", cert.pem(), c.pem()),
            None => cert.pem(),
        };
        out.write(&format!("clients/{name}.crt"), &chain)?;
        out.write(&format!("clients/{name}.key"), &key.serialize_pem())?;
    }
    Ok(())
}

/// How long a server certificate is valid: Mozilla's recommended lifespan, and the most its
/// "modern" profile allows (90 days; "intermediate" allows 366).
pub const SERVER_CERT_DAYS: i64 = 90;

/// [`ensure`] issues a new server certificate when the one there has fewer days left.
pub const SERVER_CERT_RENEW_DAYS: i64 = 30;

/// The server certificate for `server_names` (and 127.0.0.1), signed by `ca`, valid from a day
/// ago for [`SERVER_CERT_DAYS`] in all, with a random serial of 127 bits (as the CA/Browser
/// Forum asks of public ones: at least 64 bits of randomness; each renewal has its own).
fn issue_server(
    out: &Writer<'_>,
    ca: &rcgen::Issuer<'_, KeyPair>,
    server_names: &[String],
    now: OffsetDateTime,
) -> Result<(), PkiError> {
    let mut server = leaf_params("prehod dev server", now, 0)?;
    let mut serial: [u8; 16] = random_bytes()?;
    // Positive, and no leading zero byte.
    if let Some(first) = serial.first_mut() {
        *first = (*first & 0x7f) | 0x40;
    }
    server.serial_number = Some(SerialNumber::from_slice(&serial));
    server.not_after = server.not_before + Duration::days(SERVER_CERT_DAYS);
    server.subject_alt_names = server_names
        .iter()
        .map(|n| n.clone().try_into().map(SanType::DnsName))
        .collect::<Result<_, _>>()
        .map_err(|source| PkiError::Generate {
            what: "server names",
            source,
        })?;
    server
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = new_key("server key")?;
    let cert = server
        .signed_by(&key, ca)
        .map_err(|source| PkiError::Generate {
            what: "server certificate",
            source,
        })?;
    out.write(files::SERVER_CERT, &cert.pem())?;
    out.write(files::SERVER_KEY, &key.serialize_pem())
}

/// What [`ensure`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ensured {
    /// The PKI was there, its server certificate good for more than
    /// [`SERVER_CERT_RENEW_DAYS`].
    Kept,
    /// There was none: a new PKI was generated.
    Generated,
    /// The server certificate was about to expire (or unreadable): a new one was issued by
    /// the same dev CA, so that a browser that trusts it goes on trusting the gateway.
    RenewedServerCertificate,
}

/// Generates the PKI into `dir` unless it is there, and renews its server certificate when
/// fewer than [`SERVER_CERT_RENEW_DAYS`] days are left of it.
pub fn ensure(dir: &Path, server_names: &[String]) -> Result<Ensured, PkiError> {
    if !(dir.join(files::SERVER_CERT).exists() && dir.join(files::CA_CERT).exists()) {
        generate(dir, server_names)?;
        return Ok(Ensured::Generated);
    }
    // A dev PKI from before the FAPI 2.0 dev setup has no client key: it gets one.
    if !dir.join(files::OIDC_CLIENT_KEY).exists() {
        oidc_client_key(&Writer { dir })?;
    }
    let now = OffsetDateTime::now_utc();
    let renew_after = now + Duration::days(SERVER_CERT_RENEW_DAYS);
    match server_not_after(dir) {
        // Kept while it is far from its end and names every server name (a PKI from before
        // a name was added gets a new server certificate).
        Some(not_after) if not_after > renew_after && server_names_all(dir, server_names) => {
            Ok(Ensured::Kept)
        }
        _ => {
            let ca = load_ca(dir)?;
            issue_server(&Writer { dir }, &ca, server_names, now)?;
            Ok(Ensured::RenewedServerCertificate)
        }
    }
}

/// The end of the validity of `dir`'s server certificate; `None` when it cannot be read.
fn server_not_after(dir: &Path) -> Option<OffsetDateTime> {
    let pem = std::fs::read(dir.join(files::SERVER_CERT)).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(cert.validity().not_after.to_datetime())
}

/// Whether `dir`'s server certificate names every one of `names` (DNS names).
fn server_names_all(dir: &Path, names: &[String]) -> bool {
    let Ok(pem) = std::fs::read(dir.join(files::SERVER_CERT)) else {
        return false;
    };
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(&pem) else {
        return false;
    };
    let Ok(cert) = pem.parse_x509() else {
        return false;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    let dns: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(*d),
            _ => None,
        })
        .collect();
    names.iter().all(|n| dns.contains(&n.as_str()))
}

/// The gateway's `private_key_jwt` key pair (EC P-256).
fn oidc_client_key(out: &Writer<'_>) -> Result<(), PkiError> {
    let key = new_key("OIDC client key")?;
    out.write(files::OIDC_CLIENT_KEY, &key.serialize_pem())?;
    out.write(files::OIDC_CLIENT_PUB, &key.public_key_pem())
}

/// 32 random bytes from the kernel, base64.
fn session_key() -> Result<String, PkiError> {
    let bytes: [u8; 32] = random_bytes()?;
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes) + "\n")
}

/// `N` random bytes from the kernel.
fn random_bytes<const N: usize>() -> Result<[u8; N], PkiError> {
    use std::io::Read;
    let mut bytes = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| PkiError::Write {
            path: "/dev/urandom".into(),
            source,
        })?;
    Ok(bytes)
}

fn new_key(what: &'static str) -> Result<KeyPair, PkiError> {
    KeyPair::generate().map_err(|source| PkiError::Generate { what, source })
}

fn new_ca(name: &str, now: OffsetDateTime) -> Result<CertifiedIssuer<'static, KeyPair>, PkiError> {
    CertifiedIssuer::self_signed(ca_params(name, now), new_key("CA key")?).map_err(|source| {
        PkiError::Generate {
            what: "CA certificate",
            source,
        }
    })
}

/// A root CA's parameters: `name` in organisation "prehod development", valid for ten years.
fn ca_params(name: &str, now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "prehod development");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(3650);
    params.serial_number = Some(SerialNumber::from(1u64));
    params
}

fn leaf_params(
    common_name: &str,
    now: OffsetDateTime,
    serial: u64,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, "prehod development");
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(825);
    params.serial_number = Some(SerialNumber::from(serial));
    Ok(params)
}

struct Writer<'a> {
    dir: &'a Path,
}

impl Writer<'_> {
    fn write(&self, name: &str, contents: &str) -> Result<(), PkiError> {
        let path = self.dir.join(name);
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, contents));
        result.map_err(|source| PkiError::Write { path, source })?;
        #[cfg(unix)]
        if name.ends_with(".key") {
            use std::os::unix::fs::PermissionsExt;
            let path = self.dir.join(name);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|source| PkiError::Write { path, source })?;
        }
        Ok(())
    }
}

/// Writes a new CRL for the dev CA in `dir` to `path`, listing `serials`, with a nextUpdate
/// `next_update` from now (negative: already stale). For tests of CRL reloading.
pub fn write_crl(
    dir: &Path,
    path: &Path,
    serials: &[u64],
    next_update: Duration,
) -> Result<(), PkiError> {
    let issuer = load_ca(dir)?;
    let now = OffsetDateTime::now_utc();
    let (this_update, next) = if next_update.is_negative() {
        (now + next_update - Duration::days(1), now + next_update)
    } else {
        (now - Duration::minutes(1), now + next_update)
    };
    let pem = crl_pem(
        &issuer,
        (this_update, next),
        now.unix_timestamp() as u64,
        serials.iter().copied(),
        now - Duration::minutes(1),
    )?;
    // Written whole, then renamed: a reader never sees half a CRL.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, pem)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| PkiError::Write {
            path: path.to_owned(),
            source,
        })
}

/// Issues `clients/NAME.crt` and `.key` from the dev CA in `dir`, with serial `serial` and a
/// CRL distribution point `crl_url`: for tests of distribution-point checking, whose URL is
/// only known once the test's server runs.
pub fn issue_client_with_crl_dp(
    dir: &Path,
    name: &str,
    serial: u64,
    crl_url: &str,
) -> Result<(), PkiError> {
    let issuer = load_ca(dir)?;
    let now = OffsetDateTime::now_utc();
    let mut params = leaf_params(&format!("Testni Uporabnik ({name})"), now, serial)?;
    params.distinguished_name.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        format!("SI-DEV-{serial}"),
    );
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
        uris: vec![crl_url.to_owned()],
    }];
    let leaf_key = new_key("client key")?;
    let cert = params
        .signed_by(&leaf_key, &issuer)
        .map_err(|source| PkiError::Generate {
            what: "client certificate",
            source,
        })?;
    let out = Writer { dir };
    out.write(&format!("clients/{name}.crt"), &cert.pem())?;
    out.write(&format!("clients/{name}.key"), &leaf_key.serialize_pem())
}

/// The dev CA of the PKI in `dir`, ready to sign (its certificate and key as written).
fn load_ca(dir: &Path) -> Result<rcgen::Issuer<'static, KeyPair>, PkiError> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read_to_string(&p).map_err(|source| PkiError::Write { path: p, source })
    };
    let key = KeyPair::from_pem(&read(files::CA_KEY)?).map_err(|source| PkiError::Generate {
        what: "CA key",
        source,
    })?;
    rcgen::Issuer::from_ca_cert_pem(&read(files::CA_CERT)?, key).map_err(|source| {
        PkiError::Generate {
            what: "CA certificate",
            source,
        }
    })
}

/// Issues `clients/NAME.crt` (with its chain) and `.key` under a new intermediate of the dev CA
/// in `dir` that expires at `intermediate_not_after`: for tests of a session that must end
/// when a CA of its chain expires.
pub fn issue_client_under_intermediate(
    dir: &Path,
    name: &str,
    serial: u64,
    intermediate_not_after: OffsetDateTime,
) -> Result<(), PkiError> {
    let ca = load_ca(dir)?;
    let now = OffsetDateTime::now_utc();
    let mut params = ca_params("prehod short-lived intermediate CA", now);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.not_after = intermediate_not_after;
    params.serial_number = Some(SerialNumber::from(serial + 1_000_000));
    params.use_authority_key_identifier_extension = true;
    let intermediate = CertifiedIssuer::signed_by(params, new_key("intermediate key")?, &ca)
        .map_err(|source| PkiError::Generate {
            what: "intermediate CA",
            source,
        })?;
    let mut leaf = leaf_params(&format!("Testni Uporabnik ({name})"), now, serial)?;
    leaf.distinguished_name.push(
        DnType::CustomDnType(vec![2, 5, 4, 5]),
        format!("SI-DEV-{serial}"),
    );
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = new_key("client key")?;
    let cert = leaf
        .signed_by(&key, &intermediate)
        .map_err(|source| PkiError::Generate {
            what: "client certificate",
            source,
        })?;
    let out = Writer { dir };
    out.write(
        &format!("clients/{name}.crt"),
        &format!("{}{}", cert.pem(), intermediate.pem()),
    )?;
    out.write(&format!("clients/{name}.key"), &key.serialize_pem())
}
