//! Harness for the Rekono simulator tests: the simulator in-process on `:0` ports (hyper
//! reports them), the shipped demo accounts, a cookie-keeping "browser" that never follows
//! redirects, and an `openidconnect` relying party.

use std::collections::HashMap;
use std::net::SocketAddr;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthenticationContextClass, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use prehod_rekono_sim::{RunningSim, SimConfig};

use crate::Pki;

pub const RP_ID: &str = "bankart-rp";
pub const RP_SECRET: &str = "bankart-rp-secret";
pub const RP_REDIRECT: &str = "https://login.bankart.localhost/oidc/callback";
pub const RP_POST_LOGOUT: &str = "https://login.bankart.localhost/logged-out";

pub const NIZKA: (&str, &str) = ("nizka@rekono.localhost", "Nizka-2026!");
pub const SREDNJA: (&str, &str) = ("srednja@rekono.localhost", "Srednja-2026!");
pub const VISOKA: (&str, &str) = ("visoka@rekono.localhost", "Visoka-2026!");
pub const SREDNJA_TOTP: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
pub const VISOKA_TOTP: &str = "KRSXG5CTMVRXEZLUKN2XAZLSONSWG4TF";

/// The shipped demo accounts with the test PKI's certificate paths.
pub fn accounts_file(pki: &Pki) -> std::path::PathBuf {
    let shipped = std::fs::read_to_string(format!(
        "{}/deploy/dev/rekono-accounts.yaml",
        crate::WORKSPACE
    ))
    .expect("shipped accounts");
    let text = shipped.replace("${PREHOD_DEV_CERTS}", &pki.dir.path().display().to_string());
    let path = pki.path("rekono-accounts.yaml");
    std::fs::write(&path, text).expect("write accounts");
    path
}

pub struct Rekono {
    pub running: RunningSim,
    pub pki_ca: Vec<u8>,
}

/// The simulator's configuration for a test: loopback `:0` ports (the simulator reports the
/// ones it got), the test PKI, the shipped demo accounts and the given relying parties.
/// The simulator's "Pozabljeno geslo?" and "Ustvari račun" in the tests (configurable).
pub const FORGOT_PASSWORD_URL: &str = "https://id.rekono.localhost/forgot";
pub const CREATE_ACCOUNT_URL: &str = "https://id.rekono.localhost/register";

pub fn sim_config(
    pki: &Pki,
    clients: Vec<prehod_rekono_sim::Client>,
    backchannel_ca: Option<std::path::PathBuf>,
) -> SimConfig {
    SimConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        listen_mtls: "127.0.0.1:0".parse().expect("addr"),
        public_url: "https://rekono.localhost:0".into(),
        public_mtls_url: "https://rekono.localhost:0".into(),
        tls_cert: pki.path("server.crt"),
        tls_key: pki.path("server.key"),
        accounts: prehod_rekono_sim::config::load_accounts(&accounts_file(pki))
            .expect("demo accounts load"),
        levels: prehod_rekono_sim::config::default_levels(),
        clients,
        backchannel_ca,
        danger_allow_non_loopback: false,
        forgot_password_url: FORGOT_PASSWORD_URL.into(),
        create_account_url: CREATE_ACCOUNT_URL.into(),
        fapi2: false,
        misbehave: prehod_rekono_sim::config::Misbehave::default(),
    }
}

/// A fresh [`Pki`], the simulator started on it ([`start`]) and a relying party built from
/// its discovery ([`Rekono::rp`]); keep the `Pki` while the simulator runs.
pub async fn start_with_rp(backchannel: Option<String>) -> (Pki, Rekono, Rp) {
    let pki = Pki::new();
    let rekono = start(&pki, backchannel).await;
    let rp = rekono.rp().await;
    (pki, rekono, rp)
}

/// The gateway at `login_url` as a simulator's client `client_id` (with `secret`): its
/// callback at `callback_path`, its logged-out page and its back-channel logout.
pub fn gateway_client(
    client_id: &str,
    secret: &str,
    login_url: &str,
    callback_path: &str,
) -> prehod_rekono_sim::config::RawClient {
    prehod_rekono_sim::config::RawClient {
        client_id: client_id.into(),
        name: "Bankart Varni Spletni Prehod".into(),
        secret: Some(secret.into()),
        jwt_keys: vec![],
        redirect_uris: vec![format!("{login_url}{callback_path}")],
        post_logout_redirect_uris: vec![format!("{login_url}/logged-out")],
        backchannel_logout_uri: Some(format!("{login_url}/oidc/backchannel-logout")),
        id_token_alg: None,
    }
}

/// Starts the simulator with one relying party (`RP_ID`), whose back-channel logout goes to
/// `backchannel` when given.
pub async fn start(pki: &Pki, backchannel: Option<String>) -> Rekono {
    let rp = prehod_rekono_sim::config::RawClient {
        client_id: RP_ID.into(),
        name: "Bankart Varni Spletni Prehod".into(),
        secret: Some(RP_SECRET.into()),
        jwt_keys: Vec::new(),
        redirect_uris: vec![RP_REDIRECT.into()],
        post_logout_redirect_uris: vec![RP_POST_LOGOUT.into()],
        backchannel_logout_uri: backchannel,
        id_token_alg: None,
    };
    let config = sim_config(
        pki,
        vec![prehod_rekono_sim::config::client(&rp, pki.dir.path()).expect("client")],
        None,
    );
    let running = prehod_rekono_sim::spawn(config)
        .await
        .expect("simulator starts");
    Rekono {
        running,
        pki_ca: std::fs::read(pki.path("ca.crt")).expect("ca"),
    }
}

impl Rekono {
    pub fn issuer(&self) -> String {
        self.running.issuer()
    }

    pub fn public_url(&self) -> String {
        self.running.sim.config.public_url.clone()
    }

    fn http_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.pki_ca).expect("ca"))
            .redirect(reqwest::redirect::Policy::none())
            // The port in the URL wins; the address only says "loopback".
            .resolve("rekono.localhost", SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// An HTTP client for the relying party's back-end calls.
    pub fn http(&self) -> reqwest::Client {
        self.http_builder().build().expect("client")
    }

    pub fn browser(&self) -> Browser {
        Browser {
            http: self.http(),
            cookies: HashMap::new(),
        }
    }

    /// A browser that presents `cert`+`key` when a handshake asks for a certificate.
    pub fn browser_with_certificate(&self, pki: &Pki, name: &str) -> Browser {
        let mut pem = std::fs::read(pki.path(&format!("clients/{name}.crt"))).expect("cert");
        pem.extend(std::fs::read(pki.path(&format!("clients/{name}.key"))).expect("key"));
        let identity = reqwest::Identity::from_pem(&pem).expect("identity");
        Browser {
            http: self
                .http_builder()
                .identity(identity)
                .build()
                .expect("client"),
            cookies: HashMap::new(),
        }
    }

    pub async fn rp(&self) -> Rp {
        let http = self.http();
        let metadata = CoreProviderMetadata::discover_async(
            IssuerUrl::new(self.issuer()).expect("issuer"),
            &http,
        )
        .await
        .expect("discovery");
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(RP_ID.into()),
            Some(ClientSecret::new(RP_SECRET.into())),
        )
        .set_redirect_uri(RedirectUrl::new(RP_REDIRECT.into()).expect("redirect"));
        Rp { client, http }
    }
}

pub type DiscoveredClient = openidconnect::core::CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// A relying party built with the `openidconnect` crate from the simulator's discovery.
pub struct Rp {
    pub client: DiscoveredClient,
    pub http: reqwest::Client,
}

/// One authorization request's secrets.
pub struct Attempt {
    pub url: String,
    pub state: CsrfToken,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

impl Rp {
    pub fn authorize(&self, acr: Option<&str>) -> Attempt {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        if let Some(acr) = acr {
            req = req.add_auth_context_value(AuthenticationContextClass::new(acr.into()));
        }
        let (url, state, nonce) = req.url();
        Attempt {
            url: url.to_string(),
            state,
            nonce,
            verifier,
        }
    }

    pub fn verifier(&self) -> openidconnect::core::CoreIdTokenVerifier<'_> {
        self.client.id_token_verifier().set_allowed_algs([
            CoreJwsSigningAlgorithm::EcdsaP256Sha256,
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        ])
    }
}

/// A minimal browser: keeps cookies, follows nothing, remembers the last page.
pub struct Browser {
    pub http: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Page {
    /// The value of a hidden input (`tx`, `csrf`).
    pub fn hidden(&self, name: &str) -> String {
        crate::http::hidden_input(&self.body, name)
            .unwrap_or_else(|| panic!("no {name} in page:\n{}", self.body))
    }

    /// The query parameters of the redirect target.
    pub fn redirect_params(&self) -> HashMap<String, String> {
        let location = self
            .location
            .clone()
            .unwrap_or_else(|| panic!("no redirect ({}):\n{}", self.status, self.body));
        url::Url::parse(&location)
            .expect("absolute redirect")
            .query_pairs()
            .into_owned()
            .collect()
    }
}

impl Browser {
    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = if cookie.is_empty() {
            req
        } else {
            req.header("cookie", cookie.join("; "))
        };
        let resp = req.send().await.expect("request");
        for c in resp.headers().get_all("set-cookie") {
            let pair = c
                .to_str()
                .expect("ascii")
                .split(';')
                .next()
                .unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().expect("ascii").to_owned());
        let body = resp.text().await.expect("body");
        Page {
            status,
            location,
            body,
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let req = self.http.get(url);
        self.send(req).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(url).form(form);
        self.send(req).await
    }
}
