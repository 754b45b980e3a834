//! Secrets from files (`${file:PATH}`) in a running gateway: a reload (`SIGHUP`) reads them
//! again, so a session key rotates without a restart, and a reload refused because of a
//! secret never writes the secret to the log.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::login::*;
use common::received_header;

fn sighup(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
}

/// A metric's value on the gateway's admin listener (0 when absent).
fn metric(world: &World, series: &str) -> f64 {
    world
        .gw
        .metrics()
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Sends `SIGHUP` and waits until the reload counter `result` reaches `count`.
fn reload(world: &World, result: &str, count: f64) {
    sighup(world.gw.pid());
    let series = format!("prehod_config_reloads_total{{result=\"{result}\"}}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(world, &series) < count {
        assert!(Instant::now() < deadline, "no reload {result} #{count}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replaces the secret file at `path` as a Kubernetes Secret volume or a secret manager does:
/// a new private file renamed over the old one.
fn write_secret(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, format!("{content}\n")).expect("write secret");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    std::fs::rename(&tmp, path).expect("rename");
}

fn new_key() -> String {
    use base64::Engine;
    let mut key = [0u8; 32];
    openssl::rand::rand_bytes(&mut key).expect("random key");
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Whether `browser`'s session on `bws` opens: the portal receives its user.
async fn session_opens(world: &World, browser: &mut Browser) -> bool {
    let page = browser.api(&portal_url(world, "bws", "/home")).await;
    page.status == 200
        && received_header(&page.json(), "x-auth-user") == ["prehod-dev-ca:SI-DEV-1000"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_key_file_rotated_then_reloaded_seals_new_cookies_and_still_opens_old_ones() {
    let world = world(Options {
        certificates: Some(CertOptions::default()),
        ..Options::default()
    })
    .await;
    let config = world.gw.dir.path().join("proxy.yaml");
    let original = std::fs::read_to_string(&config).expect("config");
    let old_key = std::fs::read_to_string(world.pki.path("session.key")).expect("key");
    let old_key = old_key.trim();
    let secrets = world.gw.dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("secrets dir");
    let (current, previous) = (
        secrets.join("session-current"),
        secrets.join("session-previous"),
    );
    write_secret(&current, old_key);
    write_secret(&previous, old_key);
    let client_secret = secrets.join("oidc-client-secret");
    write_secret(&client_secret, CLIENT_SECRET);
    let from_files = original
        .replace(
            &format!("keys: [\"{old_key}\"]"),
            "keys: [\"${file:secrets/session-current}\", \"${file:secrets/session-previous}\"]",
        )
        .replace(
            &format!("client_secret: {CLIENT_SECRET}"),
            "client_secret: ${file:secrets/oidc-client-secret}",
        );
    assert_eq!(from_files.matches("${file:").count(), 3, "{from_files}");
    std::fs::write(&config, &from_files).expect("config");
    reload(&world, "ok", 1.0);

    // A session sealed with the old key.
    let mut before = Browser::with_certificate(&world, "valid");
    before.certificate_login_follow(&world, "bws").await;
    assert!(session_opens(&world, &mut before).await);

    // Rotation: the new key seals, the old one still opens. Only the files change.
    let new = new_key();
    write_secret(&current, &new);
    reload(&world, "ok", 2.0);
    assert!(
        session_opens(&world, &mut before).await,
        "a cookie sealed with the old key still opens"
    );
    let mut after = Browser::with_certificate(&world, "valid");
    after.certificate_login_follow(&world, "bws").await;
    assert!(session_opens(&world, &mut after).await);

    // A reload refused because of a secret: the OIDC client secret's file given as the issuer
    // by mistake. The problem is logged without the secret; the configuration in use stays.
    std::fs::write(
        &config,
        from_files.replace(
            &format!("issuer: {}", world.sim.issuer()),
            "issuer: ${file:secrets/oidc-client-secret}",
        ),
    )
    .expect("config");
    reload(&world, "failed", 1.0);
    let log = world.gw.log_lines();
    assert!(
        log.iter()
            .any(|l| l.contains("configuration reload refused") && l.contains("oidc.issuer")),
        "the refusal names the key"
    );
    assert!(
        !log.iter().any(|l| l.contains(CLIENT_SECRET)),
        "the log holds the client secret: {log:?}"
    );
    assert!(session_opens(&world, &mut after).await);
    std::fs::write(&config, &from_files).expect("config");

    // The old key retired: the cookie sealed after the rotation opens, the one from before
    // does not — so the new one was sealed with the new key.
    write_secret(&previous, &new);
    reload(&world, "ok", 3.0);
    assert!(
        session_opens(&world, &mut after).await,
        "sealed with the new key"
    );
    assert!(
        !session_opens(&world, &mut before).await,
        "sealed with the retired key"
    );
}
