//! `tls.profile`: the gateway offers exactly what Mozilla's server-side TLS guidelines list
//! for "intermediate" (the default) and "modern" — tried with real handshakes, one group and
//! one cipher suite at a time, and checked by sslyze's Mozilla compliance check.
//!
//! sslyze (PyPI, pinned with hashes in tests/sslyze.requirements.txt) is installed by
//! tests/sslyze.sh when missing; a test that cannot install it fails, it never skips. The dev
//! CA is no public one, so sslyze is given it as a trust store (`--certinfo_ca_file`): its
//! check that the chain validates then runs against the dev CA, and every other check (versions,
//! suites, groups, key type and size, signature, lifespan, the vulnerabilities) as for a
//! public certificate.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use openssl::ssl::{SslConnector, SslConnectorBuilder, SslMethod, SslVersion};
use prehod_test_support::{host, six_demo_portals, Gateway, Pki};

/// Mozilla's guidelines 6.0, in OpenSSL's names: what the tests expect, written out apart
/// from the gateway's own table (`prehod_gateway::tls_profile`).
const TLS12_ECDSA: [&str; 3] = [
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
];
const TLS12_RSA: [&str; 3] = [
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-RSA-CHACHA20-POLY1305",
];
const TLS13: [&str; 3] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];
/// X25519, prime256v1 and secp384r1 (X25519MLKEM768 too, where OpenSSL has it: not 3.0).
const GROUPS: [&str; 3] = ["X25519", "P-256", "P-384"];

/// Every group a client of this OpenSSL can offer, for one at a time.
const CANDIDATE_GROUPS: [&str; 16] = [
    "X25519",
    "X448",
    "P-256",
    "P-384",
    "P-521",
    "ffdhe2048",
    "ffdhe3072",
    "ffdhe4096",
    "ffdhe6144",
    "ffdhe8192",
    "secp256k1",
    "secp224r1",
    "secp192r1",
    "brainpoolP256r1",
    "brainpoolP384r1",
    "brainpoolP512r1",
];

const RSA_HOST: &str = "rsa.bankart.localhost";

/// A gateway with `tls_extra` under `tls:` (e.g. `profile: modern`).
async fn gateway(pki: &Pki, tls_extra: &str) -> (Gateway, Vec<tokio::task::JoinHandle<()>>) {
    let (mut setup, portals) = six_demo_portals().await;
    setup.tls_extra = tls_extra.to_owned();
    (Gateway::start(pki, &setup), portals)
}

/// A handshake at exactly `version` for `sni`, by a client that would take anything
/// (security level 0) but what `narrow` leaves it; the negotiated cipher suite's name.
fn handshake(
    gw: &Gateway,
    sni: &str,
    version: SslVersion,
    narrow: impl FnOnce(&mut SslConnectorBuilder),
) -> Option<String> {
    let mut b = SslConnector::builder(SslMethod::tls()).expect("builder");
    b.set_ca_file(&gw.ca).expect("CA");
    b.set_security_level(0);
    b.set_min_proto_version(Some(version)).expect("min");
    b.set_max_proto_version(Some(version)).expect("max");
    narrow(&mut b);
    let tcp = std::net::TcpStream::connect(gw.https).expect("connect");
    let tls = b.build().connect(sni, tcp).ok()?;
    Some(tls.ssl().current_cipher()?.name().to_owned())
}

/// The groups of [`CANDIDATE_GROUPS`] a handshake for `sni` at `version` succeeds with,
/// alone. (In TLS 1.2 the client's groups also bound the curve of an ECDSA certificate: try
/// them there against an RSA one.)
fn accepted_groups(gw: &Gateway, sni: &str, version: SslVersion) -> BTreeSet<&'static str> {
    CANDIDATE_GROUPS
        .into_iter()
        .filter(|group| {
            handshake(gw, sni, version, |b| {
                b.set_groups_list(group)
                    .unwrap_or_else(|e| panic!("this OpenSSL has no group {group}: {e}"));
            })
            .is_some()
        })
        .collect()
}

/// Every TLS 1.2 cipher suite this OpenSSL knows, at any security level.
fn all_tls12_ciphers() -> Vec<String> {
    let out = Command::new("openssl")
        .args([
            "ciphers",
            "-tls1_2",
            "-s",
            "ALL:COMPLEMENTOFALL:@SECLEVEL=0",
        ])
        .output()
        .expect("the openssl command (deploy/setup.sh installs it)");
    assert!(out.status.success(), "openssl ciphers failed");
    let ciphers: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(':')
        .filter(|c| !c.starts_with("TLS_"))
        .map(str::to_owned)
        .collect();
    assert!(
        ciphers.len() > 40,
        "too few TLS 1.2 suites to try: {ciphers:?}"
    );
    ciphers
}

/// The TLS 1.2 suites a handshake for `sni` succeeds with, one at a time.
fn accepted_tls12_ciphers(gw: &Gateway, sni: &str, candidates: &[String]) -> BTreeSet<String> {
    candidates
        .iter()
        .filter(|cipher| {
            handshake(gw, sni, SslVersion::TLS1_2, |b| {
                b.set_cipher_list(cipher).expect("one cipher");
            })
            .is_some()
        })
        .cloned()
        .collect()
}

/// The TLS 1.3 suites a handshake succeeds with, one at a time (the five OpenSSL knows).
fn accepted_tls13_suites(gw: &Gateway) -> BTreeSet<&'static str> {
    TLS13
        .into_iter()
        .chain(["TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_8_SHA256"])
        .filter(|suite| {
            handshake(gw, &host("acq"), SslVersion::TLS1_3, |b| {
                b.set_ciphersuites(suite).expect("one suite");
            })
            .is_some()
        })
        .collect()
}

/// An RSA-2048 server certificate for [`RSA_HOST`] issued by the dev CA, written beside the
/// PKI: the RSA half of the TLS 1.2 suites needs one (the dev PKI's is ECDSA).
fn rsa_certificate(pki: &Pki) -> (PathBuf, PathBuf) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::extension::{ExtendedKeyUsage, SubjectAlternativeName};
    use openssl::x509::{X509Builder, X509NameBuilder, X509};

    let read = |name: &str| std::fs::read(pki.path(name)).expect("the dev PKI");
    let ca = X509::from_pem(&read("ca.crt")).expect("CA");
    let ca_key = PKey::private_key_from_pem(&read("ca.key")).expect("CA key");
    let key = PKey::from_rsa(Rsa::generate(2048).expect("RSA key")).expect("key");
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("CN", RSA_HOST).expect("CN");
    let name = name.build();
    let mut b = X509Builder::new().expect("builder");
    b.set_version(2).expect("v3");
    let serial = BigNum::from_u32(4242).and_then(|n| n.to_asn1_integer());
    b.set_serial_number(&serial.expect("serial"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(ca.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("key");
    b.set_not_before(&Asn1Time::days_from_now(0).expect("now"))
        .expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(30).expect("later"))
        .expect("not after");
    let san = SubjectAlternativeName::new()
        .dns(RSA_HOST)
        .build(&b.x509v3_context(Some(&ca), None))
        .expect("SAN");
    b.append_extension(san).expect("SAN");
    b.append_extension(ExtendedKeyUsage::new().server_auth().build().expect("EKU"))
        .expect("EKU");
    b.sign(&ca_key, MessageDigest::sha256()).expect("sign");
    let cert = pki.path("rsa-server.crt");
    let key_path = pki.path("rsa-server.key");
    std::fs::write(&cert, b.build().to_pem().expect("PEM")).expect("write");
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().expect("PEM")).expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    (cert, key_path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intermediate_offers_exactly_mozillas_versions_suites_and_groups() {
    let pki = Pki::new();
    let (cert, key) = rsa_certificate(&pki);
    // The default profile: no `profile:` key.
    let (gw, _portals) = gateway(
        &pki,
        &format!("  - cert: {}\n    key: {}\n", cert.display(), key.display()),
    )
    .await;

    // The attack: a client that offers only a group outside Mozilla's list (X448 and
    // secp521r1 are OpenSSL's defaults, and so are the finite-field groups in TLS 1.3).
    let groups: BTreeSet<&str> = GROUPS.into_iter().collect();
    assert_eq!(
        accepted_groups(&gw, &host("acq"), SslVersion::TLS1_3),
        groups,
        "TLS 1.3"
    );
    assert_eq!(
        accepted_groups(&gw, RSA_HOST, SslVersion::TLS1_2),
        groups,
        "TLS 1.2"
    );

    let candidates = all_tls12_ciphers();
    let ecdsa: BTreeSet<String> = TLS12_ECDSA.into_iter().map(str::to_owned).collect();
    let rsa: BTreeSet<String> = TLS12_RSA.into_iter().map(str::to_owned).collect();
    assert_eq!(
        accepted_tls12_ciphers(&gw, &host("acq"), &candidates),
        ecdsa,
        "TLS 1.2 with the ECDSA certificate"
    );
    assert_eq!(
        accepted_tls12_ciphers(&gw, RSA_HOST, &candidates),
        rsa,
        "TLS 1.2 with the RSA certificate"
    );
    assert_eq!(accepted_tls13_suites(&gw), TLS13.into_iter().collect());

    for old in [SslVersion::TLS1, SslVersion::TLS1_1] {
        assert_eq!(handshake(&gw, &host("acq"), old, |_| {}), None, "{old:?}");
    }

    // Mozilla's HSTS: at least two years (hsts_min_age 63072000), on what the portals serve
    // and on the gateway's own pages (here the 421 of an unknown host).
    for (portal, status) in [("acq", 200), ("unknown", 421)] {
        let resp = gw
            .client()
            .get(gw.url(portal, "/"))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), status);
        assert_eq!(
            resp.headers()
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some("max-age=63072000"),
            "{portal}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modern_offers_tls_1_3_only_with_mozillas_suites_and_groups() {
    let pki = Pki::new();
    let (gw, _portals) = gateway(&pki, "profile: modern\n").await;

    // The attack: a client that can speak no better than TLS 1.2.
    assert_eq!(
        handshake(&gw, &host("acq"), SslVersion::TLS1_2, |_| {}),
        None,
        "TLS 1.2 is refused under modern"
    );
    assert_eq!(
        accepted_groups(&gw, &host("acq"), SslVersion::TLS1_3),
        GROUPS.into_iter().collect()
    );
    assert_eq!(accepted_tls13_suites(&gw), TLS13.into_iter().collect());
    // And it serves.
    let resp = gw
        .client()
        .get(gw.url("acq", "/"))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
}

/// `bash tests/sslyze.sh`: the path of an installed sslyze, or the test fails saying why.
fn sslyze() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("tests/sslyze.sh"))
        .output()
        .expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tests/sslyze.sh could not install sslyze (this test needs PyPI, or sslyze already in \
         its venv):\n{stderr}"
    );
    let path = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(PathBuf::from)
        .expect("tests/sslyze.sh prints the path");
    assert!(path.is_file(), "{}", path.display());
    path
}

/// sslyze's Mozilla check of `gw` for `profile`: its exit status, what it printed, and its
/// JSON report.
fn mozilla_check(gw: &Gateway, profile: &str) -> (bool, String, serde_json::Value) {
    let sslyze = sslyze();
    let report = gw.dir.path().join(format!("sslyze-{profile}.json"));
    // HOST:PORT{IP}: the SNI of a portal, the gateway's loopback address.
    let target = format!("{}:{}{{{}}}", host("acq"), gw.https.port(), gw.https.ip());
    let out = Command::new(&sslyze)
        .arg(format!("--mozilla_config={profile}"))
        .arg(format!("--certinfo_ca_file={}", gw.ca.display()))
        .arg(format!("--json_out={}", report.display()))
        .arg(&target)
        .output()
        .expect("run sslyze");
    let printed =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let json = std::fs::read(&report)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| panic!("sslyze wrote no JSON report:\n{printed}"));
    (out.status.success(), printed, json)
}

/// The report's scan of the one server: completed, with every command sslyze's Mozilla check
/// needs (so that a compliant verdict is not one of an empty scan).
fn assert_scanned(json: &serde_json::Value, printed: &str) -> serde_json::Value {
    let result = &json["server_scan_results"][0];
    assert_eq!(result["scan_status"], "COMPLETED", "{printed}");
    let scan = &result["scan_result"];
    for command in [
        "tls_1_2_cipher_suites",
        "tls_1_3_cipher_suites",
        "elliptic_curves",
        "certificate_info",
    ] {
        assert_eq!(scan[command]["status"], "COMPLETED", "{command}\n{printed}");
    }
    scan.clone()
}

/// The names under `scan[command].result[list][*]` (`path` leads from an item to its name).
fn names(scan: &serde_json::Value, command: &str, list: &str, path: &[&str]) -> BTreeSet<String> {
    scan[command]["result"][list]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    path.iter()
                        .fold(item, |v, key| &v[*key])
                        .as_str()
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn accepted_suites(scan: &serde_json::Value, command: &str) -> BTreeSet<String> {
    names(
        scan,
        command,
        "accepted_cipher_suites",
        &["cipher_suite", "name"],
    )
}

/// The groups sslyze found, in its names.
fn sslyze_groups(scan: &serde_json::Value) -> BTreeSet<String> {
    names(scan, "elliptic_curves", "supported_curves", &["name"])
}

/// sslyze's verdict line for one server.
const COMPLIANT: &str = ": OK - Compliant.";

/// sslyze's Mozilla check for `profile` (`intermediate`, `modern`) on a gateway whose `tls:`
/// has `tls_extra`: asserts that the scan completed and found the gateway compliant, and
/// returns what sslyze printed and its scan result.
async fn mozilla_compliant(tls_extra: &str, profile: &str) -> (String, serde_json::Value) {
    let pki = Pki::new();
    let (gw, _portals) = gateway(&pki, tls_extra).await;
    let (compliant, printed, json) = mozilla_check(&gw, profile);
    let scan = assert_scanned(&json, &printed);
    assert!(
        compliant
            && printed.contains(&format!("Mozilla's \"{profile}\" configuration"))
            && printed.contains(COMPLIANT),
        "{printed}"
    );
    (printed, scan)
}

fn strings(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslyze_finds_the_default_profile_compliant_with_mozilla_intermediate() {
    let (printed, scan) = mozilla_compliant("", "intermediate").await;
    // What sslyze saw, so that "compliant" is not the verdict on an empty scan.
    assert_eq!(
        accepted_suites(&scan, "tls_1_2_cipher_suites"),
        strings(&[
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ]),
        "the ECDHE-ECDSA half of Mozilla's list (the dev certificate is ECDSA)\n{printed}"
    );
    assert_eq!(
        accepted_suites(&scan, "tls_1_3_cipher_suites"),
        strings(&TLS13)
    );
    assert_eq!(
        sslyze_groups(&scan),
        strings(&["X25519", "secp256r1", "secp384r1"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslyze_finds_the_modern_profile_compliant_with_mozilla_modern() {
    let (printed, scan) = mozilla_compliant("profile: modern\n", "modern").await;
    assert_eq!(
        scan["tls_1_2_cipher_suites"]["result"]["is_tls_version_supported"], false,
        "{printed}"
    );
    assert_eq!(
        accepted_suites(&scan, "tls_1_3_cipher_suites"),
        strings(&TLS13)
    );
    assert_eq!(
        sslyze_groups(&scan),
        strings(&["X25519", "secp256r1", "secp384r1"])
    );
}
