//! The revocation scene of tests/revocation.rs and tests/revocation_attacks.rs: a gateway
//! trusting the dev CA and its intermediate, the intermediate's CRL served by a
//! [`RevocationServer`] of the test's own (at the anchor's configured `crls:` or at the
//! certificates' own distribution point) or its OCSP responder, and two certificates the intermediate issued, `A`
//! (serial [`A`]) and `B` (serial [`B`]).

use std::time::{Duration, Instant};

use super::{serial, CrlSpec, Issue, RevocationServer, TestCa};
use crate::login::{portal_url, world, Browser, CertOptions, Options, Page, World};

/// The serial of certificate `A`.
pub const A: u64 = 5001;
/// The serial of certificate `B`.
pub const B: u64 = 5002;

/// Where the CRL under attack comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrlPath {
    /// `crls:` of the anchor: the root's CRL at `/root.crl`, the intermediate's at `/int.crl`.
    Configured,
    /// The certificates' own CRL distribution point, `/dp.crl`.
    DistributionPoint,
}

/// How a [`Scene`] is set up beyond its [`CrlPath`].
#[derive(Clone, Debug)]
pub struct SceneOptions {
    /// `certificate_login.crl_refresh`.
    pub crl_refresh: &'static str,
    /// `certificate_login.fetch_timeout`; `None`: the default.
    pub fetch_timeout: Option<&'static str>,
    /// How long the scene's waits ([`Scene::fetched`], [`Scene::revoke_a`]) poll.
    pub wait: Duration,
    /// The rest of the anchor's `ocsp:` (e.g. `policy: fail_closed`): the anchor asks the
    /// revocation server's OCSP responder at `/ocsp` (2 s timeout) in place of any CRL.
    pub ocsp: Option<String>,
    /// The portals' lines (bips at level 20, bws at 30 unless told).
    pub portal_yaml: Vec<(&'static str, &'static str)>,
}

impl Default for SceneOptions {
    fn default() -> Self {
        Self {
            crl_refresh: "1s",
            fetch_timeout: None,
            wait: Duration::from_secs(15),
            ocsp: None,
            portal_yaml: vec![("bips", "min_level: 20"), ("bws", "min_level: 30")],
        }
    }
}

/// A gateway trusting the dev CA and its intermediate, its revocation data on `srv`, and the
/// certificates `A` and `B` issued by the intermediate (portals bips at level 20, bws at 30).
pub struct Scene {
    pub w: World,
    pub srv: RevocationServer,
    pub root: TestCa,
    pub int: TestCa,
    pub path: CrlPath,
    pub wait: Duration,
}

impl Scene {
    pub async fn new(path: CrlPath) -> Self {
        Self::with(path, SceneOptions::default()).await
    }

    pub async fn with(path: CrlPath, options: SceneOptions) -> Self {
        let srv = RevocationServer::start().await;
        let line = match (&options.ocsp, path) {
            (Some(ocsp), _) => format!(
                "ocsp: {{url: \"{}\", timeout: 2s, {ocsp}}}",
                srv.url("/ocsp")
            ),
            (None, CrlPath::Configured) => two_crls(&srv),
            (None, CrlPath::DistributionPoint) => "crl_distribution_points: true".into(),
        };
        let w = world(Options {
            certificates: Some(CertOptions {
                ca_bundle: true,
                crl_refresh: Some(options.crl_refresh),
                fetch_timeout: options.fetch_timeout,
                anchor_lines: vec![line],
                ..CertOptions::default()
            }),
            portal_yaml: options.portal_yaml,
            ..Options::default()
        })
        .await;
        let root = TestCa::load(&w.pki, "ca");
        let int = TestCa::load(&w.pki, "intermediate");
        let dp = srv.url("/dp.crl");
        for (name, number) in [("A", A), ("B", B)] {
            int.issue(
                &w.pki,
                name,
                &Issue {
                    user: &format!("SI-DEV-{number}"),
                    serial: &serial(number),
                    crl_url: (path == CrlPath::DistributionPoint && options.ocsp.is_none())
                        .then_some(dp.as_str()),
                    send_chain: true,
                    ocsp_signer: false,
                },
            );
        }
        srv.serve("/root.crl", root.crl(&CrlSpec::numbered(1, &[])));
        Self {
            w,
            srv,
            root,
            int,
            path,
            wait: options.wait,
        }
    }

    /// The path of the intermediate's CRL on this scene's revocation server.
    pub fn crl_path(&self) -> &'static str {
        match self.path {
            CrlPath::Configured => "/int.crl",
            CrlPath::DistributionPoint => "/dp.crl",
        }
    }

    /// Serves `crl` where the intermediate's CRL is expected.
    pub fn serve(&self, crl: Vec<u8>) {
        self.srv.serve(self.crl_path(), crl);
    }

    /// A certificate login with `cert` on bws (no redirects followed).
    pub async fn login(&self, cert: &str) -> Page {
        Browser::with_certificate(&self.w, cert)
            .certificate_login(&self.w, "bws")
            .await
    }

    /// A browser holding a certificate session of `cert` (bws reached with it).
    pub async fn session(&self, cert: &str) -> Browser {
        let mut browser = Browser::with_certificate(&self.w, cert);
        let page = browser.certificate_login_follow(&self.w, "bws").await;
        assert_eq!(
            page.url,
            portal_url(&self.w, "bws", "/home"),
            "{}",
            page.body
        );
        assert_eq!(self.portal(&mut browser).await, 200);
        browser
    }

    /// What the session in `browser` gets on bws now.
    pub async fn portal(&self, browser: &mut Browser) -> u16 {
        browser
            .api(&portal_url(&self.w, "bws", "/home"))
            .await
            .status
    }

    /// Waits until the gateway fetched the intermediate's CRL `n` more times.
    pub async fn fetched(&self, n: usize) {
        self.fetched_at(self.crl_path(), n).await;
    }

    /// Waits until the gateway fetched `path` `n` more times.
    pub async fn fetched_at(&self, path: &str, n: usize) {
        let target = self.srv.gets(path) + n;
        until(
            &format!("{n} more fetches of {path}"),
            self.wait,
            async || self.srv.gets(path) >= target,
        )
        .await;
    }

    /// A logs in, keeps a session, then the intermediate's CRL `revoking` revokes A: new
    /// logins are refused and the session answers 403.
    pub async fn revoke_a(&self, first: Vec<u8>, revoking: Vec<u8>) -> Browser {
        self.serve(first);
        until("A logs in with the first CRL", self.wait, async || {
            self.login("A").await.status == 302
        })
        .await;
        let mut session = self.session("A").await;
        self.serve(revoking);
        until(
            "the revocation reaches the session",
            self.wait,
            async || self.portal(&mut session).await == 403,
        )
        .await;
        assert!(revoked_page(&self.login("A").await));
        session
    }

    /// Whether one line of the gateway's log holds every one of `words`.
    pub fn log_mentions(&self, words: &[&str]) -> bool {
        self.w
            .gw
            .log_lines()
            .iter()
            .any(|l| words.iter().all(|w| l.contains(w)))
    }
}

/// The anchor's `crls`: the root's and the intermediate's on `srv`, each bound to its CA.
pub fn two_crls(srv: &RevocationServer) -> String {
    format!(
        "crls: [{{source: \"{}\", issuer: prehod dev CA}}, {{source: \"{}\", issuer: prehod dev intermediate CA}}]",
        srv.url("/root.crl"),
        srv.url("/int.crl")
    )
}

/// Polls `done` every 200 ms for up to `within`.
pub async fn until(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The page of a certificate login refused as revoked.
pub fn revoked_page(page: &Page) -> bool {
    page.status == 403 && page.body.contains("Certifikat je preklican")
}
