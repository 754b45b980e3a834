//! Secrets from files (`${file:PATH}`) in a running gateway: a reload (`SIGHUP`) reads them
//! again, so a session key rotates without a restart, and a reload refused because of a
//! secret never writes the secret to the log; with `reload.watch` a secret replaced the way a
//! Kubernetes Secret volume replaces it takes effect with no signal at all.

use std::path::Path;
use std::time::{Duration, Instant};

use prehod_test_support::login::*;
use prehod_test_support::{received_header, six_demo_portals, Gateway, Pki};

fn sighup(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
}

/// A metric's value on the gateway's admin listener (0 when absent).
fn metric(world: &World, series: &str) -> f64 {
    gateway_metric(&world.gw, series)
}

fn gateway_metric(gw: &Gateway, series: &str) -> f64 {
    prehod_test_support::metrics::value_or_zero(&gw.metrics(), series)
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
    let world = certificate_world(CertOptions::default()).await;
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
    let log = world.gw.all_log_lines();
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

/// The admin API's answer to `token` (no login sections: 400 when the token is right, 401 when
/// it is wrong).
fn admin_status(gw: &Gateway, token: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(gw.admin).expect("admin");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        s,
        "GET /sessions?user=x HTTP/1.1\r\nhost: admin\r\nauthorization: Bearer {token}\r\nconnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A directory laid out as the kubelet lays out a Secret volume: `NAME -> ..data/NAME`,
/// `..data -> VERSION/`, a new version swapped in by renaming a new `..data` link over the old.
struct SecretVolume {
    dir: tempfile::TempDir,
    version: u32,
}

impl SecretVolume {
    fn new(name: &str, content: &str) -> Self {
        let mut volume = Self {
            dir: tempfile::tempdir().expect("volume"),
            version: 0,
        };
        volume.publish(name, content);
        std::os::unix::fs::symlink(format!("..data/{name}"), volume.dir.path().join(name))
            .expect("link");
        volume
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A new version of the volume holding `content`, swapped in atomically.
    fn publish(&mut self, name: &str, content: &str) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        std::fs::create_dir(self.dir.path().join(&version)).expect("version dir");
        write_secret(&self.dir.path().join(&version).join(name), content);
        let next = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&version, &next).expect("link");
        std::fs::rename(&next, self.dir.path().join("..data")).expect("swap");
    }
}

fn wait_for_metric(gw: &Gateway, series: &str, value: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway_metric(gw, series) < value {
        assert!(Instant::now() < deadline, "{series} never reached {value}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_reload_watch_a_secret_replaced_in_its_volume_takes_effect_without_a_signal() {
    let (mut setup, _portals) = six_demo_portals().await;
    setup.top_extra = "reload:\n  watch: 100ms\n".to_owned();
    let pki = Pki::new();
    let gw = Gateway::start(&pki, &setup);
    let (ok, failed) = (
        "prehod_config_reloads_total{result=\"ok\"}",
        "prehod_config_reloads_total{result=\"failed\"}",
    );
    let first = "first-admin-token-0123456789abcdef0123456789";
    let second = "second-admin-token-0123456789abcdef012345678";
    let mut volume = SecretVolume::new("admin-token", first);

    // An edit of proxy.yaml itself is picked up: the admin token now comes from the volume.
    let config = gw.dir.path().join("proxy.yaml");
    let original = std::fs::read_to_string(&config).expect("config");
    let listen = format!("  listen: {}\n", gw.admin);
    assert!(original.contains(&listen));
    std::fs::write(
        &config,
        original.replace(
            &listen,
            &format!(
                "{listen}  api_token: ${{file:{}}}\n",
                volume.path("admin-token").display()
            ),
        ),
    )
    .expect("config");
    wait_for_metric(&gw, ok, 1.0);
    assert_eq!(admin_status(&gw, first), 400, "the token from the file");
    assert_eq!(admin_status(&gw, second), 401);

    // The Secret rotated: the kubelet swaps the volume's version; no signal is sent.
    volume.publish("admin-token", second);
    wait_for_metric(&gw, ok, 2.0);
    assert_eq!(admin_status(&gw, second), 400, "the rotated token");
    assert_eq!(
        admin_status(&gw, first),
        401,
        "the old token no longer works"
    );
    assert!(gw.log_lines().iter().any(|l| {
        l.contains("a file of the configuration changed: reloading") && l.contains("admin-token")
    }));

    // A bad version (too short a token) is refused once, not again at every look, and the
    // token in use stays; the next good version is taken.
    volume.publish("admin-token", "short");
    wait_for_metric(&gw, failed, 1.0);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        gateway_metric(&gw, failed),
        1.0,
        "refused once, not at every look"
    );
    assert_eq!(
        admin_status(&gw, second),
        400,
        "the previous configuration serves"
    );
    volume.publish("admin-token", first);
    wait_for_metric(&gw, ok, 3.0);
    assert_eq!(admin_status(&gw, first), 400);
    assert_eq!(gateway_metric(&gw, failed), 1.0);
}
