//! The forward-auth endpoint behind a real nginx (Debian's), configured from the shipped
//! template deploy/nginx/forward-auth.conf.template: a browser's Rekono login through nginx →
//! prehod → the Rekono simulator → back through nginx to the portal, the identity the portal
//! receives, client-sent identity headers removed, 401/403/302, Traefik's contract against
//! prehod itself, and the attacks on the endpoint: an untrusted caller, a URL naming another
//! portal, a sign-in return URL to a foreign host, one portal's cookie used for another, a
//! method the portal does not take; what the template keeps from the portal (prehod's
//! cookies, a client's request id or identity under configured header names).
//!
//! nginx listens on 127.0.0.2 and prehod on 127.0.0.1, both on the same port: the public port
//! is one for the portal hosts and the login host, as in production (443 on two addresses).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use prehod_test_support::login::*;
use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP};
use prehod_test_support::{
    demo_portal, received_header, received_header_names, wait_for, WORKSPACE,
};
use serde_json::Value;

const FA: &str = "fa.bankart.localhost";
const FB: &str = "fb.bankart.localhost";

/// nginx in front of the portals fa and fb, killed when dropped.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped template with its placeholders filled in.
fn render(values: &[(String, String)]) -> String {
    let template = std::fs::read_to_string(format!(
        "{WORKSPACE}/deploy/nginx/forward-auth.conf.template"
    ))
    .expect("the shipped template");
    let mut text = template;
    for (name, value) in values {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    assert!(!text.contains("{{"), "a placeholder left: {text}");
    text
}

/// The identity header names' placeholders of the template (`H_USER` …) and their default
/// values (prehod's `headers.*`).
const HEADERS: [(&str, &str); 11] = [
    ("USER", "X-Auth-User"),
    ("EMAIL", "X-Auth-Email"),
    ("NAME", "X-Auth-Name"),
    ("METHOD", "X-Auth-Method"),
    ("LEVEL", "X-Auth-Level"),
    ("AMR", "X-Auth-Amr"),
    ("ASSERTION", "X-Auth-Assertion"),
    ("CERT_SUBJECT", "X-Auth-Cert-Subject"),
    ("CERT_ISSUER", "X-Auth-Cert-Issuer"),
    ("CERT_SERIAL", "X-Auth-Cert-Serial"),
    ("CERT_FINGERPRINT", "X-Auth-Cert-Fingerprint"),
];

/// What the template takes from prehod's configuration: `cookies.prefix`, the identity
/// header names (and `login.portal_prefix`, the default here), as docs/forward-auth.md says to render them.
struct Gateway<'a> {
    cookie_prefix: &'a str,
    /// `(placeholder, name)` for each `headers.*` that is not the default.
    headers: &'a [(&'a str, &'a str)],
}

const DEFAULTS: Gateway = Gateway {
    cookie_prefix: "prehod",
    headers: &[],
};

impl Gateway<'_> {
    fn values(&self) -> Vec<(String, String)> {
        let mut values = vec![
            ("COOKIE_PREFIX".to_owned(), self.cookie_prefix.to_owned()),
            ("PORTAL_PREFIX".to_owned(), "/.prehod/".to_owned()),
        ];
        for (stem, default) in HEADERS {
            let name = (self.headers.iter())
                .find(|(s, _)| *s == stem)
                .map_or(default, |(_, n)| *n);
            values.push((format!("H_{stem}"), name.to_owned()));
            let var = name.to_ascii_lowercase().replace('-', "_");
            values.push((format!("H_{stem}_VAR"), var));
        }
        values
    }
}

/// nginx on 127.0.0.2 at the gateway's port, guarding fa and fb (each a demo portal).
async fn start_nginx(world: &World) -> Nginx {
    start_nginx_for(world, &DEFAULTS).await
}

/// [`start_nginx`] with the template rendered for `gateway`'s configuration.
async fn start_nginx_for(world: &World, gateway: &Gateway<'_>) -> Nginx {
    let dir = tempfile::tempdir().expect("tmp");
    let port = world.gw.https.port();
    let addr: SocketAddr = format!("127.0.0.2:{port}").parse().expect("addr");
    let mut servers = String::new();
    for (name, host) in [("fa", FA), ("fb", FB)] {
        let (portal, task) = demo_portal(name).await;
        std::mem::forget(task);
        servers.push_str(&render(
            &[
                ("LISTEN", addr.to_string()),
                ("PORTAL_HOST", host.to_owned()),
                ("PUBLIC_AUTHORITY", format!("{host}:{port}")),
                ("CERT", world.pki.path("server.crt").display().to_string()),
                ("KEY", world.pki.path("server.key").display().to_string()),
                ("PORTAL", format!("http://{portal}")),
                ("PREHOD", world.gw.https.to_string()),
                ("LOGIN_HOST", "login.bankart.localhost".to_owned()),
                ("PREHOD_CA", world.pki.path("ca.crt").display().to_string()),
                ("UPSTREAM_NAME", format!("prehod_{name}")),
            ]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .chain(gateway.values())
            .collect::<Vec<_>>(),
        ));
    }
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
events {{ worker_connections 256; }}\n\
http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{servers}\n}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).expect("write");
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx (Debian's nginx package; deploy/setup.sh installs it)");
    let mut nginx = Nginx {
        child,
        addr,
        _dir: dir,
    };
    wait_for("nginx to listen", Duration::from_secs(10), || {
        if let Ok(Some(status)) = nginx.child.try_wait() {
            panic!("nginx exited: {status}");
        }
        std::net::TcpStream::connect(addr).is_ok()
    });
    nginx.addr = addr;
    nginx
}

/// prehod with fa (anyone) and fb (only the user `nobody`) behind nginx, nginx's address
/// trusted.
async fn setup() -> (World, Nginx) {
    let world = world(Options {
        more_portals: "fa:\n  host: fa.bankart.localhost\n  forward_auth: true\n\
fb:\n  host: fb.bankart.localhost\n  forward_auth: true\n  allowed_users: [nobody]\n",
        ..fa_only()
    })
    .await;
    let nginx = start_nginx(&world).await;
    (world, nginx)
}

/// The options of prehod with only fa (anyone) behind nginx, nginx's address trusted.
fn fa_only() -> Options {
    Options {
        top_yaml: "trusted_proxies: [127.0.0.1/32]\n",
        more_portals: "fa:\n  host: fa.bankart.localhost\n  forward_auth: true\n",
        ..Options::default()
    }
}

/// prehod with `options`, nginx in front with the template rendered for `gateway`, and a
/// browser that reaches fa and fb through nginx.
async fn behind_nginx(options: Options, gateway: &Gateway<'_>) -> (World, Nginx, Browser) {
    let world = world(options).await;
    let nginx = start_nginx_for(&world, gateway).await;
    let browser = browser(&world, &nginx);
    (world, nginx, browser)
}

/// A browser whose portal hosts fa and fb are nginx's; every other name is the gateway's.
fn browser(world: &World, nginx: &Nginx) -> Browser {
    let mut browser = Browser::new(world);
    browser.http = world
        .gw
        .client_builder()
        .resolve("rekono.localhost", SocketAddr::from(([127, 0, 0, 1], 0)))
        .resolve(FA, nginx.addr)
        .resolve(FB, nginx.addr)
        .build()
        .expect("client");
    browser
}

fn at(world: &World, host: &str, path: &str) -> String {
    format!("https://{host}:{}{path}", world.gw.https.port())
}

/// Logs Srednja in (at fa's level, 10) through nginx on fa; returns what the fa portal
/// received.
async fn login_on_fa(world: &World, browser: &mut Browser) -> Value {
    let url = at(world, FA, "/orders?id=7");
    let page = login_otp(world, browser, &url, SREDNJA, SREDNJA_TOTP).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.url, url, "back at the original URL");
    page.json()
}

/// `method url` in `browser` as a script asks (`accept: application/json`), with `headers`
/// besides.
async fn as_script(
    browser: &mut Browser,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
) -> Page {
    let mut all = vec![("accept", "application/json")];
    all.extend_from_slice(headers);
    browser.send(method, url, None, &all).await
}

/// The forward-auth endpoint asked directly, from `client`, with these headers.
async fn ask(
    world: &World,
    client: &reqwest::Client,
    headers: &[(&str, String)],
) -> reqwest::Response {
    let mut req = client.get(login_url(world, "/forward-auth"));
    for (n, v) in headers {
        req = req.header(*n, v);
    }
    req.send().await.expect("forward-auth answers")
}

async fn reason(resp: reqwest::Response) -> String {
    let json: Value = resp.json().await.expect("JSON");
    json["reason"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_logs_in_through_nginx_and_the_portal_gets_the_identity_and_nothing_spoofed() {
    let (world, nginx) = setup().await;
    let mut browser = browser(&world, &nginx);
    // No session: nginx hands the request to prehod on fa's host, which sends the browser to
    // the login (and sets fa's single sign-on nonce there).
    let first = browser.navigate(&at(&world, FA, "/orders?id=7")).await;
    assert_eq!(first.status, 302, "{}", first.body);
    let location = first.location.clone().expect("location");
    assert!(
        location.starts_with(&login_url(&world, "/?return=")),
        "{location}"
    );
    assert!(location.contains("&bind="), "{location}");
    let received = login_on_fa(&world, &mut browser).await;
    assert_eq!(received_header(&received, "x-auth-user").len(), 1);
    assert_eq!(received_header(&received, "x-auth-level"), ["10"]);
    assert_eq!(received_header(&received, "x-auth-method"), ["rekono"]);
    let jwt = received_header(&received, "x-auth-assertion");
    assert_eq!(jwt.len(), 1, "the signed assertion");
    // prehod's session cookie is prehod's: the portal does not get it.
    let cookies = received_header(&received, "cookie").join("; ");
    assert!(!cookies.contains("__Host-prehod_session"), "{cookies}");
    let user = received_header(&received, "x-auth-user")[0].to_owned();

    // The attack: the client sends identity headers of its own, in every spelling.
    let spoofed = as_script(
        &mut browser,
        reqwest::Method::GET,
        &at(&world, FA, "/orders"),
        &[
            ("x-auth-user", "admin"),
            ("X-Auth-Level", "30"),
            ("x_auth_user", "admin"),
            ("x.auth.user", "admin"),
            ("remote-user", "admin"),
            ("x-forwarded-user", "admin"),
            ("x-auth-request-user", "admin"),
            ("x-auth-groups", "admins"),
            ("x-auth-assertion", "forged"),
        ],
    )
    .await;
    assert_eq!(spoofed.status, 200, "{}", spoofed.body);
    let received = spoofed.json();
    assert_eq!(received_header(&received, "x-auth-user"), [user.as_str()]);
    assert_eq!(received_header(&received, "x-auth-level"), ["10"]);
    assert_ne!(received_header(&received, "x-auth-assertion"), ["forged"]);
    let names = received_header_names(&received);
    for gone in [
        "x_auth_user",
        "x.auth.user",
        "remote-user",
        "x-forwarded-user",
        "x-auth-request-user",
        "x-auth-groups",
    ] {
        assert!(
            !names.contains(&gone.to_owned()),
            "{gone} reached the portal: {names:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx_no_session_is_401_and_a_portal_that_refuses_the_person_is_403() {
    let (world, nginx) = setup().await;
    let mut browser = browser(&world, &nginx);
    // A script without a session: 401 JSON naming the login.
    let api = browser.api(&at(&world, FA, "/orders")).await;
    assert_eq!(api.status, 401, "{}", api.body);
    assert_eq!(api.json()["error"], "login_required");
    // Logged in on fa; fb lets only `nobody` in. The single sign-on gives fb its own cookie,
    // and nginx's check refuses the person there: prehod's page says why.
    login_on_fa(&world, &mut browser).await;
    let fb = at(&world, FB, "/payments");
    let page = browser.follow(&fb).await;
    assert_eq!(page.status, 403, "{} {}", page.url, page.body);
    assert_eq!(page.url, fb);
    let fb_cookie = browser
        .cookie_at(FB, SESSION)
        .expect("fb's own session cookie");
    let api = browser.api(&fb).await;
    assert_eq!(api.status, 403, "{}", api.body);
    // The endpoint's own answer, as nginx sees it.
    let resp = ask(
        &world,
        &world.gw.client(),
        &[
            ("x-original-url", fb.clone()),
            ("x-original-method", "GET".into()),
            ("cookie", format!("{SESSION}={fb_cookie}")),
        ],
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(reason(resp).await, "user_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attacks_on_the_endpoint_fail() {
    let (world, nginx) = setup().await;
    let mut browser = browser(&world, &nginx);
    login_on_fa(&world, &mut browser).await;
    let fa_cookie = format!(
        "{SESSION}={}",
        browser.cookie_at(FA, SESSION).expect("fa cookie")
    );
    let fa = at(&world, FA, "/orders");
    let fb = at(&world, FB, "/orders");

    // 1. Not from trusted_proxies: nothing the caller names is believed, in either contract,
    //    even with a genuine cookie.
    let untrusted = world
        .gw
        .client_builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 3]))
        .build()
        .expect("client");
    let nginx_headers = |url: &str, cookie: &str| {
        vec![
            ("x-original-url", url.to_owned()),
            ("x-original-method", "GET".to_owned()),
            ("cookie", cookie.to_owned()),
        ]
    };
    let resp = ask(&world, &untrusted, &nginx_headers(&fa, &fa_cookie)).await;
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("x-auth-user").is_none());
    assert_eq!(reason(resp).await, "forward_auth_untrusted_caller");
    let authority = format!("{FA}:{}", world.gw.https.port());
    let traefik = |accept: &str, cookie: &str| {
        vec![
            ("x-forwarded-proto", "https".to_owned()),
            ("x-forwarded-host", authority.clone()),
            ("x-forwarded-uri", "/orders".to_owned()),
            ("x-forwarded-method", "GET".to_owned()),
            ("accept", accept.to_owned()),
            ("cookie", cookie.to_owned()),
        ]
    };
    let resp = ask(&world, &untrusted, &traefik("text/html", &fa_cookie)).await;
    assert_eq!(resp.status(), 403);
    // The same requests from the trusted address pass: the refusal was the caller's.
    let trusted = world.gw.client();
    let resp = ask(&world, &trusted, &nginx_headers(&fa, &fa_cookie)).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-auth-user").is_some());

    // 2. One portal's cookie in a question about another: no session there.
    let resp = ask(&world, &trusted, &nginx_headers(&fb, &fa_cookie)).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(reason(resp).await, "invalid_session");
    // … and through nginx: fa's cookie replayed on fb's host, with a URL naming fa in every
    // header a client could hope nginx passes on.
    let replayed = browser
        .http
        .get(&fb)
        .header("accept", "application/json")
        .header("cookie", &fa_cookie)
        .header("x-original-url", &fa)
        .header("x-forwarded-host", &authority)
        .header("x-forwarded-uri", "/orders")
        .send()
        .await
        .expect("nginx answers");
    assert_eq!(replayed.status(), 401);

    // 3. A URL naming a host prehod does not guard, or a portal it proxies itself.
    let resp = ask(
        &world,
        &trusted,
        &nginx_headers("https://evil.example/", &fa_cookie),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let acq = portal_url(&world, "acq", "/");
    let resp = ask(&world, &trusted, &nginx_headers(&acq, &fa_cookie)).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(reason(resp).await, "forward_auth_not_a_forward_auth_portal");

    // 4. Around nginx, to prehod itself on fa's host with fa's session: prehod forwards
    //    nothing for a forward-auth portal (421), it only sends the way to the login.
    let direct = world
        .gw
        .client_builder()
        .resolve(FA, world.gw.https)
        .build()
        .expect("client")
        .get(&fa)
        .header("accept", "text/html")
        .header("cookie", &fa_cookie)
        .send()
        .await
        .expect("prehod answers");
    assert_eq!(direct.status(), 421);

    // 5. The sign-in link (ingress-nginx's auth-signin) returning to a foreign host, or to
    //    another portal: no redirect at all. To fa itself: the login, and back.
    for rd in [
        "https://evil.example/".to_owned(),
        fb.clone(),
        "//evil.example/".to_owned(),
    ] {
        let url = at(
            &world,
            FA,
            &format!("/.prehod/sign-in?rd={}", encode_component(&rd)),
        );
        let page = browser.navigate(&url).await;
        assert_eq!(page.status, 400, "{rd}: {}", page.body);
        assert!(page.location.is_none(), "{rd}");
    }
    let url = at(
        &world,
        FA,
        &format!("/.prehod/sign-in?rd={}", encode_component(&fa)),
    );
    let page = browser.navigate(&url).await;
    assert_eq!(page.status, 302);
    let location = page.location.expect("location");
    assert!(
        location.starts_with(&login_url(&world, "/?return=")),
        "{location}"
    );
    assert!(location.contains(&encode_component(&fa)), "{location}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefiks_contract_a_browser_is_sent_to_the_login_a_script_gets_401_a_session_its_identity()
{
    let (world, nginx) = setup().await;
    let mut browser = browser(&world, &nginx);
    login_on_fa(&world, &mut browser).await;
    let fa_cookie = format!(
        "{SESSION}={}",
        browser.cookie_at(FA, SESSION).expect("fa cookie")
    );
    let authority = format!("{FA}:{}", world.gw.https.port());
    let traefik = |accept: &str, cookie: Option<&str>| {
        let mut h = vec![
            ("x-forwarded-proto", "https".to_owned()),
            ("x-forwarded-host", authority.clone()),
            ("x-forwarded-uri", "/orders?id=7".to_owned()),
            ("x-forwarded-method", "GET".to_owned()),
            ("accept", accept.to_owned()),
        ];
        if let Some(c) = cookie {
            h.push(("cookie", c.to_owned()));
        }
        h
    };
    let client = world.gw.client();
    let resp = ask(&world, &client, &traefik("text/html", None)).await;
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let original = at(&world, FA, "/orders?id=7");
    assert!(
        location.starts_with(&login_url(&world, "/?return=")),
        "{location}"
    );
    assert!(
        location.contains(&encode_component(&original)),
        "{location}"
    );
    assert!(location.contains("&bind="), "{location}");
    let nonce = resp.headers().get_all("set-cookie").iter().any(|c| {
        c.to_str()
            .is_ok_and(|c| c.starts_with("__Host-prehod_sso="))
    });
    assert!(
        nonce,
        "the nonce cookie for fa's host goes with the redirect"
    );
    let resp = ask(&world, &client, &traefik("application/json", None)).await;
    assert_eq!(resp.status(), 401);
    let resp = ask(&world, &client, &traefik("text/html", Some(&fa_cookie))).await;
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    assert!(h.get("x-auth-user").is_some() && h.get("x-auth-assertion").is_some());
    assert_eq!(h["x-auth-level"], "10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_a_rekono_login_through_nginx_lands_on_the_portal_with_the_identity() {
    use prehod_test_support::webdriver::{spki_hash, Chrome};
    let (world, nginx) = setup().await;
    let cert = std::fs::read(world.pki.path("server.crt")).expect("certificate");
    // fa's name is nginx's address; every other *.localhost name stays on 127.0.0.1.
    let rules = format!("--host-resolver-rules=MAP {FA} {}", nginx.addr.ip());
    let chrome = Chrome::start_with(&spki_hash(&cert), &[rules]).await;
    let url = at(&world, FA, "/orders?id=7");
    chrome.goto(&url).await;
    chrome
        .wait_for("Pozdravljeni na prijavni strani Bankart")
        .await;
    chrome.log_in_with_rekono(SREDNJA, SREDNJA_TOTP).await;
    let page = chrome.wait_for("x-auth-assertion").await;
    assert_eq!(
        chrome.url().await,
        url,
        "back at the original URL through nginx"
    );
    assert!(page.contains("fa portal"), "{page}");
    assert!(page.contains("x-auth-user"), "{page}");
    chrome.quit().await;
}

/// The attack (review finding 1): a person with a session sends a forward_auth portal that
/// takes only GET and HEAD a DELETE (or a WebDAV method, TRACE, CONNECT) through nginx. The
/// endpoint applies the proxy's own method gate to the original method: no 2xx and no
/// identity, and the browser gets prehod's 405 on the portal's host, as without a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_applies_the_portals_http_methods_to_the_original_method() {
    let options = Options {
        more_portals:
            "fa:\n  host: fa.bankart.localhost\n  forward_auth: true\n  http_methods: [GET, HEAD]\n",
        ..fa_only()
    };
    let (world, nginx, mut browser) = behind_nginx(options, &DEFAULTS).await;
    login_on_fa(&world, &mut browser).await;
    let fa_cookie = format!(
        "{SESSION}={}",
        browser.cookie_at(FA, SESSION).expect("fa cookie")
    );
    let url = at(&world, FA, "/orders/7");

    // Without a session prehod itself says 405 for DELETE on fa's host (nginx hands the
    // refused request to prehod there): the method is not fa's.
    let mut anonymous = self::browser(&world, &nginx);
    let page = as_script(&mut anonymous, reqwest::Method::DELETE, &url, &[]).await;
    assert_eq!(page.status, 405, "without a session: {}", page.body);

    // The attack: the same DELETE with the person's session, through nginx.
    let page = as_script(&mut browser, reqwest::Method::DELETE, &url, &[]).await;
    let reached = page.status == 200
        && serde_json::from_str::<Value>(&page.body)
            .is_ok_and(|j| j["method"] == "DELETE" && j["portal"] == "fa");
    assert!(
        !reached,
        "a DELETE reached fa (http_methods: [GET, HEAD]) through nginx with prehod's 200: {}",
        page.body
    );

    // The endpoint's own answer for methods fa does not take: never a 2xx.
    for method in ["DELETE", "PUT", "PROPFIND", "TRACE"] {
        let resp = ask(
            &world,
            &world.gw.client(),
            &[
                ("x-original-url", url.clone()),
                ("x-original-method", method.to_owned()),
                ("accept", "application/json".to_owned()),
                ("cookie", fa_cookie.clone()),
            ],
        )
        .await;
        let status = resp.status().as_u16();
        let user = resp.headers().get("x-auth-user").cloned();
        assert!(
            !(200..300).contains(&status),
            "{method}: forward-auth answered {status} with identity {user:?} for a method fa does not take"
        );
    }
}

/// The attack (review finding 2): with `session.cookie_scope: parent_domain` the session
/// cookie is `prehod_session` (no `__Host-`), good on every portal under the parent domain;
/// the portal behind nginx must not receive it (it could replay it on acq, which prehod
/// proxies itself). Every cookie under `cookies.prefix` is taken out by the template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_keeps_the_parent_domain_session_cookie_from_the_portal() {
    let options = Options {
        parent_domain: true,
        ..fa_only()
    };
    let (world, _nginx, mut browser) = behind_nginx(options, &DEFAULTS).await;
    let received = login_on_fa(&world, &mut browser).await;
    assert_eq!(received_header(&received, "x-auth-method"), ["rekono"]);
    let cookies = received_header(&received, "cookie").join("; ");
    let gateway_cookies: Vec<&str> = cookies
        .split(';')
        .map(str::trim)
        .filter(|c| {
            let name = c.split('=').next().unwrap_or_default().to_ascii_lowercase();
            let name = name
                .strip_prefix("__host-")
                .or_else(|| name.strip_prefix("__secure-"))
                .unwrap_or(&name)
                .to_owned();
            name.starts_with("prehod_")
        })
        .collect();
    // What the portal can do with it: the cookie is the person's session on every portal
    // under the parent domain — here acq, which prehod proxies itself.
    let mut replayed = None;
    if let Some(leaked) = gateway_cookies.first() {
        let resp = world
            .gw
            .client()
            .get(portal_url(&world, "acq", "/"))
            .header("accept", "application/json")
            .header("cookie", *leaked)
            .send()
            .await
            .expect("acq answers");
        replayed = Some(resp.status().as_u16());
    }
    assert!(
        gateway_cookies.is_empty(),
        "prehod's cookies reached the portal behind nginx: {gateway_cookies:?}; replayed by the \
         portal on acq: {replayed:?}"
    );
}

/// The same with `cookies.prefix: bankart` (review finding 2c): the template, rendered with
/// the prefix, keeps `__Host-bankart_session` from the portal — and the single sign-on nonce,
/// `__Host-bankart_sso` under this prefix (it was `__Host-prehod_sso` whatever the prefix, and
/// passed the template).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_keeps_a_renamed_session_cookie_from_the_portal() {
    let options = Options {
        top_yaml: "trusted_proxies: [127.0.0.1/32]\ncookies:\n  prefix: bankart\n",
        ..fa_only()
    };
    let gateway = Gateway {
        cookie_prefix: "bankart",
        ..DEFAULTS
    };
    let (world, _nginx, mut browser) = behind_nginx(options, &gateway).await;
    let received = login_on_fa(&world, &mut browser).await;
    let cookies = received_header(&received, "cookie").join("; ");
    assert!(
        !cookies.contains("bankart_session="),
        "the session cookie reached the portal behind nginx: {cookies}"
    );
    let lower = cookies.to_ascii_lowercase();
    assert!(
        !lower.contains("bankart_") && !lower.contains("prehod_"),
        "a cookie of prehod's reached the portal behind nginx: {cookies}"
    );
    assert!(
        browser
            .cookie_names()
            .iter()
            .any(|n| n == "__Host-bankart_sso"),
        "the nonce cookie is named after the prefix: {:?}",
        browser.cookie_names()
    );
}

/// In the default host scope (review finding 2b): after a login through nginx the portal
/// gets none of prehod's cookies — not the single sign-on nonce `__Host-prehod_sso` either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_keeps_prehods_other_cookies_from_the_portal() {
    let (world, _nginx, mut browser) = behind_nginx(fa_only(), &DEFAULTS).await;
    let received = login_on_fa(&world, &mut browser).await;
    let cookies = received_header(&received, "cookie").join("; ");
    assert!(
        !cookies.to_ascii_lowercase().contains("prehod_"),
        "prehod's cookies reached the portal behind nginx: {cookies}"
    );
}

/// The attack (review finding 4): a client of nginx sends `X-Request-Id` to choose the id
/// prehod logs and audits (prehod believes a trusted proxy's request id). The template sets
/// nginx's own `$request_id` on every request to prehod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_nginx_cannot_choose_prehods_request_id() {
    let (world, _nginx, mut browser) = behind_nginx(fa_only(), &DEFAULTS).await;
    let chosen = "victims-request-id-0001";
    let page = as_script(
        &mut browser,
        reqwest::Method::GET,
        &at(&world, FA, "/orders"),
        &[("x-request-id", chosen)],
    )
    .await;
    assert_eq!(page.status, 401, "{}", page.body);
    let id = page.json()["request_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(
        id, chosen,
        "prehod took the request id the client of nginx chose"
    );
}

/// The attack (review finding 3): with `headers.user: X-Bank-User` (and `level`), a person
/// with a session sends their own `X-Bank-User: admin` through nginx. The template rendered
/// with the configured names (its `H_*` placeholders) replaces them with prehod's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_rendered_with_configured_header_names_replaces_the_clients_identity() {
    let options = Options {
        top_yaml: "trusted_proxies: [127.0.0.1/32]\nheaders:\n  user: X-Bank-User\n  level: X-Bank-Level\n",
        ..fa_only()
    };
    // The template rendered with the configured names (docs/forward-auth.md).
    let gateway = Gateway {
        headers: &[("USER", "X-Bank-User"), ("LEVEL", "X-Bank-Level")],
        ..DEFAULTS
    };
    let (world, _nginx, mut browser) = behind_nginx(options, &gateway).await;
    login_on_fa(&world, &mut browser).await;
    let page = as_script(
        &mut browser,
        reqwest::Method::GET,
        &at(&world, FA, "/orders"),
        &[("x-bank-user", "admin"), ("x-bank-level", "30")],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let received = page.json();
    let users = received_header(&received, "x-bank-user");
    let levels = received_header(&received, "x-bank-level");
    assert!(
        !users.contains(&"admin") && !levels.contains(&"30"),
        "the client's own identity reached the portal behind nginx: user {users:?}, level {levels:?}"
    );
    // And prehod's identity did, under the configured names.
    assert_eq!(levels, ["10"], "prehod's level under X-Bank-Level");
    assert!(
        users.len() == 1 && users[0].starts_with("rekono-"),
        "prehod's user under X-Bank-User: {users:?}"
    );
}

/// The template's cookie maps take out exactly prehod's cookies: every name under the prefix
/// (any letter case, `__Host-`/`__Secure-` or not) wherever it stands in the header, and
/// nothing of the portal's own. More of prehod's cookies than the maps take out: the portal
/// gets no cookie at all (fail closed), never one of prehod's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_takes_out_prehods_cookies_and_keeps_the_portals() {
    let (world, nginx) = setup().await;
    let mut browser = browser(&world, &nginx);
    login_on_fa(&world, &mut browser).await;
    let session = format!(
        "{SESSION}={}",
        browser.cookie_at(FA, SESSION).expect("fa cookie")
    );
    let received = |cookie: String| {
        let http = browser.http.clone();
        let url = at(&world, FA, "/orders");
        async move {
            let resp = http
                .get(url)
                .header("accept", "application/json")
                .header("cookie", cookie)
                .send()
                .await
                .expect("fa answers");
            assert_eq!(resp.status(), 200);
            let json: Value = resp.json().await.expect("JSON");
            received_header(&json, "cookie")
                .iter()
                .map(|c| (*c).to_owned())
                .collect::<Vec<_>>()
        }
    };
    let got = received(format!(
        "a=1; {session}; prehod_lang=sl;b=2; __Secure-PREHOD_x=y; __host-prehod_post=z; c=prehod_1"
    ))
    .await;
    let names: Vec<&str> = got
        .iter()
        .flat_map(|h| h.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(names, ["a=1", "b=2", "c=prehod_1"], "{got:?}");

    let many = (0..7)
        .map(|i| format!("prehod_{i}=x"))
        .collect::<Vec<_>>()
        .join("; ");
    let got = received(format!("{session}; a=1; {many}")).await;
    assert!(got.is_empty(), "no cookie at all: {got:?}");
}

/// The attack (review note): nginx's first server block is the default one, so a client may
/// name any host in `Host` and still be served by fa's block. The portal gets its own name,
/// written out in the template, never the client's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_gets_its_own_host_name_whatever_host_the_client_names() {
    let (world, nginx) = setup().await;
    let mut browser = browser(&world, &nginx);
    login_on_fa(&world, &mut browser).await;
    let session = format!(
        "{SESSION}={}",
        browser.cookie_at(FA, SESSION).expect("fa cookie")
    );
    let resp = browser
        .http
        .get(at(&world, FA, "/orders"))
        .header("accept", "application/json")
        .header("cookie", session)
        .header("host", "evil.example")
        .send()
        .await
        .expect("fa answers");
    assert_eq!(resp.status(), 200);
    let json: Value = resp.json().await.expect("JSON");
    assert_eq!(received_header(&json, "host"), [FA]);
}
