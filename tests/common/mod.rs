//! The end-to-end harness: a fresh dev PKI, real demo-portal upstreams, and the real `prehod`
//! binary started on free ports, with clients that speak real TLS and never follow redirects.
#![allow(dead_code)]

pub mod clients;
pub mod der;
pub mod fleet;
pub mod hostile_op;
pub mod login;
pub mod redis;
pub mod rekono;
pub mod revocation;
pub mod webdriver;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod};

pub const PORTALS: [&str; 6] = ["acq", "b2b", "bips", "bws", "ecmsweb", "bankomati"];

pub fn prehod_bin() -> &'static str {
    env!("CARGO_BIN_EXE_prehod")
}

/// A port nobody listens on right now. pingora cannot report the port of a `:0` listener,
/// so the harness picks one, and `Gateway::start` then proves the gateway got it (/healthz).
///
/// The port is drawn at random from 20000–32767, below the kernel's ephemeral range
/// (32768–60999): a port handed out by `bind(:0)` could be taken by any outgoing connection
/// before the gateway binds it, one outside that range only by another test's own choice.
pub fn free_port() -> u16 {
    loop {
        let mut r = [0u8; 2];
        openssl::rand::rand_bytes(&mut r).expect("randomness");
        let port = 20_000 + u16::from_le_bytes(r) % 12_768;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn host(portal: &str) -> String {
    format!("{portal}.bankart.localhost")
}

/// A temporary directory with a freshly generated PKI.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        prehod_devpki::generate(
            dir.path(),
            &prehod_devpki::dev_server_names("bankart.localhost"),
        )
        .expect("generate the test PKI");
        Self { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Upstream addresses for each portal and any per-portal YAML to add.
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
}

impl Setup {
    pub fn new() -> Self {
        Self {
            upstreams: Vec::new(),
            portal_extra: Vec::new(),
            top_extra: String::new(),
            server_extra: String::new(),
            tls_extra: String::new(),
            http_redirect: false,
            auth: None,
            https_port: None,
            run_args: Vec::new(),
            open_files: None,
        }
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

/// Starts demo portals for all six portals on free ports; returns the setup and the tasks.
pub async fn six_demo_portals() -> (Setup, Vec<tokio::task::JoinHandle<()>>) {
    let mut setup = Setup::new();
    let mut tasks = Vec::new();
    for name in PORTALS {
        let (addr, task) = prehod_demo_portal::spawn(
            "127.0.0.1:0".parse().expect("literal address"),
            prehod_demo_portal::PortalInfo {
                name: name.to_owned(),
                title: format!("{name} portal"),
                own_login: matches!(name, "ecmsweb" | "bankomati"),
            },
        )
        .await
        .expect("demo portal binds");
        setup = setup.upstream(name, &[format!("http://{addr}")]);
        tasks.push(task);
    }
    (setup, tasks)
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
        let config = dir.path().join("proxy.yaml");
        std::fs::write(&config, &yaml).expect("write config");
        let log = dir.path().join("stdout.log");
        // PREHOD_TEST_WRAPPER runs the gateway under another program, e.g. `valgrind
        // --tool=callgrind` (benches/instructions.sh).
        let wrapper = std::env::var("PREHOD_TEST_WRAPPER").unwrap_or_default();
        let mut words: Vec<&str> = wrapper.split_whitespace().collect();
        words.push(prehod_bin());
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
    /// goes on in the same file): what a restart of the process keeps is what it stored
    /// elsewhere.
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET; `Some((status, body))` if anything answered.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// An HTTP/1.1 response split into status, lower-case headers and body.
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let split = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&bytes[..split]).ok()?;
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Some(Self {
            status,
            headers,
            body: bytes[split + 4..].to_vec(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// The header names (lower case) a demo portal reports it received.
pub fn received_header_names(json: &serde_json::Value) -> Vec<String> {
    json["headers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|pair| pair[0].as_str().map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default()
}

pub fn received_header<'a>(json: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    json["headers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|pair| {
                    pair[0]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .filter_map(|pair| pair[1].as_str())
                .collect()
        })
        .unwrap_or_default()
}

pub fn path_display(p: &Path) -> String {
    p.display().to_string()
}

/// A plain-HTTP endpoint on loopback that answers 200 to every request and hands each request
/// body to the test: a relying party's back-channel logout endpoint, for instance.
pub async fn body_recorder() -> (SocketAddr, tokio::sync::mpsc::Receiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(4);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        let _ = tx.send(body.to_owned()).await;
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                        break;
                    }
                }
            }
        }
    });
    (addr, rx)
}

/// Serves the current contents of `path` over plain HTTP on loopback (read at each request):
/// a CRL distribution point, for instance.
pub async fn serve_file(path: PathBuf) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let path = path.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let body = std::fs::read(&path).unwrap_or_default();
                let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/pkix-crl\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
            });
        }
    });
    addr
}

/// How a hostile HTTP server misbehaves.
#[derive(Clone, Copy, Debug)]
pub enum Hostile {
    /// Accepts, reads the request, and never answers (holding the connection).
    Silent,
    /// Answers 200 and then streams a body that never ends.
    Endless,
}

/// An HTTP server on loopback that misbehaves as `kind` says, for every connection.
pub async fn hostile_http(kind: Hostile) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                match kind {
                    Hostile::Silent => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Hostile::Endless => {
                        let _ = s
                            .write_all(
                                b"HTTP/1.1 200 OK\r\ncontent-type: application/pkix-crl\r\n\r\n",
                            )
                            .await;
                        let chunk = vec![0x30u8; 64 * 1024];
                        while s.write_all(&chunk).await.is_ok() {}
                    }
                }
                drop(s);
            });
        }
    });
    addr
}

/// An HTTPS server on loopback outside the gateway (the test PKI's certificate, which covers
/// every `*.bankart.localhost` name): it answers 200 and reports the head of every request it
/// gets — to show what a browser sends to a host the gateway does not guard.
pub fn tls_recorder(pki: &Pki) -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
    acceptor
        .set_certificate_chain_file(pki.path("server.crt"))
        .expect("cert");
    acceptor
        .set_private_key_file(pki.path("server.key"), SslFiletype::PEM)
        .expect("key");
    let acceptor = acceptor.build();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let Ok(mut tls) = acceptor.accept(stream) else {
                continue;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && tls.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        }
    });
    (addr, rx)
}
