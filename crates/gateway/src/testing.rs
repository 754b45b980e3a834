//! Unit-test support: the shipped dev configuration on a freshly generated dev PKI, built into
//! the gateway's [`Shared`] as `prehod dev` builds it, and sealed sessions to send to it.

use prehod_config::Config;
use prehod_identity::session::{Method, Session};

use crate::auth::AuthState;
use crate::Shared;

/// The shipped dev configuration (`prehod dev`).
pub const DEV: &str = include_str!("../../../deploy/dev/proxy.yaml");

/// The dev gateway's state; the PKI lives as long as it does.
pub struct Dev {
    dir: tempfile::TempDir,
    pub shared: Shared,
}

impl Dev {
    pub fn new() -> Self {
        Self::with(&[])
    }

    /// The dev configuration with more lines in some portals: `(portal, "key: value")`.
    pub fn with(portal_lines: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        prehod_devpki::generate(
            dir.path(),
            &prehod_devpki::dev_server_names("bankart.localhost"),
        )
        .expect("dev PKI");
        let config = config(dir.path(), &edited(DEV, portal_lines));
        let shared = Shared::new(config).unwrap_or_else(|e| panic!("{e}"));
        Self { dir, shared }
    }

    /// The dev configuration `text` (edited with [`edited`]) on this gateway's PKI.
    pub fn config(&self, text: &str) -> Config {
        config(self.dir.path(), text)
    }

    pub fn auth(&self) -> &AuthState {
        self.shared
            .auth
            .as_ref()
            .expect("the dev config has a login")
    }

    /// A dev portal's config.
    pub fn portal(&self, name: &str) -> &prehod_config::Portal {
        let found = self.shared.config.portals.iter().find(|p| p.name == name);
        found.expect("a dev portal")
    }

    /// A `Cookie` header value with a sealed session of a Rekono login at `level`, for the
    /// portal `host` (host-only cookies: a session names its host).
    pub fn session_cookie(&self, host: &str, level: u8, now: u64) -> String {
        let mut s = rekono_session("", "ana42", level);
        s.name = "Ana Novak".into();
        s.email = "ana@example.si".into();
        s.amr = vec!["pwd".into()];
        s.auth_time = now;
        let auth = self.auth();
        let (issued, _) = auth.sessions.issue(s, now).expect("issue");
        let cookie = (auth.sessions)
            .cookie_for(&issued, auth.cookie_host(host))
            .expect("seal");
        format!("{}={cookie}", auth.cookie_name)
    }
}

/// The shipped dev configuration with more lines in some portals: `(portal, "key: value")`.
pub fn edited(text: &str, portal_lines: &[(&str, &str)]) -> String {
    let mut text = text.to_owned();
    for (portal, line) in portal_lines {
        let host = format!("    host: {portal}.bankart.localhost\n");
        text = text.replace(&host, &format!("{host}    {line}\n"));
    }
    text
}

/// The dev configuration, as `prehod dev` loads it from the PKI in `dir`.
fn config(dir: &std::path::Path, text: &str) -> Config {
    let key = std::fs::read_to_string(dir.join("session.key")).expect("key");
    let certs = dir.display().to_string();
    Config::from_text(&dir.join("proxy.yaml"), text, |name| match name {
        "PREHOD_DEV_CERTS" => Some(certs.clone()),
        "PREHOD_SESSION_KEY" => Some(key.trim().to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Request head parts for a test: a URI and these headers.
pub fn head(uri: &str, headers: &[(&'static str, &str)]) -> (http::Uri, http::HeaderMap) {
    let mut map = http::HeaderMap::new();
    for (n, v) in headers {
        map.append(*n, http::HeaderValue::from_str(v).expect("a header value"));
    }
    (uri.parse().expect("a URI"), map)
}

/// A Rekono session `sid` of `sub` at `level`, every other field empty or zero: the tests
/// set what they read.
pub fn rekono_session(sid: &str, sub: &str, level: u8) -> Session {
    Session {
        sid: sid.into(),
        ..Session::new(Method::Rekono, sub, level)
    }
}
