//! A test world: a fresh PKI, the Rekono simulator in-process with the gateway registered as
//! its relying party, six demo portals, and the real gateway binary configured for Rekono
//! login (and certificate login, when asked) on a port chosen before the simulator starts.

use super::certificates::{certificate_login_yaml, ocsp_responder, CertOptions, Ocsp, Responder};
use super::{CLIENT_ID, CLIENT_SECRET};
use crate::{free_port, six_demo_portals, Gateway, Pki};

pub struct World {
    pub _responder: Option<Responder>,
    pub pki: Pki,
    pub sim: prehod_rekono_sim::RunningSim,
    /// The simulator again as a second provider, `bankart-staff` ([`Options::staff`]).
    pub staff: Option<prehod_rekono_sim::RunningSim>,
    pub gw: Gateway,
    pub _portals: Vec<tokio::task::JoinHandle<()>>,
}

/// Options for one world.
pub struct Options {
    pub idle: &'static str,
    pub absolute: &'static str,
    /// Extra lines per portal, e.g. `("bips", "min_level: 20")`.
    pub portal_yaml: Vec<(&'static str, &'static str)>,
    /// Where Rekono posts back-channel logout tokens instead of the gateway.
    pub backchannel: Option<String>,
    /// The gateway authenticates to Rekono with `private_key_jwt`; Rekono knows no secret.
    pub private_key_jwt: bool,
    /// With `private_key_jwt`: the client key is RSA (RS256), not EC P-256 (ES256).
    pub rsa_client_key: bool,
    /// Certificate login on certlogin.bankart.localhost, trusting the dev CA.
    pub certificates: Option<CertOptions>,
    /// Give the simulator account with this e-mail this `sub`.
    pub account_sub: Option<(&'static str, &'static str)>,
    /// More top-level YAML for the gateway (e.g. `rate_limits:`).
    pub top_yaml: &'static str,
    /// `session.cookie_scope: parent_domain` (one cookie on bankart.localhost) instead of
    /// host-only cookies.
    pub parent_domain: bool,
    /// More lines under `login:` (e.g. `portal_prefix: /.gw/`).
    pub login_yaml: &'static str,
    /// More lines under `server:` (e.g. `body_buffer_memory: 1MiB`).
    pub server_yaml: &'static str,
    /// A second provider: the simulator again on `staff-idp.localhost` with the staff
    /// accounts (deploy/dev/staff-idp-accounts.yaml), configured as `bankart-staff` after
    /// `rekono` in `providers:`. Portals name it in `methods` through `portal_yaml`.
    pub staff: bool,
    /// Give the staff simulator's account with this e-mail this `sub`.
    pub staff_account_sub: Option<(&'static str, &'static str)>,
    /// More portals, as YAML under `portals:` (e.g. `forward_auth` portals).
    pub more_portals: &'static str,
    /// The FAPI 2.0 profile on both sides: the simulator in its FAPI 2.0 mode, the gateway
    /// with `profile: fapi2` and `private_key_jwt` (an EC key).
    pub fapi: Option<Fapi>,
}

/// A FAPI 2.0 world ([`Options::fapi`]).
#[derive(Clone, Debug, Default)]
pub struct Fapi {
    /// The simulator's `id_token_alg` for the gateway (`PS256`, `EdDSA`; default ES256).
    pub id_token_alg: Option<&'static str>,
    /// `oidc.userinfo: true` (the claims from userinfo, with a DPoP-bound access token).
    pub userinfo: bool,
    /// What the simulator gets wrong from the start.
    pub misbehave: prehod_rekono_sim::Misbehave,
    /// The gateway will refuse the provider's discovery: the world does not wait for it to
    /// be ready (it never is), only for it to answer.
    pub refused_discovery: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            idle: "30m",
            absolute: "10h",
            portal_yaml: vec![("bips", "min_level: 20"), ("bws", "min_level: 30")],
            backchannel: None,
            private_key_jwt: false,
            rsa_client_key: false,
            certificates: None,
            account_sub: None,
            top_yaml: "",
            parent_domain: false,
            login_yaml: "",
            server_yaml: "",
            staff: false,
            staff_account_sub: None,
            more_portals: "",
            fapi: None,
        }
    }
}

/// A world with certificate login configured by `certificates`, the rest as by default.
pub async fn certificate_world(certificates: CertOptions) -> World {
    world(Options {
        certificates: Some(certificates),
        ..Options::default()
    })
    .await
}

/// The world with `bws` a certificate-only portal (`client_certificate: required`) and a CRL
/// refreshed every minute.
pub async fn certificate_only_world() -> World {
    world(Options {
        certificates: Some(CertOptions {
            crl: Some(("ca.crl.pem", "1m")),
            ..CertOptions::default()
        }),
        portal_yaml: vec![("bws", "client_certificate: required")],
        ..Options::default()
    })
    .await
}

pub async fn world(options: Options) -> World {
    // The HTTPS port is part of the redirect URI registered at Rekono, so it is chosen first;
    // if another process takes it before the gateway binds it, everything starts again.
    for _ in 0..5 {
        if let Some(world) = try_world(&options).await {
            return world;
        }
    }
    panic!("five attempts to start the gateway lost its port to another process");
}

async fn try_world(options: &Options) -> Option<World> {
    let pki = Pki::new();
    let port = free_port();
    let login_url = format!("https://login.bankart.localhost:{port}");
    let client_key = pki.path("oidc-client.key");
    let private_key_jwt = options.private_key_jwt || options.fapi.is_some();
    if private_key_jwt {
        let key = if options.rsa_client_key {
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("key"))
                .expect("pkey")
        } else {
            let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                .expect("curve");
            openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("key"))
                .expect("pkey")
        };
        std::fs::write(&client_key, key.private_key_to_pem_pkcs8().expect("pem")).expect("write");
        // A key file others may read is refused (as the gateway's own keys are).
        std::fs::set_permissions(
            &client_key,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod");
        std::fs::write(
            pki.path("oidc-client.pub"),
            key.public_key_to_pem().expect("pem"),
        )
        .expect("write");
    }
    let rp = prehod_rekono_sim::config::RawClient {
        secret: (!private_key_jwt).then(|| CLIENT_SECRET.into()),
        jwt_keys: if private_key_jwt {
            vec![pki.path("oidc-client.pub").display().to_string()]
        } else {
            vec![]
        },
        backchannel_logout_uri: Some(
            options
                .backchannel
                .clone()
                .unwrap_or_else(|| format!("{login_url}/oidc/backchannel-logout")),
        ),
        id_token_alg: options
            .fapi
            .as_ref()
            .and_then(|f| f.id_token_alg)
            .map(str::to_owned),
        ..crate::rekono::gateway_client(CLIENT_ID, CLIENT_SECRET, &login_url, "/oidc/callback")
    };
    let config = crate::rekono::sim_config(
        &pki,
        vec![prehod_rekono_sim::config::client(&rp, pki.dir.path()).expect("client")],
        Some(pki.path("ca.crt")),
    );
    let mut config = config;
    if let Some(fapi) = &options.fapi {
        config.fapi2 = true;
        config.misbehave = fapi.misbehave.clone();
    }
    if let Some((email, sub)) = options.account_sub {
        for account in config.accounts.iter_mut().filter(|a| a.email == email) {
            account.sub = sub.to_owned();
        }
    }
    let sim = prehod_rekono_sim::spawn(config).await.expect("simulator");
    let staff = if options.staff {
        Some(staff_sim(&pki, &login_url, options).await)
    } else {
        None
    };
    let (mut setup, portals) = six_demo_portals().await;
    for (portal, yaml) in &options.portal_yaml {
        setup = setup.portal_yaml(portal, yaml);
    }
    setup.https_port = Some(port);
    setup.top_extra = options.top_yaml.to_owned();
    setup.server_extra = options.server_yaml.to_owned();
    setup.more_portals = options.more_portals.to_owned();
    let key = std::fs::read_to_string(pki.path("session.key")).expect("session key");
    let responder = options
        .certificates
        .as_ref()
        .and_then(|c| c.ocsp)
        .filter(|o| {
            matches!(
                o,
                Ocsp::Responder | Ocsp::IntermediateResponder | Ocsp::RootWithoutCertificates
            )
        })
        .map(|o| ocsp_responder(&pki, o));
    let crl_url = match &options.certificates {
        Some(CertOptions {
            crl: Some((crl, _)),
            crl_over_http: true,
            ..
        }) => Some(crate::servers::serve_file(pki.path(crl)).await),
        _ => None,
    };
    let client_auth = if private_key_jwt {
        format!(
            "  client_auth: private_key_jwt\n  client_key: {}\n{}",
            client_key.display(),
            match &options.fapi {
                Some(f) => format!("  profile: fapi2\n  userinfo: {}\n", f.userinfo),
                None => String::new(),
            }
        )
    } else {
        format!("  client_secret: {CLIENT_SECRET}\n")
    };
    let ca = pki.path("ca.crt").display().to_string();
    setup.auth = Some(format!(
        "login:\n  host: login.bankart.localhost\n  url: {login_url}\n{login_extra}\
session:\n{scope}  idle_timeout: {idle}\n  absolute_timeout: {absolute}\n  keys: [\"{key}\"]\n\
{providers}\
assertion:\n  key: {assertion}\n{certificates}",
        providers = match &staff {
            None => format!(
                "oidc:\n  issuer: {}\n  client_id: {CLIENT_ID}\n{client_auth}  ca: {ca}\n  timeout: 5s\n",
                sim.issuer()
            ),
            Some(staff) => format!(
                "providers:\n  - id: rekono\n    issuer: {}\n    client_id: {CLIENT_ID}\n{}    ca: {ca}\n    timeout: 5s\n  - id: {STAFF_ID}\n    button: {{sl: Prijava za zaposlene, en: Staff login}}\n    issuer: {}\n    client_id: {STAFF_CLIENT_ID}\n    client_secret: {STAFF_CLIENT_SECRET}\n    ca: {ca}\n    timeout: 5s\n",
                sim.issuer(),
                client_auth.lines().map(|l| format!("  {l}\n")).collect::<String>(),
                staff.issuer(),
            ),
        },
        scope = if options.parent_domain {
            "  cookie_scope: parent_domain\n  cookie_domain: bankart.localhost\n"
        } else {
            ""
        },
        login_extra = options.login_yaml,
        idle = options.idle,
        absolute = options.absolute,
        key = key.trim(),
        assertion = pki.path("assertion.key").display(),
        certificates = options
            .certificates
            .as_ref()
            .map(|c| certificate_login_yaml(&pki, c, responder.as_ref(), crl_url))
            .unwrap_or_default(),
    ));

    let gw = Gateway::try_start(&pki, &setup)?;
    if !options.fapi.as_ref().is_some_and(|f| f.refused_discovery) {
        gw.wait_ready();
    }
    Some(World {
        _responder: responder,
        pki,
        sim,
        staff,
        gw,
        _portals: portals,
    })
}

/// The second provider's id in a world with [`Options::staff`].
pub const STAFF_ID: &str = "bankart-staff";
pub const STAFF_CLIENT_ID: &str = "prehod-test-staff";
pub const STAFF_CLIENT_SECRET: &str = "prehod-test-staff-secret";
/// The staff simulator's accounts (deploy/dev/staff-idp-accounts.yaml): Ana (level 20, OnePass)
/// and Bor (level 10).
pub const STAFF_ANA: (&str, &str) = ("ana.kovac@staff.bankart.localhost", "Srednja-2026!");
pub const STAFF_ANA_TOTP: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
pub const STAFF_BOR: (&str, &str) = ("bor.zupan@staff.bankart.localhost", "Nizka-2026!");

/// The simulator as the second provider: `staff-idp.localhost`, the staff accounts, the
/// gateway registered with its own callback path and back-channel logout.
async fn staff_sim(pki: &Pki, login_url: &str, options: &Options) -> prehod_rekono_sim::RunningSim {
    let rp = crate::rekono::gateway_client(
        STAFF_CLIENT_ID,
        STAFF_CLIENT_SECRET,
        login_url,
        &format!("/oidc/callback/{STAFF_ID}"),
    );
    let mut config = crate::rekono::sim_config(
        pki,
        vec![prehod_rekono_sim::config::client(&rp, pki.dir.path()).expect("client")],
        Some(pki.path("ca.crt")),
    );
    config.public_url = "https://staff-idp.localhost:0".into();
    config.public_mtls_url = "https://staff-idp.localhost:0".into();
    config.accounts = prehod_rekono_sim::config::load_accounts(std::path::Path::new(&format!(
        "{}/deploy/dev/staff-idp-accounts.yaml",
        crate::WORKSPACE
    )))
    .expect("staff accounts load");
    if let Some((email, sub)) = options.staff_account_sub {
        for account in config.accounts.iter_mut().filter(|a| a.email == email) {
            account.sub = sub.to_owned();
        }
    }
    prehod_rekono_sim::spawn(config)
        .await
        .expect("staff simulator")
}
