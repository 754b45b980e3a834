//! The generated dev PKI has the properties the certificate tests will rely on, checked with
//! OpenSSL itself rather than with the generator's own code.

use openssl::nid::Nid;
use openssl::x509::X509;
use prehod_test_support::Pki;

fn cert(pki: &Pki, name: &str) -> X509 {
    X509::from_pem(&std::fs::read(pki.path(name)).expect("read")).expect("pem")
}

/// `openssl verify`: `None` when the chain verifies, else OpenSSL's error number.
fn verify(pki: &Pki, name: &str, with_crl: bool) -> Option<u32> {
    let mut cmd = std::process::Command::new("openssl");
    cmd.arg("verify").arg("-CAfile").arg(pki.path("ca.crt"));
    if with_crl {
        cmd.arg("-crl_check")
            .arg("-CRLfile")
            .arg(pki.path("ca.crl.pem"));
    }
    let out = cmd
        .arg(pki.path(name))
        .output()
        .expect("the openssl command (deploy/setup.sh installs it)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        assert!(text.contains(": OK"), "{text}");
        return None;
    }
    let number = text
        .split("error ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok());
    Some(number.unwrap_or_else(|| panic!("unexpected openssl output: {text}")))
}

#[test]
fn client_certificates_fail_for_the_reason_their_name_says() {
    let pki = Pki::new();
    assert_eq!(verify(&pki, "server.crt", true), None);
    assert_eq!(verify(&pki, "clients/valid.crt", true), None);
    assert_eq!(
        verify(&pki, "clients/no-client-auth.crt", true),
        None,
        "chain is fine; only the EKU is wrong"
    );
    assert_eq!(
        verify(&pki, "clients/expired.crt", false),
        Some(10),
        "X509_V_ERR_CERT_HAS_EXPIRED"
    );
    assert_eq!(
        verify(&pki, "clients/revoked.crt", false),
        None,
        "valid without the CRL"
    );
    assert_eq!(
        verify(&pki, "clients/revoked.crt", true),
        Some(23),
        "X509_V_ERR_CERT_REVOKED"
    );
    assert_eq!(
        verify(&pki, "clients/untrusted.crt", false),
        Some(20),
        "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
    );
    // The forgeries, as OpenSSL itself sees them: with the attacker's key identifier no
    // issuer is found; with the real CA's, its signature fails.
    assert_eq!(
        verify(&pki, "clients/forged.crt", false),
        Some(20),
        "X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
    );
    assert_eq!(
        verify(&pki, "clients/forged-akid.crt", false),
        Some(7),
        "X509_V_ERR_CERT_SIGNATURE_FAILURE"
    );
    let eku = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "extendedKeyUsage", "-in"])
        .arg(pki.path("clients/no-client-auth.crt"))
        .output()
        .expect("openssl x509");
    let eku = String::from_utf8_lossy(&eku.stdout);
    assert!(
        eku.contains("E-mail Protection") && !eku.contains("Client Authentication"),
        "{eku}"
    );

    let valid = cert(&pki, "clients/valid.crt");
    let serial = valid
        .subject_name()
        .entries_by_nid(Nid::SERIALNUMBER)
        .next()
        .expect("serialNumber");
    assert_eq!(serial.data().to_string().expect("utf8"), "SI-DEV-1000");
    let server = cert(&pki, "server.crt");
    let names: Vec<String> = server
        .subject_alt_names()
        .expect("SAN")
        .iter()
        .filter_map(|n| n.dnsname().map(str::to_owned))
        .collect();
    assert!(
        names.contains(&"*.bankart.localhost".to_owned())
            && names.contains(&"rekono.localhost".to_owned())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(pki.path("server.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys are private to their owner");
    }
}

/// Days from `not_before` to `not_after`, as sslyze's Mozilla check counts a lifespan.
fn lifespan_days(cert: &X509) -> i32 {
    cert.not_before()
        .diff(cert.not_after())
        .expect("the dates compare")
        .days
}

#[test]
fn the_server_certificate_is_what_both_mozilla_profiles_take() {
    let pki = Pki::new();
    let server = cert(&pki, "server.crt");
    // Mozilla: "intermediate" at most 366 days, "modern" at most 90 (and its recommendation
    // for both); ECDSA on P-256 (both profiles' certificate_types and certificate_curves).
    let days = lifespan_days(&server);
    assert!(days <= 90, "the server certificate is valid {days} days");
    let key = server.public_key().expect("key");
    let curve = key.ec_key().expect("ECDSA").group().curve_name();
    assert_eq!(curve, Some(Nid::X9_62_PRIME256V1));
    // At least 64 random bits in the serial (testssl.sh flags fewer).
    let serial = server.serial_number().to_bn().expect("serial");
    assert!(serial.num_bits() > 64, "serial {serial}");
}

#[test]
fn a_server_certificate_about_to_expire_is_renewed_by_the_same_ca() {
    let pki = Pki::new();
    let names = prehod_devpki::dev_server_names("bankart.localhost");
    assert_eq!(
        prehod_devpki::ensure(pki.dir.path(), &names).expect("ensure"),
        prehod_devpki::Ensured::Kept,
        "a fresh one is kept"
    );
    let first = cert(&pki, "server.crt");
    // A server certificate that has expired: the expired client certificate stands in for it.
    let ca_before = std::fs::read(pki.path("ca.crt")).expect("ca");
    std::fs::copy(pki.path("clients/expired.crt"), pki.path("server.crt")).expect("copy");
    assert_eq!(
        prehod_devpki::ensure(pki.dir.path(), &names).expect("ensure"),
        prehod_devpki::Ensured::RenewedServerCertificate
    );
    assert_eq!(
        std::fs::read(pki.path("ca.crt")).expect("ca"),
        ca_before,
        "the dev CA a browser may trust is kept"
    );
    assert_eq!(
        verify(&pki, "server.crt", false),
        None,
        "issued by the dev CA"
    );
    let server = cert(&pki, "server.crt");
    assert!(lifespan_days(&server) <= 90);
    assert_ne!(
        server.serial_number().to_bn().expect("serial"),
        first.serial_number().to_bn().expect("serial"),
        "a serial of its own"
    );
    let names: Vec<String> = server
        .subject_alt_names()
        .expect("SAN")
        .iter()
        .filter_map(|n| n.dnsname().map(str::to_owned))
        .collect();
    assert!(
        names.contains(&"*.bankart.localhost".to_owned()),
        "{names:?}"
    );
    let key = openssl::pkey::PKey::private_key_from_pem(
        &std::fs::read(pki.path("server.key")).expect("key"),
    )
    .expect("PEM key");
    assert!(
        server.public_key().expect("public").public_eq(&key),
        "the new key belongs to the new certificate"
    );
    assert_eq!(
        prehod_devpki::ensure(pki.dir.path(), &names).expect("ensure"),
        prehod_devpki::Ensured::Kept
    );
}
