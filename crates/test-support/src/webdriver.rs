//! A small W3C WebDriver client for Debian's headless Chromium through `chromedriver`:
//! enough to open pages, type, click, read the page and take screenshots.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Chrome {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Chrome {
    /// [`Chrome::start`] trusting the server certificate of `pki` (every test host's).
    pub async fn trusting(pki: &crate::Pki) -> Self {
        let cert = std::fs::read(pki.path("server.crt")).expect("the server certificate");
        Self::start(&spki_hash(&cert)).await
    }

    /// Starts chromedriver on a free port and a headless Chromium session that trusts exactly
    /// the server key with SPKI hash `spki_sha256_b64` (no blanket certificate bypass).
    pub async fn start(spki_sha256_b64: &str) -> Self {
        Self::start_with(spki_sha256_b64, &[]).await
    }

    /// [`Chrome::start`] with more command-line switches (e.g. `--host-resolver-rules=…`).
    pub async fn start_with(spki_sha256_b64: &str, extra_args: &[String]) -> Self {
        let port = crate::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian chromium-driver; deploy/setup.sh installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await.ok();
            if let Some(r) = ready {
                if r.json::<Value>()
                    .await
                    .is_ok_and(|v| v["value"]["ready"] == true)
                {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--window-size=1000,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--ignore-certificate-errors-spki-list={spki_sha256_b64}"),
        ];
        args.extend(extra_args.iter().cloned());
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // A Slovenian bank clerk's browser.
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args, "prefs": {"intl.accept_languages": "sl-SI,sl,en"}},
        }}});
        let resp: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("json");
        let session = resp["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {resp}"))
            .to_owned();
        Self {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .expect("webdriver call")
            .json()
            .await
            .expect("json");
        if v["value"]["error"].is_string() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = format!("{}/session/{}/element", self.base, self.session);
            let v: Value = self
                .http
                .post(url)
                .json(&json!({"using": "css selector", "value": css}))
                .send()
                .await
                .expect("find")
                .json()
                .await
                .expect("json");
            if let Some(id) = v["value"][ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// On Rekono's login page: the e-mail and password of `account`, then on to the factor
    /// chooser, whose page source is returned.
    pub async fn rekono_password(&self, account: (&str, &str)) -> String {
        self.wait_for("Prijavljate se v storitev").await;
        self.type_into("#email", account.0).await;
        self.type_into("#password", account.1).await;
        self.click("#login").await;
        self.wait_for("Izberite način prijave").await
    }

    /// On Rekono's factor chooser: OnePass, and the current code of the TOTP `secret`
    /// submitted.
    pub async fn rekono_onepass(&self, secret: &str) {
        self.click("#factor-otp").await;
        self.wait_for("Rekono OnePass").await;
        self.type_into("#code", &crate::login::totp_now(secret))
            .await;
        self.click("#confirm").await;
    }

    /// On a Bankart login page: "Prijava z Rekono računom", then [`Chrome::rekono_password`]
    /// and [`Chrome::rekono_onepass`] — a whole Rekono login as a person does it.
    pub async fn log_in_with_rekono(&self, account: (&str, &str), secret: &str) {
        self.click("#login-rekono").await;
        self.rekono_password(account).await;
        self.rekono_onepass(secret).await;
    }

    /// Waits until the page source contains `text`.
    pub async fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let source = self.source().await;
            if source.contains(text) {
                return source;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared; last page:\n{source}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns its value.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Resizes the browser window (the viewport is a little smaller).
    pub async fn window_size(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Runs axe-core (tests/a11y, installed by `npm ci` in tests/run.sh) on the page and returns
    /// the violations of the WCAG 2.1 A and AA rules, one line each (rule, impact, the first
    /// elements), empty when there are none. The script is injected through WebDriver, which
    /// the page's CSP (no scripts at all) does not govern.
    pub async fn axe_violations(&self) -> Vec<String> {
        let source = std::fs::read_to_string(format!(
            "{}/tests/a11y/node_modules/axe-core/axe.min.js",
            crate::WORKSPACE
        ))
        .expect("axe-core: run `npm ci` in tests/a11y (tests/run.sh does)");
        self.execute(&format!("{source}\n;return typeof axe;"), json!([]))
            .await;
        let result = self
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({
                    "script": "const done = arguments[arguments.length - 1];\
                        axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})\
                        .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' +\
                            v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', '))))\
                        .catch(e => done(['axe failed: ' + e]));",
                    "args": [],
                })),
            )
            .await;
        result
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_else(|| vec![format!("axe returned {result}")])
    }

    /// A PNG screenshot of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let b64 = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .expect("png base64")
    }

    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Chrome {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, for Chromium's SPKI allow-list.
pub fn spki_hash(cert_pem: &[u8]) -> String {
    use base64::Engine;
    use sha2::Digest;
    let cert = openssl::x509::X509::from_pem(cert_pem).expect("pem");
    let spki = cert
        .public_key()
        .expect("key")
        .public_key_to_der()
        .expect("der");
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(spki))
}
