//! A real browser (Debian's headless Chromium) through the Rekono simulator's pages: e-mail and
//! password, the factor chooser, the OnePass code, and the claims that come back. The
//! screenshots it takes are the ones in the README (`PREHOD_UPDATE_SCREENSHOTS=1` rewrites
//! them in tests/screenshots/).

mod common;

use common::rekono::*;
use common::webdriver::{spki_hash, Chrome};
use common::Pki;

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
    let chrome = Chrome::start(&spki_hash(
        &std::fs::read(pki.path("server.crt")).expect("cert"),
    ))
    .await;
    let base = rekono.public_url();

    chrome.goto(&format!("{base}/dev/try?acr_values=20")).await;
    chrome.wait_for("Prijavljate se v storitev").await;
    save("rekono-login-sl.png", &chrome.screenshot().await);
    chrome.type_into("#email", SREDNJA.0).await;
    chrome.type_into("#password", SREDNJA.1).await;
    chrome.click("#login").await;
    let chooser = chrome.wait_for("Izberite način prijave").await;
    assert!(chooser.contains("Pošlji SMS") && chooser.contains("OnePass prijava"));
    save("rekono-chooser-sl.png", &chrome.screenshot().await);
    chrome.click("#factor-otp").await;
    chrome.wait_for("Rekono OnePass").await;
    let secret = prehod_rekono_sim::totp::base32_decode(SREDNJA_TOTP).expect("secret");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    chrome
        .type_into("#code", &prehod_rekono_sim::totp::totp(&secret, now))
        .await;
    chrome.click("#confirm").await;
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
    use common::login::{world, Options};
    let world = world(Options::default()).await;
    let chrome = Chrome::start(&spki_hash(
        &std::fs::read(world.pki.path("server.crt")).expect("cert"),
    ))
    .await;
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

    chrome.click("#login-rekono").await;
    chrome.wait_for("Prijavljate se v storitev").await;
    chrome.type_into("#email", SREDNJA.0).await;
    chrome.type_into("#password", SREDNJA.1).await;
    chrome.click("#login").await;
    chrome.wait_for("Izberite način prijave").await;
    chrome.click("#factor-otp").await;
    chrome.wait_for("Rekono OnePass").await;
    let secret = prehod_rekono_sim::totp::base32_decode(SREDNJA_TOTP).expect("secret");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    chrome
        .type_into("#code", &prehod_rekono_sim::totp::totp(&secret, now))
        .await;
    chrome.click("#confirm").await;

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
