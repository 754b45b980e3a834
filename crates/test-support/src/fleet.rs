//! What the fleet tests share: a second gateway replica on the same proxy.yaml, child
//! processes that end with the test, a bounded load on `acq`, `prehod reload`, and the
//! questions asked of a replica (a cookie's status, the state store's view on `/readyz`,
//! whether its process has exited).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::load::Load;
use crate::{free_port, host, http_get, prehod_bin, wait_for, Gateway, Pki};

/// A bounded load: `workers` clients, each sending one request at a time (with a short pause)
/// to `acq`, until stopped; a new connection for every request unless `keep_alive`. Every
/// answer that is not a 200 from a demo portal, and every transport error, is a failure.
pub fn load_on_acq(gw: &Gateway, workers: usize, keep_alive: bool) -> Load {
    let url = gw.url("acq", "/load");
    let workers = (0..workers).map(|_| {
        let mut builder = gw.client_builder();
        if !keep_alive {
            builder = builder.pool_max_idle_per_host(0);
        }
        let client = builder.build().expect("client");
        let url = url.clone();
        move || {
            let result = client.get(&url).header("accept", "application/json").send();
            async move {
                match result.await {
                    Ok(r) if r.status() == 200 => match r.text().await {
                        Ok(body) if body.contains("\"portal\"") => Ok(()),
                        Ok(body) => Err(format!("200 without a portal: {body}")),
                        Err(e) => Err(format!("body: {e:?}")),
                    },
                    Ok(r) => Err(format!("status {}", r.status())),
                    Err(e) => Err(format!("{e:?}")),
                }
            }
        }
    });
    Load::start(workers, Duration::from_millis(5))
}

/// `prehod reload --pid-file pid_file [--config config]`, run to its end.
pub fn prehod_reload(pid_file: &Path, config: Option<&Path>) -> std::process::Output {
    let mut cmd = std::process::Command::new(prehod_bin());
    cmd.args(["reload", "--pid-file"]).arg(pid_file);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.output().expect("prehod reload runs")
}

/// Whether process `pid` has exited (gone, or a zombie not yet reaped).
pub fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("State:") && (l.contains('Z') || l.contains('X')))
        })
        .unwrap_or(true)
}

/// A process started by the test, killed when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A second replica of `world`'s gateway: the same proxy.yaml (same keys, same Rekono
/// client, same shared state) on ports of its own.
pub struct Replica {
    pub _child: Child,
    pub https: std::net::SocketAddr,
    pub admin: std::net::SocketAddr,
    pub _dir: tempfile::TempDir,
}

impl Replica {
    pub fn of(gw: &Gateway) -> Self {
        let yaml = std::fs::read_to_string(gw.dir.path().join("proxy.yaml")).expect("config");
        let https: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let admin: std::net::SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let yaml = yaml
            .replace(&format!("https: {}", gw.https), &format!("https: {https}"))
            .replace(
                &format!("listen: {}", gw.admin),
                &format!("listen: {admin}"),
            );
        let dir = tempfile::tempdir().expect("dir");
        let config = dir.path().join("proxy.yaml");
        std::fs::write(&config, yaml).expect("config");
        let child = Child(
            std::process::Command::new(prehod_bin())
                .args(["run", "--config"])
                .arg(&config)
                .env("PREHOD_LOG", "info")
                .stdout(std::fs::File::create(dir.path().join("stdout.log")).expect("log"))
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .expect("start replica B"),
        );
        wait_for("replica B to be ready", Duration::from_secs(20), || {
            http_get(admin, "/readyz").is_some_and(|(s, _)| s == 200)
        });
        Self {
            _child: child,
            https,
            admin,
            _dir: dir,
        }
    }
}

/// The portal session cookie `browser` holds for bips.
pub fn bips_session(browser: &crate::login::Browser) -> (String, String) {
    let host = host("bips");
    let name = browser
        .cookie_names()
        .into_iter()
        .find(|n| n.ends_with("_session") && browser.cookie_at(&host, n).is_some())
        .expect("a session cookie for bips");
    let value = browser.cookie_at(&host, &name).expect("value");
    (name, value)
}

/// A client for bips at `https` (a replica): the test PKI's CA, no redirect followed, 10 s.
pub fn bips_client(pki: &Pki, https: std::net::SocketAddr) -> reqwest::Client {
    let ca = std::fs::read(pki.path("ca.crt")).expect("ca");
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("ca"))
        .resolve(&host("bips"), https)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// What `https` (a replica) answers an API request to bips with `cookie`: 200 or 401.
pub async fn status_with(pki: &Pki, https: std::net::SocketAddr, cookie: &(String, String)) -> u16 {
    bips_client(pki, https)
        .get(format!("https://{}:{}/", host("bips"), https.port()))
        .header("accept", "application/json")
        .header("cookie", format!("{}={}", cookie.0, cookie.1))
        .send()
        .await
        .expect("the replica answers")
        .status()
        .as_u16()
}

/// Polls until `https` answers `cookie` with `status`; returns how long that took.
pub async fn until_status(
    pki: &Pki,
    https: std::net::SocketAddr,
    cookie: &(String, String),
    status: u16,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        if status_with(pki, https, cookie).await == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{https} did not answer {status} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn readyz_store(admin: std::net::SocketAddr) -> serde_json::Value {
    let (status, body) = http_get(admin, "/readyz").expect("readyz");
    assert_eq!(status, 200, "a replica without Redis stays ready: {body}");
    serde_json::from_str::<serde_json::Value>(&body).expect("json")["state_store"].clone()
}

pub fn store_up_metric(admin: std::net::SocketAddr) -> Option<f64> {
    let (_, m) = http_get(admin, "/metrics").expect("metrics");
    m.lines().find_map(|l| {
        l.strip_prefix("prehod_state_store_up ")
            .and_then(|v| v.trim().parse().ok())
    })
}
