//! A hostile world: the real gateway binary whose `oidc.issuer` is the hostile provider (by
//! its config alone), and the questions a test asks of a login that must fail or succeed.

use std::time::{Duration, Instant};

use super::{Behaviour, HostileOp, SUB};
use crate::login::{unescape, Browser, Page, CLIENT_ID, CLIENT_SECRET};
use crate::{demo_portal, free_port, host, Gateway, Pki, Setup};

/// The real gateway binary whose `oidc.issuer` is the hostile provider (config only), with
/// the `acq` (level 10) and `bips` (level 20) demo portals behind it.
pub struct HostileWorld {
    pub op: HostileOp,
    pub gw: Gateway,
    pub pki: Pki,
    _portals: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the provider with `behaviour` and a gateway pointed at it.
pub async fn hostile_world(behaviour: Behaviour) -> HostileWorld {
    // The HTTPS port is in the redirect URI, so it is chosen first; if another process takes
    // it before the gateway binds it, everything starts again.
    for _ in 0..5 {
        if let Some(world) = try_hostile_world(behaviour.clone()).await {
            return world;
        }
    }
    panic!("five attempts to start the gateway lost its port to another process");
}

async fn try_hostile_world(behaviour: Behaviour) -> Option<HostileWorld> {
    let fapi2 = behaviour.fapi2;
    let userinfo = if behaviour.userinfo_call {
        "  userinfo: true\n"
    } else {
        ""
    };
    let pki = Pki::new();
    let op = HostileOp::start(&pki, behaviour).await;
    let mut setup = Setup::new();
    let mut portals = Vec::new();
    for name in ["acq", "bips"] {
        let (addr, task) = demo_portal(name).await;
        setup = setup.upstream(name, &[format!("http://{addr}")]);
        portals.push(task);
    }
    setup = setup.portal_yaml("bips", "min_level: 20");
    let port = free_port();
    setup.https_port = Some(port);
    let key = std::fs::read_to_string(pki.path("session.key")).expect("session key");
    // Under `fapi2` (review-fapi): private_key_jwt with a fresh EC key, the FAPI 2.0 profile.
    let client_auth = if fapi2 {
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
            .expect("curve");
        let k =
            openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("key"))
                .expect("pkey");
        let path = pki.path("oidc-client.key");
        std::fs::write(&path, k.private_key_to_pem_pkcs8().expect("pem")).expect("write");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        format!(
            "  client_auth: private_key_jwt\n  client_key: {}\n  profile: fapi2\n",
            path.display()
        )
    } else {
        format!("  client_secret: {CLIENT_SECRET}\n")
    };
    setup.auth = Some(format!(
        "login:\n  host: login.bankart.localhost\n  url: https://login.bankart.localhost:{port}\n\
session:\n  keys: [\"{key}\"]\n\
oidc:\n  issuer: {issuer}\n  client_id: {CLIENT_ID}\n{client_auth}{userinfo}  ca: {ca}\n  timeout: 5s\n\
assertion:\n  key: {assertion}\n",
        key = key.trim(),
        issuer = op.issuer(),
        ca = pki.path("ca.crt").display(),
        assertion = pki.path("assertion.key").display(),
    ));
    let gw = Gateway::try_start(&pki, &setup)?;
    gw.wait_ready();
    Some(HostileWorld {
        op,
        gw,
        pki,
        _portals: portals,
    })
}

/// What a refused login must look like to the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// "Prijava ni uspela" (400).
    LoginFailed,
    /// "Stopnja zaupanja je prenizka" (403).
    LevelTooLow,
}

impl HostileWorld {
    pub fn portal_url(&self, portal: &str, path: &str) -> String {
        format!("https://{}:{}{path}", host(portal), self.gw.https.port())
    }

    pub fn login_url(&self, path: &str) -> String {
        format!(
            "https://login.bankart.localhost:{}{path}",
            self.gw.https.port()
        )
    }

    pub fn browser(&self) -> Browser {
        Browser::on(&self.gw, &self.pki, None)
    }

    /// From `bips` through the Bankart login page and the provider's authorization endpoint
    /// to the gateway callback URL the provider sends the browser to (not followed).
    pub async fn to_callback(&self, browser: &mut Browser) -> String {
        let login_page = browser.follow(&self.portal_url("bips", "/")).await;
        let marker = "id=\"login-rekono\" href=\"";
        let start = login_page
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no Rekono button: {}", login_page.body))
            + marker.len();
        let href = login_page.body[start..]
            .split('"')
            .next()
            .unwrap_or_default();
        let to_op = browser.navigate(&self.login_url(&unescape(href))).await;
        let authorize = to_op
            .location
            .expect("the gateway sends the browser to the provider");
        assert!(authorize.starts_with(self.op.issuer()), "{authorize}");
        let back = browser.navigate(&authorize).await;
        assert_eq!(back.status, 302, "{}", back.body);
        back.location.expect("the provider sends the browser back")
    }

    /// A whole login at `bips`: the gateway callback's answer.
    pub async fn login(&self, browser: &mut Browser) -> Page {
        let callback = self.to_callback(browser).await;
        browser.navigate(&callback).await
    }

    /// The value of a `prehod_denials_total` series, 0 when absent.
    pub fn denials(&self, reason: &str) -> f64 {
        crate::metrics::value_or_zero(
            &self.gw.metrics(),
            &format!("prehod_denials_total{{reason=\"{reason}\"}}"),
        )
    }

    /// Polls the metrics until the `reason` series is at least 1.
    pub async fn expect_denial(&self, reason: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.denials(reason) < 1.0 {
            assert!(
                Instant::now() < deadline,
                "no denial {reason:?} in:\n{}",
                self.gw
                    .metrics()
                    .lines()
                    .filter(|l| l.starts_with("prehod_denials_total"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A login that must be refused: the page says `shown` (never "Rekono is not available"),
    /// no session cookie was set, the portal still asks for a login, and the refusal is
    /// counted under `reason`.
    pub async fn assert_refused(
        &self,
        browser: &mut Browser,
        page: &Page,
        shown: Shown,
        reason: &str,
    ) {
        assert!(
            !page.body.contains("Rekono trenutno ni dosegljiv"),
            "a refusal reported as an outage: {}",
            page.body
        );
        let (status, title) = match shown {
            Shown::LoginFailed => (400, "Prijava ni uspela"),
            Shown::LevelTooLow => (403, "Stopnja zaupanja je prenizka"),
        };
        assert_eq!(page.status, status, "{}", page.body);
        assert!(page.body.contains(title), "{}", page.body);
        let planted: Vec<&String> = browser
            .set_cookies
            .iter()
            .filter(|c| {
                c.strip_prefix("__Host-prehod_session=")
                    .is_some_and(|rest| !rest.starts_with(';') && !rest.is_empty())
            })
            .collect();
        assert!(planted.is_empty(), "a session cookie was set: {planted:?}");
        assert!(browser.cookie(crate::login::SESSION).is_none());
        assert_eq!(
            browser.api(&self.portal_url("bips", "/")).await.status,
            401,
            "no session at the portal"
        );
        self.expect_denial(reason).await;
        assert_eq!(self.denials("rekono_unavailable"), 0.0);
        // Why, in the gateway's words (shown with `--nocapture`).
        for line in self.gw.log_lines() {
            if line.contains("Rekono login failed") {
                println!("{reason}: {line}");
            }
        }
    }

    /// A login that must succeed: redirected to the portal with a session cookie, and the
    /// portal receives the provider's `sub`.
    pub async fn assert_logged_in(&self, browser: &mut Browser, page: &Page) {
        assert_eq!(page.status, 302, "{}", page.body);
        // Host-only cookies: the portal takes its session with a single-use code.
        let sso = page.location.clone().unwrap_or_default();
        assert!(
            sso.starts_with(&self.portal_url("bips", "/.prehod/sso?code=")),
            "{sso}"
        );
        let back = browser.navigate(&sso).await;
        assert_eq!(
            back.location.as_deref(),
            Some(self.portal_url("bips", "/").as_str())
        );
        assert!(browser.cookie(crate::login::SESSION).is_some(), "a session");
        let portal = browser.api(&self.portal_url("bips", "/")).await;
        assert_eq!(portal.status, 200, "{}", portal.body);
        assert_eq!(
            crate::received_header(&portal.json(), "x-auth-user"),
            vec![SUB]
        );
    }

    /// Posts a logout token to the gateway's back-channel logout endpoint; the status.
    pub async fn backchannel_logout(&self, token: &str) -> u16 {
        self.browser()
            .http
            .post(self.login_url("/oidc/backchannel-logout"))
            .form(&[("logout_token", token)])
            .send()
            .await
            .expect("back-channel logout answers")
            .status()
            .as_u16()
    }
}
