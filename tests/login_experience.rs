//! Issue 13: the login experience as a bank employee meets it — the login host's home with
//! the seed's list of applications, logging out, a step-up that explains itself, one language
//! throughout (Rekono included), the simulator's screens, and the pages that offer the way on
//! after a refusal. Real gateway, real simulator, a cookie-jar browser that never follows a
//! redirect by itself; what the authorization request carried is read at the simulator.

use prehod_test_support::login::*;
use prehod_test_support::rekono::{
    CREATE_ACCOUNT_URL, FORGOT_PASSWORD_URL, SREDNJA, SREDNJA_TOTP, VISOKA, VISOKA_TOTP,
};
use prehod_test_support::PORTALS;

const SIM: &str = "/openid-connect-server-webapp";

/// The last authorization request the simulator received, as (name, value) pairs.
fn last_authorization(world: &World) -> Vec<(String, String)> {
    world
        .sim
        .sim
        .authorization_requests()
        .pop()
        .expect("an authorization request reached the simulator")
}

fn param<'a>(request: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    request
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn cert_world_options() -> Options {
    Options {
        certificates: Some(CertOptions {
            crl: Some(("ca.crl.pem", "1s")),
            ..CertOptions::default()
        }),
        ..Options::default()
    }
}

/// Item 1 and 2: the login host opened directly is its home — the chooser and the seed's list
/// of applications (each a link, the own-login ones marked); a login from there lands on it,
/// which then says who you are, how and at which level, with a logout button; the logged-out
/// page lists the applications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_hosts_home_lists_the_applications_and_a_login_there_lands_on_it() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let home = browser.navigate(&login_url(&world, "/")).await;
    assert_eq!(home.status, 200, "{}", home.body);
    let body = unescape(&home.body);
    assert!(body
        .contains("Aplikacije, pri katerih je prijava mogoča preko računa Rekono so naslednje:"));
    for portal in PORTALS {
        let url = portal_url(&world, portal, "/");
        assert!(body.contains(&format!("<a href=\"{url}\">")), "{portal}");
    }
    assert_eq!(
        body.matches("uporabniško ime ter geslo za prijavo v aplikacijo")
            .count(),
        2,
        "ecmsweb and bankomati have their own login after the gateway's"
    );
    assert!(
        body.contains("id=\"login-rekono\"") && !body.contains("Neveljaven naslov"),
        "no dead end"
    );

    let rekono = browser.follow(&rekono_link(&world, &home)).await;
    let chooser = rekono_password(&world, &mut browser, &rekono, SREDNJA).await;
    let back = rekono_otp(&world, &mut browser, &chooser, SREDNJA_TOTP).await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert_eq!(back.url, login_url(&world, "/"), "lands on the list");
    assert!(back.body.contains("Prijavljeni ste"), "{}", back.body);
    assert!(back.body.contains(SREDNJA.0));
    assert!(back.body.contains("id=\"who-method\">Rekono račun<"));
    assert!(back.body.contains("id=\"who-level\">20<"));
    assert!(back.body.contains("id=\"logout\""));
    assert!(back.body.contains("id=\"applications\""), "the list stays");
    // The session is real: a portal is reached without another login.
    let bips = browser.follow(&portal_url(&world, "bips", "/")).await;
    assert!(bips.url.starts_with(&portal_url(&world, "bips", "/")));
    assert_eq!(bips.status, 200, "{}", bips.body);

    // The home's logout button posts the session's token.
    let csrf = back.hidden("csrf");
    let out = browser
        .post_form(&login_url(&world, "/logout"), &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(out.url.starts_with(&login_url(&world, "/logged-out")));
    assert!(out.body.contains("Odjavljeni ste"));
    let out_body = unescape(&out.body);
    for portal in PORTALS {
        let url = portal_url(&world, portal, "/");
        assert!(
            out_body.contains(&format!("<a href=\"{url}\">")),
            "{portal}"
        );
    }
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        401
    );
    let home = browser.navigate(&login_url(&world, "/")).await;
    assert!(home.body.contains("id=\"login-rekono\"") && !home.body.contains("id=\"logout\""));
}

/// Item 3 and 4: opening bws (level 30) with a level-20 session first says which level the
/// application needs and which the session has; Rekono then gets the e-mail (`login_hint`) and
/// the language (`ui_locales`), and `openid` once — as the simulator received them. The level
/// too low page offers certificate login (bws allows it) and the way back to the application
/// the person came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_up_explains_itself_and_rekono_gets_the_login_hint_and_the_language() {
    let world = world(cert_world_options()).await;
    let (mut browser, _) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let plain_login = last_authorization(&world);
    assert_eq!(param(&plain_login, "ui_locales"), ["sl"]);
    assert!(
        param(&plain_login, "login_hint").is_empty(),
        "no account yet"
    );
    let scope = param(&plain_login, "scope");
    assert_eq!(scope.len(), 1);
    assert_eq!(
        scope[0].split(' ').filter(|s| *s == "openid").count(),
        1,
        "{scope:?}"
    );
    assert!(scope[0].contains("profile") && scope[0].contains("email"));

    // bws has no cookie yet: it gets one through the login host, then finds the level low.
    let why = browser.follow(&portal_url(&world, "bws", "/")).await;
    assert_eq!(why.status, 200, "{}", why.body);
    assert!(why.url.starts_with(&login_url(&world, "/step-up?")));
    assert!(
        why.body
            .contains("Aplikacija bws zahteva stopnjo zaupanja 30, vaša seja ima stopnjo 20."),
        "{}",
        why.body
    );
    assert!(
        why.body.contains("id=\"login-certificate\""),
        "bws allows certificates"
    );
    // Attacker's review: a `level` in a crafted link made a genuine page claim a higher
    // requirement (and ask Rekono for it); the page states the portal's own level.
    let bips_url = portal_url(&world, "bips", "/");
    let inflated = browser
        .navigate(&login_url(
            &world,
            &format!(
                "/step-up?level=30&return={}",
                url::form_urlencoded::byte_serialize(bips_url.as_bytes()).collect::<String>()
            ),
        ))
        .await;
    assert_eq!(inflated.status, 200, "{}", inflated.body);
    assert!(
        inflated.body.contains("zahteva stopnjo zaupanja 20"),
        "{}",
        inflated.body
    );
    assert!(
        inflated
            .body
            .contains("&#x2f;oidc&#x2f;start?level=20&amp;"),
        "{}",
        inflated.body
    );
    // Opened from a bips page (its Referer): the way back is bips.
    let hop = browser
        .send(
            reqwest::Method::GET,
            &portal_url(&world, "bws", "/reports"),
            None,
            &[
                ("accept", "text/html"),
                ("referer", &portal_url(&world, "bips", "/")),
            ],
        )
        .await;
    let why = browser
        .follow(&hop.location.expect("to the step-up page"))
        .await;
    assert_eq!(
        link_by_id(&world, &why, "back").as_deref(),
        Some(portal_url(&world, "bips", "/").as_str()),
        "{}",
        why.body
    );
    let rekono = continue_step_up(&world, &mut browser, &why).await;
    assert!(
        rekono.body.contains(&format!("value=\"{}\"", SREDNJA.0)),
        "the e-mail is filled in: {}",
        rekono.body
    );
    let step_up = last_authorization(&world);
    assert_eq!(param(&step_up, "login_hint"), [SREDNJA.0]);
    assert_eq!(param(&step_up, "ui_locales"), ["sl"]);
    assert_eq!(param(&step_up, "acr_values"), ["30"]);

    // Sara's account is level 20: Rekono says so, and the page offers the ways on.
    let low = rekono_password(&world, &mut browser, &rekono, SREDNJA).await;
    assert_eq!(low.status, 403, "{}", low.body);
    assert!(low.body.contains("Stopnja zaupanja je prenizka"));
    assert!(low
        .body
        .contains("Aplikacija bws zahteva stopnjo zaupanja 30"));
    let cert = link_by_id(&world, &low, "login-certificate").expect("certificate login offered");
    assert!(
        cert.starts_with("https://certlogin.bankart.localhost:")
            && cert.contains(&encode_component(&portal_url(&world, "bws", "/reports"))),
        "{cert}"
    );
    assert_eq!(
        link_by_id(&world, &low, "back").as_deref(),
        Some(portal_url(&world, "bips", "/").as_str()),
        "back to the application the user came from"
    );

    // English chosen on the Bankart page reaches Rekono.
    let en = browser
        .navigate(&login_url(
            &world,
            &format!(
                "/?return={}&lang=en",
                encode_component(&portal_url(&world, "acq", "/"))
            ),
        ))
        .await;
    assert!(en.status == 302 || en.body.contains("Welcome to the Bankart login page"));
    let start = browser
        .navigate(&login_url(
            &world,
            &format!(
                "/oidc/start?return={}&level=30",
                encode_component(&portal_url(&world, "acq", "/"))
            ),
        ))
        .await;
    let rekono = browser.follow(&start.location.expect("to Rekono")).await;
    assert!(
        rekono.body.contains("You are logging in to the service"),
        "{}",
        rekono.body
    );
    assert_eq!(param(&last_authorization(&world), "ui_locales"), ["en"]);
}

/// Item 6: after too many wrong passwords the Bankart page says why and offers to try again;
/// item 5: "back to the service" on Rekono's screens returns to the Bankart login page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_or_abandoned_rekono_login_says_why_and_leads_back() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let login = browser.follow(&portal_url(&world, "bips", "/")).await;
    assert!(login.body.contains("Prijava v bips"), "{}", login.body);
    let mut page = browser.follow(&rekono_link(&world, &login)).await;
    for _ in 0..5 {
        page = rekono_password(&world, &mut browser, &page, (SREDNJA.0, "wrong")).await;
        if !page.body.contains("Prijavljate se v storitev") {
            break;
        }
    }
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.url.starts_with(&login_url(&world, "/oidc/callback")));
    assert!(page.body.contains("Prijava je bila zavrnjena"));
    assert!(
        page.body
            .contains("Geslo je bilo prevečkrat vpisano napačno"),
        "{}",
        page.body
    );
    let retry = link_by_id(&world, &page, "retry").expect("try again");
    let again = browser.follow(&retry).await;
    assert_eq!(again.status, 200);
    assert!(again.body.contains("Prijava v bips") && again.body.contains("id=\"login-rekono\""));

    // Back to the service from Rekono's login screen and from the chooser.
    let rekono = browser.follow(&rekono_link(&world, &again)).await;
    assert!(rekono.body.contains("id=\"back-to-client\""));
    let back = browser
        .post_form(
            &sim_url(&world, &format!("{SIM}/abort")),
            &[
                ("tx", &rekono.hidden("tx")),
                ("csrf", &rekono.hidden("csrf")),
            ],
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.body);
    assert!(
        back.url.starts_with(&login_url(&world, "/?return=")),
        "{}",
        back.url
    );
    assert!(back.body.contains("Prijava v bips"));
    let rekono = browser.follow(&rekono_link(&world, &back)).await;
    let chooser = rekono_password(&world, &mut browser, &rekono, SREDNJA).await;
    assert!(chooser.body.contains("id=\"back-to-client\""));
    let back = browser
        .post_form(
            &sim_url(&world, &format!("{SIM}/abort")),
            &[
                ("tx", &chooser.hidden("tx")),
                ("csrf", &chooser.hidden("csrf")),
            ],
        )
        .await;
    assert!(back.body.contains("Prijava v bips"), "{}", back.body);
    // Nothing was logged in on the way.
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        401
    );
}

/// Item 7: certificate login without a certificate ends on a page with the way back to the
/// Bankart login page and the certificate instructions; item 8: the login page reached from an
/// own-login portal says that the application's own username and password follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_refusal_leads_back_and_own_login_portals_say_what_follows() {
    let world = world(cert_world_options()).await;
    let mut browser = Browser::new(&world);
    let refused = browser.certificate_login(&world, "bws").await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("Brskalnik ni poslal certifikata"));
    let back = link_by_id(&world, &refused, "back").expect("a way back");
    assert!(back.starts_with(&login_url(&world, "/?return=")), "{back}");
    let again = browser.follow(&back).await;
    assert!(again.body.contains("Prijava v bws"), "{}", again.body);
    assert!(refused.body.contains("Navodila za prijavo s certifikatom"));
    assert!(link_by_id(&world, &refused, "certificate-instructions").is_some());

    // Certificate login from the home lands on it too, logged in with the certificate.
    let mut holder = Browser::with_certificate(&world, "valid");
    let home = holder.navigate(&login_url(&world, "/")).await;
    let link = link_by_id(&world, &home, "login-certificate").expect("certificate login");
    assert!(link.starts_with("https://certlogin."), "{link}");
    let landed = holder.follow(&link).await;
    assert_eq!(landed.url, login_url(&world, "/"), "{}", landed.body);
    assert!(
        landed.body.contains("id=\"who-method\">Certifikat<")
            && landed.body.contains("id=\"who-level\">30<"),
        "{}",
        landed.body
    );
    let bws = holder.follow(&portal_url(&world, "bws", "/")).await;
    assert_eq!(
        bws.status, 200,
        "single sign-on from the home's session: {}",
        bws.body
    );

    for portal in ["ecmsweb", "bankomati"] {
        let login = browser.follow(&portal_url(&world, portal, "/")).await;
        assert!(
            login.body.contains("id=\"own-login-note\"")
                && login
                    .body
                    .contains("z njenim uporabniškim imenom in geslom"),
            "{portal}: {}",
            login.body
        );
        assert!(login.body.contains(&format!("Prijava v {portal}")));
    }
    let login = browser.follow(&portal_url(&world, "acq", "/")).await;
    assert!(!login.body.contains("id=\"own-login-note\""));
}

/// Item 4: English chosen on the Bankart page holds on the portal's own gateway pages after
/// the login, while a browser that chose nothing gets its `Accept-Language`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_chosen_on_the_login_page_reaches_the_portals_pages() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let login = browser.follow(&portal_url(&world, "acq", "/")).await;
    let en = browser.follow(&format!("{}&lang=en", login.url)).await;
    assert!(en.body.contains("Welcome to the Bankart login page"));
    let rekono = browser.follow(&rekono_link(&world, &en)).await;
    assert!(rekono.body.contains("You are logging in to the service"));
    let chooser = password(&world, &mut browser, &rekono, VISOKA).await;
    assert!(
        chooser.body.contains("Choose how to log in"),
        "{}",
        chooser.body
    );
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    browser
        .post_form(
            &sim_url(&world, &format!("{SIM}/factor/otp/verify")),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("code", &totp_now(VISOKA_TOTP)),
            ],
        )
        .await;
    let missing = browser
        .navigate(&portal_url(&world, "acq", "/.prehod/nothing"))
        .await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains("lang=\"en\"") && missing.body.contains("No such page"),
        "{}",
        missing.body
    );
}

/// Item 5, the simulator: the SL|EN switch on a page reached by a form POST shows that page
/// again; the factors follow the account's level (those that satisfy the level asked); the
/// push page says what to do, with Preklic; the links are real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_screens_switch_language_anywhere_and_offer_the_accounts_factors() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    // acq asks for level 10; Sara's account is level 20: her level-20 factors are offered.
    let login = browser.follow(&portal_url(&world, "acq", "/")).await;
    let rekono = browser.follow(&rekono_link(&world, &login)).await;
    // The hrefs as a browser reads them (the simulator's templates write "/" as "&#x2f;").
    assert_eq!(
        link_by_id(&world, &rekono, "forgot-password").as_deref(),
        Some(FORGOT_PASSWORD_URL)
    );
    assert_eq!(
        link_by_id(&world, &rekono, "create-account").as_deref(),
        Some(CREATE_ACCOUNT_URL)
    );
    assert!(!rekono.body.contains("href=\"#\""));
    let wrong = rekono_password(&world, &mut browser, &rekono, (SREDNJA.0, "wrong")).await;
    assert!(wrong.body.contains("Napačen e-naslov ali geslo"));
    let switched = browser.follow(&switch_link(&world, &wrong)).await;
    assert_eq!(switched.status, 200, "{}", switched.body);
    assert!(
        switched.body.contains("You are logging in to the service")
            && switched.body.contains(&format!("value=\"{}\"", SREDNJA.0)),
        "{}",
        switched.body
    );
    let chooser = password(&world, &mut browser, &switched, SREDNJA).await;
    assert!(chooser.body.contains("Choose how to log in"));
    for factor in ["factor-sms", "factor-otp", "factor-push"] {
        assert!(chooser.body.contains(factor), "{factor}: {}", chooser.body);
    }
    // The code page (a POST) and back to Slovenian.
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    let code = browser
        .post_form(
            &sim_url(&world, &format!("{SIM}/factor/otp")),
            &[("tx", &tx), ("csrf", &csrf)],
        )
        .await;
    assert!(code.body.contains("One-time password"));
    let sl = browser.follow(&switch_link(&world, &code)).await;
    assert_eq!(sl.status, 200, "{}", sl.body);
    assert!(sl.body.contains("Enkratno geslo") && sl.body.contains("id=\"code\""));
    // The push page.
    let push = browser
        .post_form(
            &sim_url(&world, &format!("{SIM}/factor/push")),
            &[("tx", &tx), ("csrf", &csrf)],
        )
        .await;
    assert!(
        push.body.contains(
            "Za nadaljevanje odprite svojo mobilno napravo in potrdite prejeto obvestilo, ki vam ga je poslal Rekono."
        ),
        "{}",
        push.body
    );
    assert!(push.body.contains("Preklic") && !push.body.contains(">…<"));
    let en = browser.follow(&switch_link(&world, &push)).await;
    assert!(en.body.contains("Confirm the notification"), "{}", en.body);

    // Vid's account is level 30; bips asks for 20: his level-30 factors, no SMS.
    let mut browser = Browser::new(&world);
    let login = browser.follow(&portal_url(&world, "bips", "/")).await;
    let rekono = browser.follow(&rekono_link(&world, &login)).await;
    let chooser = rekono_password(&world, &mut browser, &rekono, VISOKA).await;
    assert!(chooser.body.contains("factor-otp") && chooser.body.contains("factor-push"));
    assert!(!chooser.body.contains("factor-sms"), "{}", chooser.body);
}

/// E-mail and password on the simulator's login screen, in either language.
async fn password(
    world: &World,
    browser: &mut Browser,
    page: &Page,
    account: (&str, &str),
) -> Page {
    assert!(page.body.contains("id=\"password\""), "{}", page.body);
    let (tx, csrf) = (page.hidden("tx"), page.hidden("csrf"));
    browser
        .post_form(
            &sim_url(world, &format!("{SIM}/login")),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("email", account.0),
                ("password", account.1),
            ],
        )
        .await
}

/// The other language's link in the simulator's footer, absolute.
fn switch_link(world: &World, page: &Page) -> String {
    let marker = format!("href=\"{SIM}/lang?");
    let start = page.body.find(&marker).expect("language switch") + "href=\"".len();
    let href = unescape(page.body[start..].split('"').next().unwrap_or_default());
    sim_url(world, &href)
}

/// Item 2: the gateway's own paths on a portal host sit under `login.portal_prefix`; moved to
/// `/.gw/`, `me`, `logout` and single sign-on answer there, and `/.prehod/` is the portal's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portal_prefix_is_configurable() {
    let world = world(Options {
        login_yaml: "  portal_prefix: /.gw/\n",
        ..Options::default()
    })
    .await;
    let mut browser = Browser::new(&world);
    let before = browser.api(&portal_url(&world, "acq", "/.gw/me")).await;
    assert_eq!(before.status, 401, "{}", before.body);
    assert_eq!(before.json()["error"], "no_session");
    // Single sign-on codes come to /.gw/sso.
    login_at(&world, &mut browser, "bips", "/home", SREDNJA, SREDNJA_TOTP).await;
    // Another portal gets its session by a code at /.gw/sso.
    let mut location = portal_url(&world, "acq", "/");
    let mut via_code = false;
    for _ in 0..4 {
        let hop = browser.navigate(&location).await;
        let Some(next) = hop.location else { break };
        via_code |= next.starts_with(&portal_url(&world, "acq", "/.gw/sso?code="));
        location = next;
    }
    assert!(via_code, "no code at /.gw/sso on the way to {location}");
    assert_eq!(
        browser.api(&portal_url(&world, "acq", "/")).await.status,
        200
    );
    let me = browser.api(&portal_url(&world, "bips", "/.gw/me")).await;
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["email"], SREDNJA.0);
    let out = browser
        .navigate(&portal_url(&world, "bips", "/.gw/logout"))
        .await;
    assert_eq!(
        out.location.as_deref(),
        Some(login_url(&world, "/logout").as_str())
    );
    // The old prefix is no longer the gateway's: it reaches the portal (the demo portal
    // echoes what it received).
    let old = browser
        .api(&portal_url(&world, "bips", "/.prehod/me"))
        .await;
    assert_eq!(old.status, 200, "{}", old.body);
    assert!(
        old.json().get("headers").is_some(),
        "answered by the portal"
    );
}

/// Item 5: the language switch on the simulator's dead ends (an expired login) shows a page in
/// the other language, not a bare "not found".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_error_pages_switch_language_too() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let expired = browser
        .follow(&sim_url(&world, &format!("{SIM}/resume?tx=gone")))
        .await;
    assert_eq!(expired.status, 400);
    assert!(
        expired.body.contains("Prijava je potekla"),
        "{}",
        expired.body
    );
    let en = browser.follow(&switch_link(&world, &expired)).await;
    assert_eq!(en.status, 200, "{}", en.body);
    assert!(
        en.body.contains("Start the login from the application"),
        "{}",
        en.body
    );
}
