//! `prehod check` and `prehod run` on a configuration file: a good configuration for the test
//! PKI to start from, and the binary's exit code and output.

use std::path::Path;
use std::process::Command;

use crate::{host, prehod_bin, Pki, PORTALS};

/// Runs `prehod ARGS CONFIG`: its exit code (-1 when killed), standard output and error.
pub fn run_prehod(args: &[&str], config: &Path) -> (i32, String, String) {
    let out = Command::new(prehod_bin())
        .args(args)
        .arg(config)
        .output()
        .expect("run prehod");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A configuration `prehod check` accepts, for the test PKI: the six portals (each with the
/// YAML lines of `portal_extra` named after it), `extra` (whole sections) before `portals:`.
/// Its addresses are never bound: it is for `check`, not `run`.
pub fn good_config(pki: &Pki, extra: &str, portal_extra: &[(&str, &str)]) -> String {
    let session_key = std::fs::read_to_string(pki.path("session.key")).expect("session key");
    let mut text = format!(
        "listen:\n  https: 127.0.0.1:8443\nadmin:\n  listen: 127.0.0.1:9090\ntls:\n  certificates:\n    - cert: {}\n      key: {}\n\
login:\n  host: login.bankart.localhost\n\
session:\n  keys: [\"{}\"]\n\
oidc:\n  issuer: https://rekono.localhost:8444/openid-connect-server-webapp\n  client_id: prehod\n  client_secret: s3cret\n\
assertion:\n  key: {}\n{extra}portals:\n",
        pki.path("server.crt").display(),
        pki.path("server.key").display(),
        session_key.trim(),
        pki.path("assertion.key").display(),
    );
    for (i, p) in PORTALS.iter().enumerate() {
        text.push_str(&format!(
            "  {p}:\n    host: {}\n    upstream:\n      urls: [\"http://10.0.0.{i}:8080\"]\n",
            host(p)
        ));
        for (_, yaml) in portal_extra.iter().filter(|(name, _)| name == p) {
            text.push_str(&format!("    {yaml}\n"));
        }
    }
    text
}
