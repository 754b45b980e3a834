//! A running gateway: the `prehod` binary started on free ports with a configuration written
//! from a [`Setup`], its bind proved (health polled, then a real TLS handshake), killed when
//! dropped; and the demo-portal upstreams it is put in front of.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod};

use crate::http::{http_get, sha256_hex};
use crate::{free_port, host, prehod_bin, Pki, PORTALS};

/// Upstream addresses for each portal and any per-portal YAML to add.
#[derive(Default)]
pub struct Setup {
    pub upstreams: Vec<(String, Vec<String>)>,
    /// Extra YAML lines inside each portal (indented by the harness).
    pub portal_extra: Vec<(String, String)>,
    /// Extra top-level YAML.
    pub top_extra: String,
    /// Extra lines under `server:` (indented by the harness).
    pub server_extra: String,
    /// Extra lines under `tls:`, right after the PKI's certificate (indented by the harness):
    /// more `- cert:` items first, then other keys such as `profile:`.
    pub tls_extra: String,
    pub http_redirect: bool,
    /// The login sections (login, session, oidc, assertion); `None`: portals without login.
    pub auth: Option<String>,
    /// The HTTPS port, when it must be known before the gateway starts (OIDC redirect URI).
    pub https_port: Option<u16>,
    /// More arguments for `prehod run` (e.g. `--upgrade-socket`).
    pub run_args: Vec<String>,
    /// The gateway's open-file limit (`ulimit -n`), when the test sets one.
    pub open_files: Option<u64>,
    /// More portals, as YAML under `portals:` (indented by the harness): ones without an
    /// upstream of the harness's, e.g. `forward_auth` portals.
    pub more_portals: String,
}

impl Setup {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn upstream(mut self, portal: &str, urls: &[String]) -> Self {
        self.upstreams.push((portal.to_owned(), urls.to_vec()));
        self
    }

    pub fn portal_yaml(mut self, portal: &str, yaml: &str) -> Self {
        self.portal_extra.push((portal.to_owned(), yaml.to_owned()));
        self
    }
}

/// A demo portal called `name` ("`name` portal") on a free loopback port: its address and
/// its task. It has a login of its own where the demo's does (`ecmsweb`, `bankomati`).
pub async fn demo_portal(name: &str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    prehod_demo_portal::spawn(
        "127.0.0.1:0".parse().expect("literal address"),
        prehod_demo_portal::PortalInfo {
            name: name.to_owned(),
            title: format!("{name} portal"),
            own_login: matches!(name, "ecmsweb" | "bankomati"),
        },
    )
    .await
    .expect("demo portal binds")
}

/// [`demo_portal`] on a thread and runtime of its own, for as long as the process runs: a test
/// or bench whose own tasks load its runtime must not slow the upstream down.
pub fn demo_portal_on_its_own_thread(name: &str) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    let name = name.to_owned();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the portal's runtime");
        runtime.block_on(async move {
            let (addr, task) = demo_portal(&name).await;
            tx.send(addr).expect("the caller waits for the address");
            let _ = task.await;
        });
    });
    rx.recv().expect("the portal's address")
}

/// Starts demo portals for all six portals on free ports; returns the setup and the tasks.
pub async fn six_demo_portals() -> (Setup, Vec<tokio::task::JoinHandle<()>>) {
    let mut setup = Setup::new();
    let mut tasks = Vec::new();
    for name in PORTALS {
        let (addr, task) = demo_portal(name).await;
        setup = setup.upstream(name, &[format!("http://{addr}")]);
        tasks.push(task);
    }
    (setup, tasks)
}

/// A gateway in front of [`six_demo_portals`] with a fresh [`Pki`], started after `edit` has
/// changed the setup; with the portals' tasks, to keep while the test runs.
pub async fn demo_gateway(
    edit: impl FnOnce(&mut Setup),
) -> (Pki, Gateway, Vec<tokio::task::JoinHandle<()>>) {
    let pki = Pki::new();
    let (mut setup, portals) = six_demo_portals().await;
    edit(&mut setup);
    let gw = Gateway::start(&pki, &setup);
    (pki, gw, portals)
}

/// A running `prehod run`, killed when dropped.
pub struct Gateway {
    child: Child,
    pub https: SocketAddr,
    pub admin: SocketAddr,
    pub http: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub log: PathBuf,
}

impl Gateway {
    /// Starts the gateway, on new ports again if another process took one first (the
    /// gateway then exits 69); a fixed `https_port` is not changed: `None` is returned.
    pub fn start(pki: &Pki, setup: &Setup) -> Self {
        for _ in 0..5 {
            if let Some(gw) = Self::try_start(pki, setup) {
                return gw;
            }
            assert!(setup.https_port.is_none(), "the fixed HTTPS port was taken");
        }
        panic!("five attempts to start prehod lost a port to another process");
    }

    pub fn try_start(pki: &Pki, setup: &Setup) -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let https: SocketAddr = format!("127.0.0.1:{}", setup.https_port.unwrap_or_else(free_port))
            .parse()
            .expect("addr");
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let http: Option<SocketAddr> = setup
            .http_redirect
            .then(|| format!("127.0.0.1:{}", free_port()).parse().expect("addr"));
        let mut yaml = format!(
            "listen:\n  https: {https}\n{redirect}admin:\n  listen: {admin}\ntls:\n  certificates:\n    - cert: {cert}\n      key: {key}\n{tls}server:\n  threads: 2\n  grace_period: 1s\n{server}{top}\n{auth}\nportals:\n",
            redirect = http.map(|a| format!("  http_redirect: {a}\n")).unwrap_or_default(),
            cert = pki.path("server.crt").display(),
            key = pki.path("server.key").display(),
            tls = setup
                .tls_extra
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>(),
            server = setup
                .server_extra
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>(),
            top = setup.top_extra,
            auth = setup.auth.as_deref().unwrap_or_default(),
        );
        for (portal, urls) in &setup.upstreams {
            yaml.push_str(&format!(
                "  {portal}:\n    host: {}\n    upstream:\n      urls: [{}]\n      health_check: {{interval: 500ms, timeout: 250ms}}\n",
                host(portal),
                urls.join(", ")
            ));
            if matches!(portal.as_str(), "ecmsweb" | "bankomati") {
                yaml.push_str("    app_login: own\n");
            }
            if setup.auth.is_none() {
                yaml.push_str("    danger_no_authentication: true\n");
            }
            for (p, extra) in &setup.portal_extra {
                if p == portal {
                    for line in extra.lines() {
                        yaml.push_str(&format!("    {line}\n"));
                    }
                }
            }
        }
        for line in setup.more_portals.lines() {
            yaml.push_str(&format!("  {line}\n"));
        }
        let config = dir.path().join("proxy.yaml");
        std::fs::write(&config, &yaml).expect("write config");
        let log = dir.path().join("stdout.log");
        // PREHOD_TEST_WRAPPER runs the gateway under another program, e.g. `valgrind
        // --tool=callgrind` (benches/instructions.sh).
        let wrapper = std::env::var("PREHOD_TEST_WRAPPER").unwrap_or_default();
        let bin = prehod_bin();
        let mut words: Vec<&std::ffi::OsStr> = wrapper
            .split_whitespace()
            .map(std::ffi::OsStr::new)
            .collect();
        words.push(bin.as_os_str());
        // An open-file limit: the shell sets it, then becomes the gateway (same process id).
        let mut command = match setup.open_files {
            Some(limit) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .args(&words);
                c
            }
            None => {
                let mut c = Command::new(words[0]);
                c.args(&words[1..]);
                c
            }
        };
        let child = command
            .args(["run", "--config"])
            .arg(&config)
            .args(&setup.run_args)
            .env("PREHOD_LOG", "info")
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start prehod");
        let mut gw = Self {
            child,
            https,
            admin,
            http,
            dir,
            ca: pki.path("ca.crt"),
            log,
        };
        gw.wait_healthy().then_some(gw)
    }

    /// Polls /healthz, then proves the HTTPS port is ours with a real TLS handshake.
    /// `false` when prehod exited because a port was taken (exit 69); any other exit fails.
    fn wait_healthy(&mut self) -> bool {
        // Under a wrapper such as valgrind everything runs ~50× slower.
        let wrapped = std::env::var_os("PREHOD_TEST_WRAPPER").is_some();
        let deadline = Instant::now() + Duration::from_secs(if wrapped { 300 } else { 20 });
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                if status.code() == Some(69) {
                    return false;
                }
                panic!("prehod exited early with {status}");
            }
            let ok = http_get(self.admin, "/healthz").is_some_and(|(status, _)| status == 200)
                && self.tls_handshake_ok();
            if ok {
                return true;
            }
            assert!(Instant::now() < deadline, "prehod did not become healthy");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn tls_handshake_ok(&self) -> bool {
        self.raw(&host("acq"), b"").is_some()
    }

    /// The readiness body once /readyz says 200.
    pub fn wait_ready(&self) -> String {
        let wrapped = std::env::var_os("PREHOD_TEST_WRAPPER").is_some();
        let deadline = Instant::now() + Duration::from_secs(if wrapped { 300 } else { 10 });
        loop {
            if let Some((200, body)) = http_get(self.admin, "/readyz") {
                return body;
            }
            assert!(Instant::now() < deadline, "prehod did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The gateway's process id (for its `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn metrics(&self) -> String {
        http_get(self.admin, "/metrics").expect("metrics answer").1
    }

    /// Rewrites the gateway's config with `edit` (which must change it) and reloads it
    /// (SIGHUP); returns once `/metrics` shows the new config's hash in use: that hash.
    pub async fn reload_with(&self, edit: impl FnOnce(String) -> String) -> String {
        let text = self.rewrite_and_hang_up(edit);
        let hash = sha256_hex(text.as_bytes());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.metrics().contains(&hash) {
            assert!(Instant::now() < deadline, "never reloaded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        hash
    }

    /// Rewrites the gateway's config with `edit` (which must change it) and sends SIGHUP,
    /// without waiting for the reload (which may be refused); returns the new text.
    pub fn rewrite_and_hang_up(&self, edit: impl FnOnce(String) -> String) -> String {
        let path = self.dir.path().join("proxy.yaml");
        let old = std::fs::read_to_string(&path).expect("config");
        let text = edit(old.clone());
        assert_ne!(text, old, "the edit changed the config");
        std::fs::write(&path, &text).expect("write");
        let status = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        text
    }

    /// A reqwest client that trusts the test CA, resolves every `*.bankart.localhost` name to
    /// the gateway and never follows redirects.
    pub fn client(&self) -> reqwest::Client {
        self.client_builder().build().expect("client")
    }

    pub fn client_builder(&self) -> reqwest::ClientBuilder {
        let ca = std::fs::read(&self.ca).expect("read CA");
        let mut b = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA PEM"))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60));
        for name in PORTALS
            .iter()
            .copied()
            .chain(["unknown", "login", "certlogin", "www"])
        {
            b = b.resolve(&host(name), self.https);
        }
        b
    }

    pub fn url(&self, portal: &str, path: &str) -> String {
        format!("https://{}:{}{path}", host(portal), self.https.port())
    }

    /// Sends raw bytes over TLS (SNI `sni`, HTTP/1.1 only) and returns everything the gateway
    /// answered until it closed or went quiet. `None` when the handshake failed.
    pub fn raw(&self, sni: &str, request: &[u8]) -> Option<Vec<u8>> {
        let mut connector = SslConnector::builder(SslMethod::tls()).ok()?;
        connector.set_ca_file(&self.ca).ok()?;
        connector.set_alpn_protos(b"\x08http/1.1").ok()?;
        let connector = connector.build();
        let tcp = TcpStream::connect(self.https).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let mut tls = connector.connect(sni, tcp).ok()?;
        if request.is_empty() {
            return Some(Vec::new());
        }
        // The gateway may answer (400) and close before a huge request is written: still read.
        let _ = tls.write_all(request);
        let mut out = Vec::new();
        let _ = tls.read_to_end(&mut out);
        Some(out)
    }

    /// Stops the gateway and starts it again with the same configuration and ports (its log
    /// goes on in the same file), ready again: what a restart of the process keeps is what it
    /// stored elsewhere.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .expect("log file");
        self.child = Command::new(prehod_bin())
            .args(["run", "--config"])
            .arg(self.dir.path().join("proxy.yaml"))
            .env("PREHOD_LOG", "info")
            .stdout(log)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start prehod again");
        assert!(self.wait_healthy(), "a port was taken during the restart");
        // Ready, as after the first start: a login right after the restart must not race the
        // identity provider's discovery ("Rekono is not available" on a loaded machine).
        self.wait_ready();
    }

    /// The lines of the gateway's stdout once every access-log line of the requests made
    /// before the call is in it — for a check that a thing is in no line. The gateway writes
    /// access lines in batches, in order (`prehod_gateway::access_log`): one more request is
    /// sent, and once its line (found by its `x-request-id`) is in the log, every earlier one
    /// is too.
    pub fn all_log_lines(&self) -> Vec<String> {
        let request = |portal: &str| {
            let host = host(portal);
            let get =
                format!("GET /log-barrier HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            let answer = self.raw(&host, get.as_bytes())?;
            let answer = String::from_utf8_lossy(&answer).into_owned();
            let id = answer.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-request-id")
                    .then(|| value.trim().to_owned())
            });
            id.filter(|id| !id.is_empty())
        };
        let id = PORTALS
            .iter()
            .find_map(|p| request(p))
            .expect("no portal host answered with an x-request-id");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.log_lines();
            if lines
                .iter()
                .any(|l| l.contains("prehod::access") && l.contains(&id))
            {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "the access line of request {id} was not written in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The lines of the gateway's stdout (JSON logs).
    pub fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Stops and reaps a child: SIGKILL, or with `PREHOD_TEST_STOP=interrupt` SIGINT first (pingora's
/// quick shutdown) and up to 10 s for the process to exit by itself — a build instrumented for
/// profile-guided optimisation writes its profile only when it exits (benches/pgo.sh).
pub fn stop(child: &mut Child) {
    if std::env::var("PREHOD_TEST_STOP").is_ok_and(|v| v == "interrupt") {
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
