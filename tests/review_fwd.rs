//! Independent attacker's review of the forward-auth endpoint (issue 19 part 3), branch
//! `review-fwd`. Each test here FAILS on the reviewed code because of the finding it is
//! named after; the setup is the one of tests/forward_auth.rs (a real Debian nginx rendered
//! from deploy/nginx/forward-auth.conf.template in front of demo portals, prehod behind it).
//!
//! Run against the release build: `CARGO_BIN_EXE_prehod=target/release/prehod` in the
//! environment of the compiled test binary (the harness reads it at run time).

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use prehod_test_support::login::*;
use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP};
use prehod_test_support::{received_header, wait_for, WORKSPACE};
use serde_json::Value;

const FA: &str = "fa.bankart.localhost";

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

fn render(values: &[(&str, String)]) -> String {
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

/// nginx on 127.0.0.2 at the gateway's port, guarding fa (a demo portal), from the template.
async fn start_nginx(world: &World) -> Nginx {
    let dir = tempfile::tempdir().expect("tmp");
    let port = world.gw.https.port();
    let addr: SocketAddr = format!("127.0.0.2:{port}").parse().expect("addr");
    let (portal, task) = prehod_demo_portal::spawn(
        "127.0.0.1:0".parse().expect("literal"),
        prehod_demo_portal::PortalInfo {
            name: "fa".to_owned(),
            title: "fa portal".to_owned(),
            own_login: false,
        },
    )
    .await
    .expect("demo portal");
    std::mem::forget(task);
    let server = render(&[
        ("LISTEN", addr.to_string()),
        ("PORTAL_HOST", FA.to_owned()),
        ("PUBLIC_AUTHORITY", format!("{FA}:{port}")),
        ("CERT", world.pki.path("server.crt").display().to_string()),
        ("KEY", world.pki.path("server.key").display().to_string()),
        ("PORTAL", format!("http://{portal}")),
        ("PREHOD", world.gw.https.to_string()),
        ("LOGIN_HOST", "login.bankart.localhost".to_owned()),
        ("PREHOD_CA", world.pki.path("ca.crt").display().to_string()),
        ("UPSTREAM_NAME", "prehod_fa".to_owned()),
    ]);
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
events {{ worker_connections 256; }}\n\
http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{server}\n}}\n"
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
        .expect("nginx");
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
    nginx
}

fn browser(world: &World, nginx: &Nginx) -> Browser {
    let mut browser = Browser::new(world);
    browser.http = world
        .gw
        .client_builder()
        .resolve("rekono.localhost", SocketAddr::from(([127, 0, 0, 1], 0)))
        .resolve(FA, nginx.addr)
        .build()
        .expect("client");
    browser
}

fn at(world: &World, host: &str, path: &str) -> String {
    format!("https://{host}:{}{path}", world.gw.https.port())
}

/// Logs Srednja in through nginx on fa; returns what the fa portal received.
async fn login_on_fa(world: &World, browser: &mut Browser) -> Value {
    let url = at(world, FA, "/orders?id=7");
    let page = login_otp(world, browser, &url, SREDNJA, SREDNJA_TOTP).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.url, url, "back at the original URL");
    page.json()
}

async fn ask(world: &World, headers: &[(&str, String)]) -> reqwest::Response {
    let mut req = world.gw.client().get(login_url(world, "/forward-auth"));
    for (n, v) in headers {
        req = req.header(*n, v);
    }
    req.send().await.expect("forward-auth answers")
}

/// Finding 1: the forward-auth endpoint never applies the portal's `http_methods` (nor the
/// "TRACE never" rule). A forward_auth portal configured to take only GET and HEAD gets a
/// DELETE (or a WebDAV method, or TRACE behind a proxy that passes it) through nginx with a
/// 200 from prehod, while the same portal proxied by prehod answers 405 — and so does prehod
/// on the portal's host for the same request without a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_forward_auth_ignores_the_portals_http_methods() {
    let world = world(Options {
        top_yaml: "trusted_proxies: [127.0.0.1/32]\n",
        more_portals: "fa:\n  host: fa.bankart.localhost\n  forward_auth: true\n  http_methods: [GET, HEAD]\n",
        ..Options::default()
    })
    .await;
    let nginx = start_nginx(&world).await;
    let mut browser = browser(&world, &nginx);
    login_on_fa(&world, &mut browser).await;
    let fa_cookie = format!(
        "{SESSION}={}",
        browser.cookie_at(FA, SESSION).expect("fa cookie")
    );
    let url = at(&world, FA, "/orders/7");

    // Without a session prehod itself says 405 for DELETE on fa's host (nginx hands the
    // refused request to prehod there): the method is not fa's.
    let mut anonymous = self::browser(&world, &nginx);
    let page = anonymous
        .send(
            reqwest::Method::DELETE,
            &url,
            None,
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(page.status, 405, "without a session: {}", page.body);

    // The attack: the same DELETE with the person's session, through nginx.
    let page = browser
        .send(
            reqwest::Method::DELETE,
            &url,
            None,
            &[("accept", "application/json")],
        )
        .await;
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

/// Finding 2: the template's `map` removes only a cookie named literally
/// `__Host-prehod_session`. With `session.cookie_scope: parent_domain` (a supported option;
/// the session cookie is then `prehod_session` on the parent domain, good for every portal)
/// the portal behind nginx receives the person's session cookie — which prehod, as the proxy,
/// never lets a portal see. (The same holds for any `cookies.prefix` other than `prehod`, and,
/// in the default scope, for prehod's other cookies such as `__Host-prehod_sso`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_template_leaks_the_parent_domain_session_cookie_to_the_portal() {
    let world = world(Options {
        top_yaml: "trusted_proxies: [127.0.0.1/32]\n",
        more_portals: "fa:\n  host: fa.bankart.localhost\n  forward_auth: true\n",
        parent_domain: true,
        ..Options::default()
    })
    .await;
    let nginx = start_nginx(&world).await;
    let mut browser = browser(&world, &nginx);
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

/// Finding 2c: the same map with `cookies.prefix` other than `prehod` (a documented option):
/// the session cookie `__Host-bankart_session` reaches the portal behind nginx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_template_leaks_a_renamed_session_cookie_to_the_portal() {
    let world = world(Options {
        top_yaml: "trusted_proxies: [127.0.0.1/32]\ncookies:\n  prefix: bankart\n",
        more_portals: "fa:\n  host: fa.bankart.localhost\n  forward_auth: true\n",
        ..Options::default()
    })
    .await;
    let nginx = start_nginx(&world).await;
    let mut browser = browser(&world, &nginx);
    let received = login_on_fa(&world, &mut browser).await;
    let cookies = received_header(&received, "cookie").join("; ");
    assert!(
        !cookies.contains("bankart_session="),
        "the session cookie reached the portal behind nginx: {cookies}"
    );
}

/// Finding 2b (same map, default host scope): after a login through nginx, the portal gets
/// prehod's single sign-on nonce cookie `__Host-prehod_sso` (and a kept form's
/// `__Host-prehod_post`): "the gateway's own cookies never reach a portal" does not hold
/// behind the template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_template_passes_prehods_other_cookies_to_the_portal() {
    let world = world(Options {
        top_yaml: "trusted_proxies: [127.0.0.1/32]\n",
        more_portals: "fa:\n  host: fa.bankart.localhost\n  forward_auth: true\n",
        ..Options::default()
    })
    .await;
    let nginx = start_nginx(&world).await;
    let mut browser = browser(&world, &nginx);
    let received = login_on_fa(&world, &mut browser).await;
    let cookies = received_header(&received, "cookie").join("; ");
    assert!(
        !cookies.to_ascii_lowercase().contains("prehod_"),
        "prehod's cookies reached the portal behind nginx: {cookies}"
    );
}

/// Finding 3: through the template, a client chooses the request id prehod logs and audits:
/// nginx passes the client's `X-Request-Id` to prehod from a trusted address (the
/// subrequest, `@prehod`, `/.prehod/`), and prehod believes a trusted proxy's request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_a_client_of_nginx_chooses_prehods_request_id() {
    let world = world(Options {
        top_yaml: "trusted_proxies: [127.0.0.1/32]\n",
        more_portals: "fa:\n  host: fa.bankart.localhost\n  forward_auth: true\n",
        ..Options::default()
    })
    .await;
    let nginx = start_nginx(&world).await;
    let mut browser = browser(&world, &nginx);
    let chosen = "victims-request-id-0001";
    let page = browser
        .send(
            reqwest::Method::GET,
            &at(&world, FA, "/orders"),
            None,
            &[("accept", "application/json"), ("x-request-id", chosen)],
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

/// Finding 4: the template's identity header names are fixed (`X-Auth-*`), while prehod's are
/// configurable (`headers.*`, docs/configuration.md) and the endpoint answers with the
/// configured names. With `headers.user: X-Bank-User`, nginx takes no identity from prehod's
/// answer and passes the client's own `X-Bank-User` to the portal: any person with a session
/// that fa lets in is whoever they say. (prehod as the proxy strips `X-Bank-User` from every
/// client.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_template_ignores_configured_identity_header_names() {
    let world = world(Options {
        top_yaml: "trusted_proxies: [127.0.0.1/32]\nheaders:\n  user: X-Bank-User\n  level: X-Bank-Level\n",
        more_portals: "fa:\n  host: fa.bankart.localhost\n  forward_auth: true\n",
        ..Options::default()
    })
    .await;
    let nginx = start_nginx(&world).await;
    let mut browser = browser(&world, &nginx);
    login_on_fa(&world, &mut browser).await;
    let page = browser
        .send(
            reqwest::Method::GET,
            &at(&world, FA, "/orders"),
            None,
            &[
                ("accept", "application/json"),
                ("x-bank-user", "admin"),
                ("x-bank-level", "30"),
            ],
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
}
