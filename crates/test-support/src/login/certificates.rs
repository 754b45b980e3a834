//! Certificate login in a test world: how the dev CA is trusted ([`CertOptions`]), a real
//! `openssl ocsp` responder for it, and the `certificate_login:` section of the gateway's
//! configuration written from them.

use std::net::SocketAddr;

use crate::{free_port, Pki};

/// How the dev CA is trusted for certificate login.
#[derive(Clone, Default)]
pub struct CertOptions {
    /// A CRL file relative to the PKI directory, and the refresh interval.
    pub crl: Option<(&'static str, &'static str)>,
    pub ocsp: Option<Ocsp>,
    /// The anchor's certificate-policy allow-list.
    pub policies: Option<&'static str>,
    /// Serve the CRL file over http and configure that URL instead of the file.
    pub crl_over_http: bool,
    /// `certificate_login.crl_grace`.
    pub crl_grace: Option<&'static str>,
    /// The anchor's `user_id` (default `serial_number`).
    pub user_id: Option<&'static str>,
    /// Check CRL distribution points named in the certificates.
    pub distribution_points: bool,
    /// More YAML lines for the anchor (e.g. its own `max_chain_depth`).
    pub anchor_yaml: Option<&'static str>,
    /// Trust the PKI's "untrusted" CA as a second anchor, mapping users by common name.
    pub second_anchor: bool,
    pub max_chain_depth: Option<u32>,
    /// Trust the PKI's `future-ca.crt` (valid only from tomorrow) as another anchor.
    pub future_anchor: bool,
    /// An anchor listed *first* (the untrusted CA, no users here) whose CRL comes from this URL.
    pub leading_anchor_crl: Option<String>,
    /// `certificate_login.fetch_timeout`.
    pub fetch_timeout: Option<&'static str>,
    /// The anchor's `ca` holds the dev CA's intermediate after the root (so that the
    /// intermediate's CRLs can be configured).
    pub ca_bundle: bool,
    /// More YAML lines for the anchor, written as given (indented by the harness).
    pub anchor_lines: Vec<String>,
    /// `certificate_login.crl_refresh` (otherwise the `crl` option's, or 1m).
    pub crl_refresh: Option<&'static str>,
}

#[derive(Clone, Copy)]
pub enum Ocsp {
    /// A real `openssl ocsp` responder for the world's CA: `valid` good, `revoked` revoked.
    Responder,
    /// A real `openssl ocsp` responder for the dev CA's intermediate, signing with its key:
    /// `deep` (issued by the intermediate) revoked. The anchor's policy is `soft_fail`, so an
    /// answer that cannot be used (asked with the wrong issuer) would let `deep` through.
    IntermediateResponder,
    /// A real `openssl ocsp` responder for the world's CA that signs with the root's key and
    /// puts no certificate in its answers (`-resp_no_certs`); the anchor's policy is
    /// `soft_fail`, so an answer that is not recognised lets `revoked` through.
    RootWithoutCertificates,
    /// A responder address where nothing listens.
    Unreachable { soft_fail: bool },
}

/// `openssl ocsp` running as a responder on loopback; stopped when dropped.
pub struct Responder {
    child: std::process::Child,
    pub url: String,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn ocsp_responder(pki: &crate::Pki, kind: Ocsp) -> Responder {
    let index = pki.path("ocsp-index.txt");
    let (lines, ca, key) = match kind {
        Ocsp::IntermediateResponder => (
            "R\t301231235959Z\t251101000000Z\t03F0\tunknown\t/CN=deep\n",
            "intermediate.crt",
            "intermediate.key",
        ),
        _ => (
            "V\t301231235959Z\t\t03E8\tunknown\t/CN=valid\nR\t301231235959Z\t251101000000Z\t03EA\tunknown\t/CN=revoked\n",
            "ca.crt",
            "ca.key",
        ),
    };
    std::fs::write(&index, lines).expect("index");
    let port = free_port();
    let mut child = std::process::Command::new("openssl")
        .args(["ocsp", "-index"])
        .arg(&index)
        .args(["-port", &port.to_string(), "-rsigner"])
        .arg(pki.path(ca))
        .arg("-rkey")
        .arg(pki.path(key))
        .arg("-CA")
        .arg(pki.path(ca))
        .args(["-nmin", "5", "-ignore_err"])
        .args(if matches!(kind, Ocsp::RootWithoutCertificates) {
            &["-resp_no_certs"][..]
        } else {
            &[][..]
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl ocsp");
    // Ready when it says so. (Not by connecting: it serves one connection at a time, and a
    // connection that sends nothing leaves it waiting for good.)
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("waiting for OCSP client connections") {
                    let _ = tx.send(());
                }
            }
        });
    }
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the OCSP responder did not start");
    Responder {
        child,
        url: format!("http://127.0.0.1:{port}/"),
    }
}

/// The `certificate_login:` section for `c`: the dev CA as the anchor (with its intermediate in a
/// bundle when `ca_bundle`), and the CRLs, OCSP, policies and other anchors `c` asks for.
pub(crate) fn certificate_login_yaml(
    pki: &Pki,
    c: &CertOptions,
    responder: Option<&Responder>,
    crl_url: Option<SocketAddr>,
) -> String {
    let mut yaml = format!(
            "certificate_login:\n  host: certlogin.bankart.localhost\n  level: 30\n  crl_refresh: {}\n  anchors:\n    - name: prehod dev CA\n      ca: {}\n      user_id: serial_number\n",
            c.crl_refresh.unwrap_or(c.crl.map_or("1m", |(_, r)| r)),
            if c.ca_bundle {
                let bundle = pki.path("ca-and-intermediate.crt");
                let mut pem = std::fs::read(pki.path("ca.crt")).expect("ca");
                pem.extend(std::fs::read(pki.path("intermediate.crt")).expect("intermediate"));
                std::fs::write(&bundle, pem).expect("bundle");
                bundle
            } else {
                pki.path("ca.crt")
            }
            .display(),
        );
    if let Some(url) = &c.leading_anchor_crl {
        yaml = yaml.replace(
            "  anchors:\n",
            &format!(
                "  anchors:\n    - name: leading CA\n      ca: {}\n      crls: [\"{url}\"]\n",
                pki.path("untrusted-ca.crt").display()
            ),
        );
    }
    if let Some(t) = c.fetch_timeout {
        yaml = yaml.replace(
            "  level: 30\n",
            &format!("  level: 30\n  fetch_timeout: {t}\n"),
        );
    }
    if let Some(extra) = c.anchor_yaml {
        yaml.push_str(&format!("      {extra}\n"));
    }
    for line in &c.anchor_lines {
        yaml.push_str(&format!("      {line}\n"));
    }
    if c.distribution_points {
        yaml.push_str("      crl_distribution_points: true\n");
    }
    if let Some(user_id) = c.user_id {
        yaml = yaml.replace(
            "      user_id: serial_number\n",
            &format!("      user_id: \"{user_id}\"\n"),
        );
    }
    if let Some(grace) = c.crl_grace {
        yaml = yaml.replace(
            "  level: 30\n",
            &format!("  level: 30\n  crl_grace: {grace}\n"),
        );
    }
    if let Some(depth) = c.max_chain_depth {
        yaml = yaml.replace(
            "  level: 30\n",
            &format!("  level: 30\n  max_chain_depth: {depth}\n"),
        );
    }
    if let Some(policies) = c.policies {
        yaml.push_str(&format!("      policies: [\"{policies}\"]\n"));
    }
    if let Some((crl, _)) = c.crl {
        let source = match crl_url {
            Some(addr) => format!("http://{addr}/{crl}"),
            None => pki.path(crl).display().to_string(),
        };
        yaml.push_str(&format!("      crls: [\"{source}\"]\n"));
    }
    if c.future_anchor {
        yaml.push_str(&format!(
            "    - name: future CA\n      ca: {}\n      user_id: serial_number\n",
            pki.path("future-ca.crt").display()
        ));
    }
    if c.second_anchor {
        yaml.push_str(&format!(
            "    - name: second CA\n      ca: {}\n      user_id: common_name\n",
            pki.path("untrusted-ca.crt").display()
        ));
    }
    match c.ocsp {
        Some(
            o @ (Ocsp::Responder | Ocsp::IntermediateResponder | Ocsp::RootWithoutCertificates),
        ) => {
            let url = responder.map(|r| r.url.clone()).unwrap_or_default();
            let policy = if matches!(o, Ocsp::Responder) {
                "fail_closed"
            } else {
                "soft_fail"
            };
            yaml.push_str(&format!(
                "      ocsp:\n        url: {url}\n        policy: {policy}\n        timeout: 2s\n"
            ));
        }
        Some(Ocsp::Unreachable { soft_fail }) => {
            let policy = if soft_fail {
                "soft_fail"
            } else {
                "fail_closed"
            };
            yaml.push_str(&format!("      ocsp:\n        url: http://127.0.0.1:{}/\n        policy: {policy}\n        timeout: 1s\n", free_port()));
        }
        None => {}
    }
    yaml
}

impl super::World {
    /// A CRL distribution point of the dev CA: a CRL listing `revoked` and valid for `valid`
    /// (negative: already past its nextUpdate), written to `file` in the PKI's folder and served
    /// over plain HTTP on loopback; and the client certificate `name` (serial `serial`) that
    /// names it. Returns the CRL's path: write it again to change what the point serves.
    pub async fn distribution_point(
        &self,
        file: &str,
        revoked: &[u64],
        valid: time::Duration,
        name: &str,
        serial: u64,
    ) -> std::path::PathBuf {
        let crl = self.pki.path(file);
        prehod_devpki::write_crl(self.pki.dir.path(), &crl, revoked, valid).expect("crl");
        let dp = crate::servers::serve_file(crl.clone()).await;
        prehod_devpki::issue_client_with_crl_dp(
            self.pki.dir.path(),
            name,
            serial,
            &format!("http://{dp}/ca.crl"),
        )
        .expect("issue");
        crl
    }
}

/// `openssl s_client`: SNI `sni` (none with `None`), HTTP `Host: host`, optionally a client
/// certificate of the test PKI, a TLS session saved to or resumed from `session`.
pub fn s_client(
    w: &super::World,
    sni: Option<&str>,
    host_header: &str,
    cert: Option<&str>,
    session: Option<(&str, &std::path::Path)>,
    tls12: bool,
    path: &str,
) -> String {
    use std::io::Write;
    let mut cmd = s_client_command(w);
    cmd.args(["-ign_eof", "-alpn", "http/1.1"]);
    match sni {
        Some(s) => cmd.args(["-servername", s]),
        None => cmd.arg("-noservername"),
    };
    if let Some((flag, file)) = session {
        cmd.arg(flag).arg(file);
    }
    if tls12 {
        cmd.arg("-tls1_2");
    }
    if let Some(name) = cert {
        cmd.arg("-cert")
            .arg(w.pki.path(&format!("clients/{name}.crt")))
            .arg("-key")
            .arg(w.pki.path(&format!("clients/{name}.key")));
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("s_client");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The HTTP status in what [`s_client`] printed.
pub fn http_status(out: &str) -> Option<u16> {
    out.split("HTTP/1.1 ")
        .nth(1)
        .and_then(|rest| rest.get(..3))
        .and_then(|s| s.parse().ok())
}

/// `openssl s_client` to the gateway's public port, trusting the test CA: the caller adds
/// the rest.
pub fn s_client_command(w: &super::World) -> std::process::Command {
    let mut cmd = std::process::Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{}", w.gw.https.port()),
        "-CAfile",
    ])
    .arg(w.pki.path("ca.crt"));
    cmd
}

/// `openssl s_client -msg` with `args` to the gateway, nothing sent: what it printed.
pub fn s_client_raw(w: &super::World, args: &[&str]) -> String {
    let out = s_client_command(w)
        .arg("-msg")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl s_client -msg` to the gateway with `args`, its standard input kept open, so that a
/// test can type into one connection (HTTP requests, `R` to renegotiate, `k` for a key update)
/// and wait for what comes back.
pub struct SClient {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    printed: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl SClient {
    pub fn start(w: &super::World, args: &[String]) -> Self {
        use std::io::Read;
        use std::process::Stdio;
        let mut child = s_client_command(w)
            .arg("-msg")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("openssl s_client");
        let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let reader = {
            let printed = printed.clone();
            let mut stdout = child.stdout.take().expect("stdout");
            std::thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = stdout.read(&mut chunk) {
                    printed
                        .lock()
                        .expect("lock")
                        .push_str(&String::from_utf8_lossy(chunk.get(..n).unwrap_or_default()));
                }
            })
        };
        Self {
            stdin: child.stdin.take(),
            child,
            printed,
            reader: Some(reader),
        }
    }

    /// Types `bytes`; false once s_client no longer reads (the connection ended).
    pub fn send(&mut self, bytes: &[u8]) -> bool {
        use std::io::Write;
        self.stdin
            .as_mut()
            .is_some_and(|s| s.write_all(bytes).and_then(|()| s.flush()).is_ok())
    }

    /// How often `what` has been printed so far.
    pub fn count(&self, what: &str) -> usize {
        self.printed.lock().expect("lock").matches(what).count()
    }

    /// Waits up to 10 s for `done`; false if it never came.
    pub fn wait(&self, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done(self) {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        true
    }

    /// What was printed so far.
    pub fn printed(&self) -> String {
        self.printed.lock().expect("lock").clone()
    }

    /// Closes its input, ends it and returns everything it printed: standard output, then
    /// standard error after a `--- stderr ---` line.
    pub fn finish(mut self) -> String {
        use std::io::Read;
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            reader.join().expect("reader");
        }
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        format!("{}\n--- stderr ---\n{err}", self.printed())
    }
}
