//! A `redis-server` of a test's own (the fleet's shared state), on a free loopback port.

use std::time::Duration;

use crate::{free_port, wait_for, Pki};

/// A `redis-server` of the test's own on a free loopback port, without persistence; killed
/// when dropped.
pub struct Redis {
    child: Option<std::process::Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Self {
        let mut redis = Self {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("dir"),
        };
        redis.restart();
        redis
    }

    /// A TLS-only one (`rediss://localhost:PORT`) with `pki`'s server certificate; not
    /// restartable.
    pub fn start_tls(pki: &Pki) -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().expect("dir");
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1 ::1", "--port", "0"])
            .args(["--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(pki.path("server.crt"))
            .arg("--tls-key-file")
            .arg(pki.path("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(pki.path("ca.crt"))
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("redis-server");
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        wait_for(
            "redis-server (TLS) to listen",
            Duration::from_secs(10),
            || std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
        );
        Self {
            child: Some(child),
            port,
            dir,
        }
    }

    /// Starts it (again, empty) on its port, and waits until it answers PING.
    pub fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("redis-server (Debian package redis-server; deploy/setup.sh installs it)");
        self.child = Some(child);
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], self.port).into();
        wait_for("redis-server to answer", Duration::from_secs(10), || {
            use std::io::{Read, Write};
            let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            else {
                return false;
            };
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let mut buf = [0u8; 16];
            s.write_all(b"PING\r\n").is_ok()
                && s.read(&mut buf)
                    .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
        });
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends one command (RESP) and returns the first line of the answer.
    pub fn command(&self, args: &[&str]) -> String {
        use std::io::{BufRead, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("redis");
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(out.as_bytes()).expect("write");
        let mut line = String::new();
        std::io::BufReader::new(s)
            .read_line(&mut line)
            .expect("read");
        assert!(!line.starts_with('-'), "redis refused: {line}");
        line
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The gateway's `state:` section for this Redis with `key_prefix`, for a world's
    /// `Options::top_yaml` (a `&'static str`: leaked, once per test).
    pub fn state_yaml(&self, key_prefix: &str) -> &'static str {
        let yaml = format!(
            "state:\n  url: {}\n  key_prefix: \"{key_prefix}\"\n",
            self.url()
        );
        Box::leak(yaml.into_boxed_str())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
