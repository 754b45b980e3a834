//! Identity providers by configuration: `providers:` as a list, today's single `oidc:` as one
//! provider `rekono`, and every mistake in a list named with FILE:LINE:COL at once.
// Tests index into their own fixtures, where a panic is the failure report.
#![allow(clippy::indexing_slicing)]

mod common;

use std::path::Path;

use common::{assert_refused, pki};
use prehod_config::{Config, LoginMethod};

const OIDC: &str = "oidc:\n  issuer: https://rekono.localhost:8444/openid-connect-server-webapp\n  client_id: prehod\n  client_secret: s3cret\n";

const TWO: &str = "providers:
  - id: rekono
    issuer: https://rekono.localhost:8444/openid-connect-server-webapp
    client_id: prehod
    client_secret: s3cret
  - id: bankart-staff
    button: {sl: Prijava za zaposlene, en: Staff login}
    issuer: https://staff.bankart.localhost:8446/openid-connect-server-webapp
    client_id: prehod
    client_secret: s3cret2
";

/// A configuration with the login sections: `providers` (an `oidc:` or `providers:` section)
/// and two portals with the given extra lines.
fn config(pki: &Path, providers: &str, acq: &str, b2b: &str) -> String {
    let key = std::fs::read_to_string(pki.join("session.key")).expect("session key");
    format!(
        "listen:\n  https: 127.0.0.1:8443\nadmin:\n  listen: 127.0.0.1:9090\ntls:\n  certificates:\n    - cert: {dir}/server.crt\n      key: {dir}/server.key\n\
login:\n  host: login.bankart.localhost\nsession:\n  keys: [\"{key}\"]\n{providers}\
assertion:\n  key: {dir}/assertion.key\nportals:\n  acq:\n    host: acq.bankart.localhost\n\
{acq}    upstream:\n      urls: [\"http://10.0.0.1:8080\"]\n  b2b:\n    host: b2b.bankart.localhost\n\
{b2b}    upstream:\n      urls: [\"http://10.0.0.2:8080\"]\n",
        dir = pki.display(),
        key = key.trim(),
    )
}

fn load(text: &str) -> Result<Config, prehod_config::ConfigError> {
    Config::from_text(Path::new("/etc/prehod/proxy.yaml"), text, |_| None)
}

#[test]
fn todays_single_oidc_section_is_one_provider_rekono_with_todays_user_ids() {
    let pki = pki();
    let config = load(&config(pki.path(), OIDC, "", "    methods: [rekono]\n")).expect("valid");
    let auth = config.auth.expect("login");
    assert_eq!(auth.providers.len(), 1);
    let rekono = &auth.providers[0];
    assert_eq!(rekono.id, "rekono");
    assert_eq!(rekono.button, None, "the built-in Rekono texts");
    assert_eq!(rekono.user_id("abc"), "abc", "Rekono ids stay as they were");
    assert_eq!(
        config.portals[0].methods,
        vec![LoginMethod::rekono(), LoginMethod::Certificate]
    );
    assert_eq!(config.portals[1].methods, vec![LoginMethod::rekono()]);
}

#[test]
fn a_provider_list_gives_each_its_id_button_and_namespaced_user_ids() {
    let pki = pki();
    let text = config(
        pki.path(),
        TWO,
        "",
        "    methods: [bankart-staff, certificate]\n",
    );
    let config = load(&text).expect("valid");
    let auth = config.auth.expect("login");
    let ids: Vec<&str> = auth.providers.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["rekono", "bankart-staff"]);
    let staff = &auth.providers[1];
    assert_eq!(
        staff.button,
        Some(("Prijava za zaposlene".into(), "Staff login".into()))
    );
    assert_eq!(staff.user_id("abc"), "bankart-staff:abc");
    assert_ne!(staff.user_id("abc"), auth.providers[0].user_id("abc"));
    // A portal without `methods` allows the first provider (and certificates), not a
    // provider added later: that one reaches only the portals that name it.
    assert!(config.portals[0].allows_provider("rekono"));
    assert!(!config.portals[0].allows_provider("bankart-staff"));
    assert!(config.portals[1].allows_provider("bankart-staff"));
    assert!(!config.portals[1].allows_provider("rekono"));
}

#[test]
fn every_mistake_in_a_provider_list_is_named_with_its_place() {
    let pki = pki();
    let providers = "providers:
  - id: rekono
    issuer: https://rekono.localhost:8444/openid-connect-server-webapp
    client_id: prehod
    client_secret: s3cret
  - id: Bankart_Staff
    button: {sl: Zaposleni, en: Staff}
    issuer: https://staff.bankart.localhost:8446/x
    client_id: prehod
    client_secret: s
  - id: rekono
    issuer: https://rekono2.localhost/x
    client_id: prehod
    client_secret: s
  - id: eid
    issuer: https://rekono.localhost:8444/openid-connect-server-webapp
    client_id: prehod
    client_secret: s
  - id: nobutton
    issuer: https://other.localhost/x
    client_id: prehod
    client_secret: s
  - id: noissuer
    button: {sl: a, en: b}
    client_id: prehod
    client_secret: s
  - issuer: https://noid.localhost/x
    client_id: prehod
    client_secret: s
";
    let text = config(
        pki.path(),
        providers,
        "    methods: [rekono, tax-office]\n",
        "",
    );
    let shown = assert_refused(
        load(&text),
        &[
            "/etc/prehod/proxy.yaml:18:5: providers[1].id: \"Bankart_Staff\" is not a provider id",
            "/etc/prehod/proxy.yaml:23:5: providers[2].id: \"rekono\" is already the id of providers[0]",
            "/etc/prehod/proxy.yaml:29:5: providers[3].client_id: providers[0] already is issuer",
            "/etc/prehod/proxy.yaml:31:7: providers[4].button: provider \"nobutton\" needs button",
            "/etc/prehod/proxy.yaml:35:7: providers[5]: required key `issuer` is missing",
            "/etc/prehod/proxy.yaml:39:11: providers[6]: required key `id` is missing",
            "portals.acq.methods[1]: \"tax-office\" is not certificate nor the id of a provider",
        ],
    );
    assert!(
        !shown.contains("providers[4].id: "),
        "a good id is no problem: {shown}"
    );
}

#[test]
fn oidc_and_providers_together_are_refused_and_certificate_is_no_provider_id() {
    let pki = pki();
    let both = format!("{OIDC}{TWO}");
    assert_refused(
        load(&config(pki.path(), &both, "", "")),
        &["providers: oidc and providers both name the OpenID providers"],
    );
    let certificate = TWO.replace("id: bankart-staff", "id: certificate");
    assert_refused(
        load(&config(pki.path(), &certificate, "", "")),
        &["providers[1].id: \"certificate\" names certificate login"],
    );
}

#[test]
fn a_provider_whose_user_ids_could_meet_a_certificate_anchors_is_refused() {
    let pki = pki();
    let dir = pki.path().display();
    let certificates = format!(
        "certificate_login:\n  host: certlogin.bankart.localhost\n  anchors:\n    - name: staff CA\n      ca: {dir}/ca.crt\n      user_id_prefix: \"bankart-staff:\"\n"
    );
    let text = config(pki.path(), &format!("{TWO}{certificates}"), "", "");
    assert_refused(
        load(&text),
        &["providers[1].id: its user ids (bankart-staff:…) could equal those of certificate anchor \"staff CA\""],
    );
    // `allowed_users` may name a provider's ids (ID:SUB) as it names certificate ids.
    let text = config(
        pki.path(),
        TWO,
        "    allowed_users: [\"bankart-staff:u1\", \"tax:u2\"]\n",
        "",
    );
    let shown = assert_refused(load(&text), &["portals.acq.allowed_users[1]"]);
    assert!(!shown.contains("allowed_users[0]"), "{shown}");
}

#[test]
fn a_missing_key_or_anchor_list_is_named_with_the_other_problems_of_its_section() {
    let pki = pki();
    let certificates =
        "certificate_login:\n  host: certlogin.bankart.localhost\n  level: 25\n".to_owned();
    let text = config(pki.path(), &format!("{OIDC}{certificates}"), "", "");
    let key = std::fs::read_to_string(pki.path().join("session.key")).expect("session key");
    let text = text.replace(
        &format!("  keys: [\"{}\"]\n", key.trim()),
        "  idle_timeout: soon\n",
    );
    assert!(!text.contains("keys:"), "{text}");
    let shown = assert_refused(
        load(&text),
        &[
            "session.keys: at least one key is needed",
            "session.idle_timeout",
            "certificate_login.anchors: at least one trust anchor is needed",
            "certificate_login.level: 25 is not 10, 20 or 30",
        ],
    );
    assert!(!shown.contains("is missing"), "{shown}");
}
