//! A real browser (Debian's headless Chromium) through the Rekono simulator's pages: e-mail and
//! password, the factor chooser, the OnePass code, and the claims that come back. The
//! screenshots it takes are the ones in the README (`PREHOD_UPDATE_SCREENSHOTS=1` rewrites
//! them in tests/screenshots/).

use prehod_test_support::rekono::*;
use prehod_test_support::webdriver::Chrome;
use prehod_test_support::Pki;

fn save(name: &str, png: &[u8]) {
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000,
        "{name} is not a real screenshot"
    );
    let dir = if std::env::var_os("PREHOD_UPDATE_SCREENSHOTS").is_some() {
        std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/screenshots"))
    } else {
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
    };
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join(name), png).expect("write screenshot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_through_the_simulator_with_a_onepass_code() {
    let pki = Pki::new();
    let rekono = start(&pki, None).await;
    let chrome = Chrome::trusting(&pki).await;
    let base = rekono.public_url();

    chrome.goto(&format!("{base}/dev/try?acr_values=20")).await;
    chrome.wait_for("Prijavljate se v storitev").await;
    save("rekono-login-sl.png", &chrome.screenshot().await);
    let chooser = chrome.rekono_password(SREDNJA).await;
    assert!(chooser.contains("Pošlji SMS") && chooser.contains("OnePass prijava"));
    save("rekono-chooser-sl.png", &chrome.screenshot().await);
    chrome.rekono_onepass(SREDNJA_TOTP).await;
    let done = chrome.wait_for("id=\"claims\"").await;
    assert!(done.contains("\"acr\": \"20\""), "{done}");
    assert!(done.contains("\"otp\""), "{done}");
    assert!(done.contains(SREDNJA.0));
    assert!(chrome
        .url()
        .await
        .starts_with(&format!("{base}/dev/callback")));

    // A fresh login in English (ui_locales), for the README's English screenshots.
    chrome
        .goto(&format!(
            "{base}/dev/try?acr_values=20&prompt=login&ui_locales=en"
        ))
        .await;
    chrome.wait_for("You are logging in to the service").await;
    save("rekono-login-en.png", &chrome.screenshot().await);
    chrome.type_into("#email", SREDNJA.0).await;
    chrome.type_into("#password", SREDNJA.1).await;
    chrome.click("#login").await;
    chrome.wait_for("Choose how to log in").await;
    save("rekono-chooser-en.png", &chrome.screenshot().await);
    chrome.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_walks_from_a_portal_through_the_bankart_login_page_and_rekono_back_to_the_portal()
{
    use prehod_test_support::login::world;
    let world = world(seed_world_options()).await;
    let chrome = Chrome::trusting(&world.pki).await;
    let portal = format!(
        "https://bips.bankart.localhost:{}/statements?year=2026",
        world.gw.https.port()
    );

    chrome.goto(&portal).await;
    chrome
        .wait_for("Pozdravljeni na prijavni strani Bankart")
        .await;
    assert!(chrome.url().await.starts_with(&format!(
        "https://login.bankart.localhost:{}/?return=",
        world.gw.https.port()
    )));
    save("bankart-login-sl.png", &chrome.screenshot().await);
    let sl_url = chrome.url().await;
    chrome.goto(&format!("{sl_url}&lang=en")).await;
    chrome.wait_for("Welcome to the Bankart login page").await;
    save("bankart-login-en.png", &chrome.screenshot().await);
    chrome.goto(&format!("{sl_url}&lang=sl")).await;
    chrome.wait_for("Prijava z Rekono računom").await;

    chrome.log_in_with_rekono(SREDNJA, SREDNJA_TOTP).await;

    let page = chrome.wait_for("Request headers the portal received").await;
    assert_eq!(
        chrome.url().await,
        portal,
        "back on the page first asked for"
    );
    assert!(
        page.contains("x-auth-email") && page.contains(SREDNJA.0),
        "{page}"
    );
    assert!(page.contains("x-auth-assertion"));
    save("bankart-portal-after-login.png", &chrome.screenshot().await);
    chrome.quit().await;
}

/// The seed's portal titles, levels and certificate login, as `prehod dev` has them.
fn seed_world_options() -> prehod_test_support::login::Options {
    use prehod_test_support::login::{CertOptions, Options};
    Options {
        portal_yaml: vec![
            ("acq", "title: Acquiring portal"),
            ("b2b", "title: B2B portal"),
            ("bips", "title: BIPS portal"),
            ("bips", "min_level: 20"),
            ("bws", "title: BWS portal"),
            ("bws", "min_level: 30"),
            ("ecmsweb", "title: CMS web"),
            ("bankomati", "title: Bankomati (ESQ)"),
        ],
        certificates: Some(CertOptions {
            crl: Some(("ca.crl.pem", "1s")),
            ..CertOptions::default()
        }),
        ..Options::default()
    }
}

/// Runs axe-core on the page open in `chrome` and fails on any WCAG 2.1 A/AA violation.
async fn assert_accessible(chrome: &Chrome, what: &str) {
    let violations = chrome.axe_violations().await;
    assert!(
        violations.is_empty(),
        "{what} ({}): WCAG 2.1 A/AA violations:\n{}",
        chrome.url().await,
        violations.join("\n")
    );
}

/// Issue 13 in a real browser: the login host's home with the applications (SL, EN, 390 px
/// wide without the language switch wrapping), a login from there, the step-up page, Rekono
/// with the e-mail filled in, "level too low", logout and the logged-out list, certificate
/// login without a certificate — each page checked by axe-core for WCAG 2.1 A/AA, and the
/// README's screenshots taken on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_walks_the_login_experience_and_every_gateway_page_passes_axe() {
    use prehod_test_support::login::{login_url, portal_url, world};
    let world = world(seed_world_options()).await;
    let chrome = Chrome::trusting(&world.pki).await;
    let home = login_url(&world, "/");

    // The check itself works: a page without a language, a title or an image's alt fails it.
    chrome
        .goto("data:text/html,<html><body><img src=\"x.png\"></body></html>")
        .await;
    let bad = chrome.axe_violations().await;
    for rule in ["html-has-lang", "document-title", "image-alt"] {
        assert!(
            bad.iter().any(|v| v.starts_with(rule)),
            "{rule} not found by axe: {bad:?}"
        );
    }

    chrome.goto(&home).await;
    chrome
        .wait_for("Aplikacije, pri katerih je prijava mogoča preko računa Rekono so naslednje:")
        .await;
    for title in [
        "Acquiring portal",
        "B2B portal",
        "BIPS portal",
        "BWS portal",
        "CMS web",
        "Bankomati (ESQ)",
    ] {
        assert!(chrome.source().await.contains(title), "{title}");
    }
    assert_accessible(&chrome, "home, SL").await;
    save("bankart-home-sl.png", &chrome.screenshot().await);
    chrome.click("#lang-switch a").await;
    chrome
        .wait_for("These are the applications you can log in to with a Rekono account:")
        .await;
    assert_accessible(&chrome, "home, EN").await;
    save("bankart-home-en.png", &chrome.screenshot().await);
    chrome.click("#lang-switch a").await;
    chrome.wait_for("Izberite način prijave").await;

    // A phone's width: nothing wider than the screen, "SL | EN" on one line.
    chrome.window_size(390, 844).await;
    chrome.goto(&home).await;
    chrome.wait_for("Aplikacije").await;
    let layout = chrome
        .execute(
            "const s = document.getElementById('lang-switch');\
             const tops = Array.from(s.children).map(c => Math.round(c.getBoundingClientRect().top));\
             return {one_line: tops.every(t => Math.abs(t - tops[0]) <= 2), \
                     width: document.documentElement.scrollWidth, viewport: window.innerWidth};",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(layout["one_line"], true, "{layout}");
    assert!(
        layout["width"].as_u64() <= layout["viewport"].as_u64(),
        "no sideways scrolling: {layout}"
    );
    assert_accessible(&chrome, "home, 390 px").await;
    save("bankart-home-390.png", &chrome.screenshot().await);
    chrome.window_size(1000, 900).await;

    // Logging in from the home lands on it, logged in (level 20).
    chrome.goto(&home).await;
    chrome.log_in_with_rekono(SREDNJA, SREDNJA_TOTP).await;
    let signed_in = chrome.wait_for("Prijavljeni ste").await;
    assert!(signed_in.contains("id=\"who-level\">20<"), "{signed_in}");
    assert_eq!(chrome.url().await, home);
    assert_accessible(&chrome, "home, logged in").await;

    // bws needs 30: the step-up page says so before Rekono.
    chrome.goto(&portal_url(&world, "bws", "/")).await;
    chrome
        .wait_for("Aplikacija BWS portal zahteva stopnjo zaupanja 30, vaša seja ima stopnjo 20.")
        .await;
    assert_accessible(&chrome, "step-up").await;
    save("bankart-step-up.png", &chrome.screenshot().await);
    chrome.click("#step-up-continue").await;
    chrome.wait_for("Prijavljate se v storitev").await;
    let email = chrome
        .execute(
            "return document.getElementById('email').value;",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(email, SREDNJA.0, "login_hint filled the e-mail in");
    chrome.type_into("#password", SREDNJA.1).await;
    chrome.click("#login").await;
    let low = chrome.wait_for("Stopnja zaupanja je prenizka").await;
    assert!(low.contains("id=\"login-certificate\"") && low.contains("id=\"back\""));
    assert_accessible(&chrome, "level too low").await;
    save("bankart-level-too-low.png", &chrome.screenshot().await);

    // The other gateway pages: the logout question, not found, 421.
    chrome.goto(&login_url(&world, "/logout")).await;
    chrome.wait_for("id=\"logout-confirm\"").await;
    assert_accessible(&chrome, "logout question").await;
    chrome.goto(&login_url(&world, "/nothing-here")).await;
    chrome.wait_for("Strani ni").await;
    assert_accessible(&chrome, "not found").await;
    chrome
        .goto(&format!(
            "https://nowhere.bankart.localhost:{}/",
            world.gw.https.port()
        ))
        .await;
    chrome.wait_for("Na tem naslovu ni aplikacije").await;
    assert_accessible(&chrome, "421").await;

    // Logout from the home; the logged-out page lists the applications.
    chrome.goto(&home).await;
    chrome.click("#logout").await;
    let out = chrome.wait_for("Odjavljeni ste").await;
    assert!(out.contains("BIPS portal") && out.contains("Bankomati (ESQ)"));
    assert_accessible(&chrome, "logged out").await;
    save("bankart-logged-out.png", &chrome.screenshot().await);

    // The login page of an own-login portal says what follows.
    chrome.goto(&portal_url(&world, "ecmsweb", "/")).await;
    let own = chrome.wait_for("Prijava v CMS web").await;
    assert!(own.contains("id=\"own-login-note\""));
    assert_accessible(&chrome, "login page of an own-login portal").await;

    // Certificate login without a certificate: why, the way back, the instructions.
    chrome.goto(&portal_url(&world, "bws", "/")).await;
    chrome.wait_for("Prijava v BWS portal").await;
    chrome.click("#login-certificate").await;
    let refused = chrome.wait_for("Brskalnik ni poslal certifikata").await;
    assert!(
        refused.contains("Navodila za prijavo s certifikatom") && refused.contains("id=\"back\"")
    );
    assert_accessible(&chrome, "certificate refused").await;
    save(
        "bankart-certificate-refused.png",
        &chrome.screenshot().await,
    );
    chrome.click("#back").await;
    chrome.wait_for("Prijava v BWS portal").await;
    chrome.quit().await;
}

/// Two identity providers in a real browser: the portal's login page shows both buttons, and
/// each logs in end to end — Rekono (the simulator) and `bankart-staff` (the simulator again,
/// another issuer and other accounts) — back on the portal with the provider's user id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_logs_in_through_each_of_two_providers() {
    use prehod_test_support::login::{portal_url, world, Options, STAFF_ANA, STAFF_ANA_TOTP};
    let world = world(Options {
        staff: true,
        portal_yaml: vec![("acq", "methods: [rekono, bankart-staff]")],
        ..Options::default()
    })
    .await;
    let portal = portal_url(&world, "acq", "/");
    for (button, account, secret, user_prefix) in [
        ("#login-rekono", SREDNJA, SREDNJA_TOTP, ""),
        (
            "#login-bankart-staff",
            STAFF_ANA,
            STAFF_ANA_TOTP,
            "bankart-staff:",
        ),
    ] {
        // A fresh browser for each: no single sign-on between the two logins.
        let chrome = Chrome::trusting(&world.pki).await;
        chrome.goto(&portal).await;
        let login_page = chrome.wait_for("Izberite način prijave").await;
        assert!(
            login_page.contains("id=\"login-rekono\"")
                && login_page.contains("id=\"login-bankart-staff\""),
            "both providers' buttons: {login_page}"
        );
        if button == "#login-bankart-staff" {
            assert_accessible(&chrome, "the login page with two providers").await;
            save(
                "bankart-login-two-providers-sl.png",
                &chrome.screenshot().await,
            );
        }
        chrome.click(button).await;
        chrome.rekono_password(account).await;
        chrome.rekono_onepass(secret).await;
        let page = chrome.wait_for("Request headers the portal received").await;
        assert_eq!(chrome.url().await, portal, "back on the portal");
        assert!(page.contains(account.0), "{page}");
        // The staff provider's user id carries its prefix; Rekono's carries none.
        assert_eq!(
            page.contains("bankart-staff:"),
            !user_prefix.is_empty(),
            "the user id names the provider: {page}"
        );
        chrome.quit().await;
    }
}
