//! The login flows as a person goes through them: the Bankart login page, Rekono's password and
//! second-factor pages in the simulator, step-up, logout; and the links and URLs they use.

use super::{Browser, Page, World, SESSION};
use crate::host;

pub fn sim_url(world: &World, path: &str) -> String {
    format!("{}{path}", world.sim.sim.config.public_url)
}

pub fn portal_url(world: &World, portal: &str, path: &str) -> String {
    format!("https://{}:{}{path}", host(portal), world.gw.https.port())
}

pub fn login_url(world: &World, path: &str) -> String {
    format!(
        "https://login.bankart.localhost:{}{path}",
        world.gw.https.port()
    )
}

/// The keys the gateway signs its identity assertions with (its JWKS on the login host).
pub async fn assertion_keys(world: &World, http: &reqwest::Client) -> jsonwebtoken::jwk::JwkSet {
    http.get(login_url(world, "/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json")
}

/// From the Rekono login page: e-mail and password, then the chooser page.
pub async fn rekono_password(
    world: &World,
    browser: &mut Browser,
    page: &Page,
    account: (&str, &str),
) -> Page {
    assert!(
        page.body.contains("Prijavljate se v storitev"),
        "not the Rekono login page: {} {}",
        page.url,
        page.body
    );
    sim_password(browser, &sim_url(world, ""), page, account).await
}

/// From a simulator's login page (the simulator at `sim_base`, its public URL): e-mail and
/// password of `account`, then the chooser page.
pub async fn sim_password(
    browser: &mut Browser,
    sim_base: &str,
    page: &Page,
    account: (&str, &str),
) -> Page {
    let (tx, csrf) = (page.hidden("tx"), page.hidden("csrf"));
    browser
        .post_form(
            &format!("{sim_base}/openid-connect-server-webapp/login"),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("email", account.0),
                ("password", account.1),
            ],
        )
        .await
}

/// From a simulator's chooser page: the OnePass code of `secret`; returns where the simulator
/// sends the browser (the gateway's callback), not followed.
pub async fn sim_otp_callback(
    browser: &mut Browser,
    sim_base: &str,
    chooser: &Page,
    secret: &str,
) -> String {
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    let code = totp_now(secret);
    browser
        .send(
            reqwest::Method::POST,
            &format!("{sim_base}/openid-connect-server-webapp/factor/otp/verify"),
            Some(&[
                ("tx", tx.as_str()),
                ("csrf", csrf.as_str()),
                ("code", code.as_str()),
            ]),
            &[],
        )
        .await
        .location
        .expect("the simulator redirects to the gateway's callback")
}

pub fn totp_now(secret: &str) -> String {
    let secret = prehod_rekono_sim::totp::base32_decode(secret).expect("base32");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    prehod_rekono_sim::totp::totp(&secret, now)
}

/// Chooser → OnePass code → back at the gateway and on to the portal.
pub async fn rekono_otp(
    world: &World,
    browser: &mut Browser,
    chooser: &Page,
    secret: &str,
) -> Page {
    assert!(
        chooser.body.contains("Izberite način prijave"),
        "{}",
        chooser.body
    );
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    browser
        .post_form(
            &sim_url(world, "/openid-connect-server-webapp/factor/otp/verify"),
            &[("tx", &tx), ("csrf", &csrf), ("code", &totp_now(secret))],
        )
        .await
}

/// Opens `url` (a portal page), chooses Rekono on the Bankart login page, and logs in with
/// the OnePass code of `account`. Returns the portal's page (JSON).
pub async fn login_otp(
    world: &World,
    browser: &mut Browser,
    url: &str,
    account: (&str, &str),
    secret: &str,
) -> Page {
    let login_page = browser.follow(url).await;
    assert!(
        login_page
            .body
            .contains("Pozdravljeni na prijavni strani Bankart"),
        "{}: {}",
        login_page.url,
        login_page.body
    );
    let rekono = browser.follow(&rekono_link(world, &login_page)).await;
    let chooser = rekono_password(world, browser, &rekono, account).await;
    let back = rekono_otp(world, browser, &chooser, secret).await;
    // The portal page after the gateway's redirect back: fetch it as JSON.
    browser.api(&back.url).await
}

/// The "Prijava z Rekono računom" link of a Bankart login page, absolute.
pub fn rekono_link(world: &World, page: &Page) -> String {
    let marker = "id=\"login-rekono\" href=\"";
    let start = page.body.find(marker).expect("Rekono button") + marker.len();
    let href = page.body[start..].split('"').next().unwrap_or_default();
    login_url(world, &unescape(href))
}

/// The `href` of the element with `id` on a gateway page, absolute (relative links are on the
/// login host).
pub fn link_by_id(world: &World, page: &Page, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\" href=\"");
    let start = page.body.find(&marker)? + marker.len();
    let href = unescape(page.body[start..].split('"').next().unwrap_or_default());
    Some(if href.starts_with("https://") {
        href
    } else {
        login_url(world, &href)
    })
}

/// `s` as a URL query component.
pub fn encode_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// From the step-up page (which says which level the application needs) on to Rekono.
pub async fn continue_step_up(world: &World, browser: &mut Browser, page: &Page) -> Page {
    assert!(
        page.body.contains("id=\"step-up-continue\""),
        "not the step-up page: {} {}",
        page.url,
        page.body
    );
    let next = link_by_id(world, page, "step-up-continue").expect("continue link");
    browser.follow(&next).await
}

/// Undoes HTML escaping in an attribute value (`&amp;`, `&#x2f;`, `&#61;`…).
pub fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Logs Sara in at Rekono for `portal_url` and returns the gateway callback URL Rekono sends
/// the browser to — without following it, so a test can use (or abuse) it.
pub async fn callback_url(world: &World, browser: &mut Browser, portal_url: &str) -> String {
    let login_page = browser.follow(portal_url).await;
    let rekono = browser.follow(&rekono_link(world, &login_page)).await;
    rekono_to_callback(world, browser, &rekono).await
}

/// From Rekono's login page: Sara's password and OnePass code; returns the callback Rekono
/// sends the browser to, not followed.
pub async fn rekono_to_callback(world: &World, browser: &mut Browser, rekono: &Page) -> String {
    let chooser = rekono_password(world, browser, rekono, crate::rekono::SREDNJA).await;
    let sim_base = sim_url(world, "");
    sim_otp_callback(browser, &sim_base, &chooser, crate::rekono::SREDNJA_TOTP).await
}

/// Logs out as a person does: the confirmation page at `GET /logout`, then its form.
/// Returns the page at the end of the redirects.
pub async fn log_out(world: &World, browser: &mut Browser) -> Page {
    let confirm = browser.navigate(&login_url(world, "/logout")).await;
    assert_eq!(
        confirm.status, 200,
        "the confirmation page: {}",
        confirm.body
    );
    let csrf = unescape(&confirm.hidden("csrf"));
    browser
        .post_form(&login_url(world, "/logout"), &[("csrf", &csrf)])
        .await
}

/// A new browser logged in with the OnePass code of `account`, having opened `path` on
/// `portal` ([`login_otp`]); with the portal's page it came back to.
pub async fn log_in(
    world: &World,
    portal: &str,
    path: &str,
    account: (&str, &str),
    secret: &str,
) -> (Browser, Page) {
    let mut browser = Browser::new(world);
    let page = login_otp(
        world,
        &mut browser,
        &portal_url(world, portal, path),
        account,
        secret,
    )
    .await;
    (browser, page)
}

/// A certificate login for `portal` from a new browser holding the test PKI's client
/// certificate `name` ([`Browser::certificate_login`]): the certificate-login host's answer.
pub async fn login_with_certificate(world: &World, name: &str, portal: &str) -> Page {
    Browser::with_certificate(world, name)
        .certificate_login(world, portal)
        .await
}

/// [`login_otp`] in `browser`, having opened `path` on `portal`.
pub async fn login_at(
    world: &World,
    browser: &mut Browser,
    portal: &str,
    path: &str,
    account: (&str, &str),
    secret: &str,
) -> Page {
    let url = portal_url(world, portal, path);
    login_otp(world, browser, &url, account, secret).await
}

/// Rekono ends every session of `sub` (the simulator's `/dev/logout`, as an admin or another
/// relying party's logout would), asked through `browser`'s client; Rekono's answer.
pub async fn rekono_logs_out(world: &World, browser: &Browser, sub: &str) -> reqwest::Response {
    browser
        .http
        .post(sim_url(world, "/dev/logout"))
        .form(&[("sub", sub)])
        .send()
        .await
        .expect("Rekono's /dev/logout")
}

/// The second provider's simulator URL ([`super::Options::staff`]).
pub fn staff_url(world: &World, path: &str) -> String {
    let staff = world
        .staff
        .as_ref()
        .expect("a world with the staff provider");
    format!("{}{path}", staff.sim.config.public_url)
}

/// Opens `url` (a portal page), chooses the provider of button `login-ID` on the Bankart
/// login page, and logs in at that simulator (`sim_base`, its public URL) with the OnePass
/// code of `account`. Returns the portal's page (JSON).
pub async fn login_otp_at(
    world: &World,
    browser: &mut Browser,
    url: &str,
    provider: &str,
    sim_base: &str,
    account: (&str, &str),
    secret: &str,
) -> Page {
    let login_page = browser.follow(url).await;
    let button = format!("login-{provider}");
    let link = link_by_id(world, &login_page, &button)
        .unwrap_or_else(|| panic!("no {button} on {}: {}", login_page.url, login_page.body));
    let sim_login = browser.follow(&link).await;
    assert!(
        sim_login.url.starts_with(sim_base),
        "{provider}'s button leads to {}, not {sim_base}",
        sim_login.url
    );
    let chooser = sim_password(browser, sim_base, &sim_login, account).await;
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    let back = browser
        .post_form(
            &format!("{sim_base}/openid-connect-server-webapp/factor/otp/verify"),
            &[("tx", &tx), ("csrf", &csrf), ("code", &totp_now(secret))],
        )
        .await;
    browser.api(&back.url).await
}

/// The status `url` answers a browser without cookies that sends only `cookie` as its session
/// cookie (one kept from before, or stolen).
pub async fn status_with_session_cookie(world: &World, url: &str, cookie: &str) -> u16 {
    Browser::new(world)
        .send(
            reqwest::Method::GET,
            url,
            None,
            &[
                ("accept", "application/json"),
                ("cookie", &format!("{SESSION}={cookie}")),
            ],
        )
        .await
        .status
}
