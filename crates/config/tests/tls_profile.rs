//! `tls.profile` with `tls.min_version`: the default, the older configurations that only say
//! `min_version`, and the contradictions `prehod check` refuses (with FILE:LINE:COL).
// Tests index into their own fixtures, where a panic is the failure report.
#![allow(clippy::indexing_slicing)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{assert_refused, pki};
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509Builder, X509NameBuilder};
use prehod_config::{Config, ConfigError, TlsProfile, TlsVersion};

/// A configuration whose `tls:` section has `tls_lines` before its certificate (the dev
/// PKI's, ECDSA P-256) and `more_certificates` after it.
fn config(pki: &Path, tls_lines: &str, more_certificates: &str) -> String {
    format!(
        "listen:\n  https: 0.0.0.0:443\nadmin:\n  listen: 127.0.0.1:9090\n\
tls:\n{tls_lines}  certificates:\n    - cert: {dir}/server.crt\n      key: {dir}/server.key\n{more_certificates}\
portals:\n  acq:\n    host: acq.bankart.localhost\n    upstream:\n      urls: [http://127.0.0.1:8081]\n    danger_no_authentication: true\n",
        dir = pki.display()
    )
}

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_text(Path::new("/etc/prehod/proxy.yaml"), text, |_| None)
}

/// A self-signed RSA certificate of `bits` for `rsa.bankart.localhost`, and its key (private).
fn rsa_certificate(dir: &Path, bits: u32) -> (PathBuf, PathBuf) {
    let key = PKey::from_rsa(Rsa::generate(bits).expect("RSA")).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", "rsa.bankart.localhost")
        .expect("CN");
    let name = name.build();
    let mut b = X509Builder::new().expect("builder");
    b.set_version(2).expect("v3");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&key).expect("public key");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("now"))
        .expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(30).expect("later"))
        .expect("not after");
    let san = SubjectAlternativeName::new()
        .dns("rsa.bankart.localhost")
        .build(&b.x509v3_context(None, None))
        .expect("SAN");
    b.append_extension(san).expect("SAN");
    b.sign(&key, MessageDigest::sha256()).expect("sign");
    let cert = dir.join(format!("rsa-{bits}.crt"));
    let key_path = dir.join(format!("rsa-{bits}.key"));
    std::fs::write(&cert, b.build().to_pem().expect("PEM")).expect("write");
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().expect("PEM")).expect("write");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (cert, key_path)
}

fn item((cert, key): &(PathBuf, PathBuf)) -> String {
    format!(
        "    - cert: {}\n      key: {}\n",
        cert.display(),
        key.display()
    )
}

#[test]
fn intermediate_is_the_default_and_a_tls_1_3_minimum_still_narrows_it() {
    let pki = pki();
    let tls = load(&config(pki.path(), "", "")).expect("valid").tls;
    assert_eq!(
        (tls.profile, tls.min_version),
        (TlsProfile::Intermediate, TlsVersion::Tls12)
    );
    // A configuration from before `profile` existed keeps its meaning.
    let tls = load(&config(pki.path(), "  min_version: \"1.3\"\n", ""))
        .expect("valid")
        .tls;
    assert_eq!(
        (tls.profile, tls.min_version),
        (TlsProfile::Intermediate, TlsVersion::Tls13)
    );
    for lines in [
        "  profile: modern\n",
        "  profile: modern\n  min_version: \"1.3\"\n",
    ] {
        let tls = load(&config(pki.path(), lines, "")).expect("valid").tls;
        assert_eq!(
            (tls.profile, tls.min_version),
            (TlsProfile::Modern, TlsVersion::Tls13),
            "{lines}"
        );
    }
}

#[test]
fn contradictions_and_unknown_profiles_are_refused_where_they_are_written() {
    let pki = pki();
    let loaded = load(&config(
        pki.path(),
        "  profile: modern\n  min_version: \"1.2\"\n",
        "",
    ));
    assert_refused(
        loaded,
        &["/etc/prehod/proxy.yaml:7:3: tls.min_version: \"1.2\" contradicts tls.profile: modern, which offers TLS 1.3 only"],
    );
    assert_refused(
        load(&config(pki.path(), "  profile: old\n", "")),
        &["/etc/prehod/proxy.yaml:6:3: tls.profile: \"old\" is not a profile: use \"intermediate\""],
    );
}

#[test]
fn a_certificate_key_the_profile_does_not_take_is_refused() {
    let pki = pki();
    let rsa_2048 = rsa_certificate(pki.path(), 2048);
    let rsa_1024 = rsa_certificate(pki.path(), 1024);
    load(&config(pki.path(), "", &item(&rsa_2048))).expect("RSA-2048 under intermediate");

    let shown = load(&config(pki.path(), "", &item(&rsa_1024)))
        .expect_err("RSA-1024")
        .to_string();
    assert!(
        shown.contains(&format!(
            "/etc/prehod/proxy.yaml:9:7: tls.certificates[1].cert: {} has an RSA key of 1024 bits; Mozilla's intermediate profile takes ECDSA on P-256 or P-384, or RSA of at least 2048 bits",
            rsa_1024.0.display()
        )),
        "{shown}"
    );

    let shown = load(&config(pki.path(), "  profile: modern\n", &item(&rsa_2048)))
        .expect_err("RSA under modern")
        .to_string();
    assert!(
        shown.contains(&format!(
            "tls.certificates[1].cert: {} has an RSA key; Mozilla's modern profile takes ECDSA on P-256 or P-384 only",
            rsa_2048.0.display()
        )),
        "{shown}"
    );
}
