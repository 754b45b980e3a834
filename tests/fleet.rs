//! Running as a fleet: reload without restart (SIGHUP and `prehod reload`) and the binary
//! upgrade (listening sockets handed to a new process), each under a bounded loopback load
//! that must see no failed request.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// A bounded load: `workers` clients, each sending one request at a time (with a short pause)
/// to `acq`, until stopped. Every answer that is not a 200 from a demo portal, and every
/// transport error, is a failure.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<std::sync::atomic::AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(gw: &Gateway, workers: usize, keep_alive: bool) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let url = gw.url("acq", "/load");
        let tasks = (0..workers)
            .map(|_| {
                let mut builder = gw.client_builder();
                if !keep_alive {
                    builder = builder.pool_max_idle_per_host(0);
                }
                let client = builder.build().expect("client");
                let (stop, ok, failures, url) =
                    (stop.clone(), ok.clone(), failures.clone(), url.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let result = client
                            .get(&url)
                            .header("accept", "application/json")
                            .send()
                            .await;
                        match result {
                            Ok(r) if r.status() == 200 => match r.text().await {
                                Ok(body) if body.contains("\"portal\"") => {
                                    ok.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(body) => failures
                                    .lock()
                                    .expect("lock")
                                    .push(format!("200 without a portal: {body}")),
                                Err(e) => {
                                    failures.lock().expect("lock").push(format!("body: {e:?}"))
                                }
                            },
                            Ok(r) => failures
                                .lock()
                                .expect("lock")
                                .push(format!("status {}", r.status())),
                            Err(e) => failures.lock().expect("lock").push(format!("{e:?}")),
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                })
            })
            .collect();
        Self {
            stop,
            ok,
            failures,
            tasks,
        }
    }

    fn served(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the load; returns how many requests succeeded and every failure.
    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("load task");
        }
        let failures = self.failures.lock().expect("lock").clone();
        (self.ok.load(Ordering::Relaxed), failures)
    }
}

/// A metric's value on the gateway's admin listener (0 when absent).
fn metric(gw: &Gateway, series: &str) -> f64 {
    gw.metrics()
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

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `urls:` line of `portal` in a harness-written proxy.yaml.
fn urls_line(yaml: &str, portal: &str) -> String {
    let start = yaml
        .find(&format!("\n  {portal}:\n"))
        .expect("the portal in the config");
    yaml[start..]
        .lines()
        .find(|l| l.trim_start().starts_with("urls:"))
        .expect("its urls line")
        .to_owned()
}

/// `acq`'s upstream set to `urls` (a whole `urls: […]` line).
fn with_acq_urls(original: &str, urls: &str) -> String {
    let acq = urls_line(original, "acq");
    let start = original.find("\n  acq:\n").expect("acq");
    let at = start + original[start..].find(&acq).expect("acq urls");
    format!("{}{urls}{}", &original[..at], &original[at + acq.len()..])
}

async fn portal_of_acq(gw: &Gateway) -> String {
    let body: serde_json::Value = gw
        .client()
        .get(gw.url("acq", "/which"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("acq answers")
        .json()
        .await
        .expect("json");
    body["portal"].as_str().unwrap_or_default().to_owned()
}

fn sighup(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
}

fn prehod_reload(pid_file: &Path, config: Option<&Path>) -> std::process::Output {
    let mut cmd = std::process::Command::new(prehod_bin());
    cmd.args(["reload", "--pid-file"]).arg(pid_file);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.output().expect("prehod reload runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_fail_no_request_and_apply_their_change() {
    let (setup, _portals) = six_demo_portals().await;
    let pki = Pki::new();
    let gw = Gateway::start(&pki, &setup);
    gw.wait_ready();
    let config = gw.dir.path().join("proxy.yaml");
    let original = std::fs::read_to_string(&config).expect("config");
    let bips_urls = urls_line(&original, "bips");
    let to_bips = with_acq_urls(&original, &bips_urls);
    let pid_file = gw.dir.path().join("prehod.pid");
    std::fs::write(&pid_file, gw.pid().to_string()).expect("pid file");
    assert_eq!(portal_of_acq(&gw).await, "acq");

    let load = Load::start(&gw, 4, true);
    wait_for("the load to run", Duration::from_secs(10), || {
        load.served() > 20
    });
    let mut ok = 0.0;
    for i in 1..=20 {
        let before = load.served();
        if i == 10 {
            // A bad file: `prehod reload --config` refuses it without signalling, and the
            // gateway itself, signalled anyway, refuses it too and keeps serving.
            std::fs::write(&config, format!("{original}\nthis_key_does_not_exist: 1\n"))
                .expect("bad config");
            let out = prehod_reload(&pid_file, Some(&config));
            assert_eq!(out.status.code(), Some(64), "prehod reload checks first");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("this_key_does_not_exist"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            sighup(gw.pid());
            wait_for("the refused reload", Duration::from_secs(10), || {
                metric(&gw, "prehod_config_reloads_total{result=\"failed\"}") == 1.0
            });
            assert!(
                gw.log_lines()
                    .iter()
                    .any(|l| l.contains("configuration reload refused")
                        && l.contains("this_key_does_not_exist")),
                "the refusal names the problem in the log"
            );
            // The previous configuration (acq → bips after reload 9) still serves.
            assert_eq!(portal_of_acq(&gw).await, "bips");
            continue;
        }
        // Odd reloads send acq to the bips demo portal, even ones back to acq's own.
        let next = if i % 2 == 1 { &to_bips } else { &original };
        std::fs::write(&config, next).expect("config");
        if i % 2 == 0 {
            let out = prehod_reload(&pid_file, Some(&config));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            sighup(gw.pid());
        }
        ok += 1.0;
        wait_for("the reload", Duration::from_secs(10), || {
            metric(&gw, "prehod_config_reloads_total{result=\"ok\"}") == ok
        });
        let expected = if i % 2 == 1 { "bips" } else { "acq" };
        assert_eq!(portal_of_acq(&gw).await, expected, "reload {i} took effect");
        // Requests went on meanwhile.
        wait_for("requests after the reload", Duration::from_secs(10), || {
            load.served() > before
        });
    }
    let (served, failures) = load.finish().await;
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(served > 100, "only {served} requests served");
    assert_eq!(
        metric(&gw, "prehod_config_reloads_total{result=\"ok\"}"),
        19.0
    );
    assert!(metric(&gw, "prehod_config_last_reload_success_timestamp_seconds") > 1.7e9);
    // The process lived through it all.
    assert!(http_get(gw.admin, "/healthz").is_some_and(|(s, _)| s == 200));
}

/// A process started by the test, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exited(pid: u32) -> bool {
    // A child that exited and was not waited for is a zombie: state Z.
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("State:") && (l.contains('Z') || l.contains('X')))
        })
        .unwrap_or(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_upgrade_under_load_fails_no_request() {
    let (mut setup, _portals) = six_demo_portals().await;
    let sockets = tempfile::tempdir().expect("dir");
    let upgrade_socket = sockets.path().join("upgrade.sock");
    let pid_file = sockets.path().join("prehod.pid");
    setup.run_args = vec![
        "--upgrade-socket".into(),
        upgrade_socket.display().to_string(),
        "--pid-file".into(),
        pid_file.display().to_string(),
    ];
    let pki = Pki::new();
    let gw = Gateway::start(&pki, &setup);
    gw.wait_ready();
    let old_pid = gw.pid();
    assert_eq!(
        std::fs::read_to_string(&pid_file).expect("pid file").trim(),
        old_pid.to_string()
    );

    // New connections for every request as well as kept-alive ones.
    let fresh = Load::start(&gw, 2, false);
    let kept = Load::start(&gw, 2, true);
    wait_for("the load to run", Duration::from_secs(10), || {
        fresh.served() > 10 && kept.served() > 10
    });

    let log = gw.dir.path().join("upgraded.log");
    let new = Child(
        std::process::Command::new(prehod_bin())
            .args(["run", "--upgrade", "--config"])
            .arg(gw.dir.path().join("proxy.yaml"))
            .arg("--upgrade-socket")
            .arg(&upgrade_socket)
            .arg("--pid-file")
            .arg(&pid_file)
            .env("PREHOD_LOG", "info")
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start the new prehod"),
    );
    // The new process waits for the sockets on the upgrade socket; then the old one is told
    // to hand them over (SIGQUIT), keeps serving a few seconds, drains and exits.
    wait_for(
        "the new process's upgrade socket",
        Duration::from_secs(20),
        || upgrade_socket.exists(),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old_pid as i32),
        nix::sys::signal::Signal::SIGQUIT,
    )
    .expect("SIGQUIT");
    wait_for(
        "the new process's pid file",
        Duration::from_secs(20),
        || std::fs::read_to_string(&pid_file).is_ok_and(|p| p.trim() == new.0.id().to_string()),
    );
    wait_for("the old process to exit", Duration::from_secs(30), || {
        exited(old_pid)
    });
    assert!(!exited(new.0.id()), "the new process runs");
    let (before_fresh, before_kept) = (fresh.served(), kept.served());
    wait_for(
        "requests served by the new process",
        Duration::from_secs(10),
        || fresh.served() > before_fresh + 20 && kept.served() > before_kept + 20,
    );
    let (served_fresh, failed_fresh) = fresh.finish().await;
    let (served_kept, failed_kept) = kept.finish().await;
    assert!(
        failed_fresh.is_empty() && failed_kept.is_empty(),
        "failed requests: {failed_fresh:?} {failed_kept:?}"
    );
    assert!(served_fresh + served_kept > 100);
    // The admin listener came along too, and SIGHUP now reloads the new process.
    assert!(http_get(gw.admin, "/healthz").is_some_and(|(s, _)| s == 200));
    let out = prehod_reload(&pid_file, None);
    assert!(out.status.success());
    wait_for(
        "a reload of the new process",
        Duration::from_secs(10),
        || {
            http_get(gw.admin, "/metrics")
                .is_some_and(|(_, m)| m.contains("prehod_config_reloads_total{result=\"ok\"} 1"))
        },
    );
    assert!(std::fs::read_to_string(&log)
        .expect("new log")
        .contains("prehod started"));
}
