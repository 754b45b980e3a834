//! Ending sessions, as the attacker sees it (issue 17 items 8-9, review 17b): how long a
//! logout, "end this session" and "end all" hold — past the absolute timeout, across a reload
//! that shortens it, across a restart — and that the holder of the person's Rekono single
//! sign-on cookies must authenticate afresh after either end.

use std::time::Duration;

use prehod_test_support::login::*;
use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP};

async fn end_all(world: &World, browser: &mut Browser) {
    let page = browser.navigate(&login_url(world, "/sessions")).await;
    let csrf = unescape(&page.hidden("csrf"));
    let ended = browser
        .post_form(&login_url(world, "/sessions/end-all"), &[("csrf", &csrf)])
        .await;
    assert!(ended.url.ends_with("/logged-out"), "{}", ended.url);
}

/// From a portal's login page to Rekono and, with single sign-on, straight back through the
/// callback; returns every location on the way and the last page.
async fn sso_login(world: &World, browser: &mut Browser, portal: &str) -> (Vec<String>, Page) {
    let login_page = browser.follow(&portal_url(world, portal, "/")).await;
    let mut location = rekono_link(world, &login_page);
    let mut seen = Vec::new();
    loop {
        let hop = browser.navigate(&location).await;
        match hop.location.clone() {
            Some(next) if seen.len() < 10 => {
                seen.push(next.clone());
                location = next;
            }
            _ => return (seen, hop),
        }
    }
}

/// Finding 1: the fresh authentication "end all" demands lasts only as long as the subject's
/// revocation, `now + session.absolute_timeout`. Once that has passed, a Rekono single sign-on
/// from before the end (the stolen Rekono cookie the person ended everything for) logs in
/// silently, with its old `auth_time`: nobody asked for the password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rekono_login_from_before_end_all_must_authenticate_afresh_even_after_the_absolute_timeout(
) {
    let world = world(Options {
        idle: "10s",
        absolute: "20s",
        ..Options::default()
    })
    .await;
    let acq = portal_url(&world, "acq", "/");
    let mut victim = Browser::new(&world);
    login_otp(&world, &mut victim, &acq, SREDNJA, SREDNJA_TOTP).await;
    // The thief's copy of the victim's Rekono cookies.
    let mut thief = Browser::new(&world);
    for name in ["rekono_sid", "rekono_browser", "rekono_lang"] {
        thief.carry_cookie_from(&victim, name);
    }
    end_all(&world, &mut victim).await;
    // Right after the end the thief is asked for a fresh login (held).
    let (hops, _) = sso_login(&world, &mut thief, "b2b").await;
    assert!(hops.iter().any(|h| h.contains("prompt=login")), "{hops:?}");
    // Once the absolute timeout has passed, the same Rekono session from before the end...
    tokio::time::sleep(Duration::from_secs(22)).await;
    let mut thief = Browser::new(&world);
    for name in ["rekono_sid", "rekono_browser", "rekono_lang"] {
        thief.carry_cookie_from(&victim, name);
    }
    let (hops, _) = sso_login(&world, &mut thief, "b2b").await;
    let me = thief.api(&portal_url(&world, "b2b", "/.prehod/me")).await;
    assert!(
        hops.iter().any(|h| h.contains("prompt=login")) && me.status == 401,
        "a login authenticated before the end got in without a fresh authentication: {hops:?} {} {}",
        me.status,
        me.body
    );
}

/// Finding 2: a revocation lasts `now + the current absolute_timeout`, a session until the
/// expiry sealed when it was issued. After a reload that shortens the timeouts, a logged-out
/// session's cookie works again once its revocation has lapsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logged_out_session_stays_ended_after_a_reload_shortens_the_absolute_timeout() {
    let world = world(Options {
        idle: "30s",
        absolute: "60s",
        ..Options::default()
    })
    .await;
    let acq = portal_url(&world, "acq", "/");
    let mut browser = Browser::new(&world);
    login_otp(&world, &mut browser, &acq, SREDNJA, SREDNJA_TOTP).await;
    let stolen = browser
        .cookie_at(&prehod_test_support::host("acq"), SESSION)
        .expect("acq cookie");
    world
        .gw
        .reload_with(|yaml| {
            yaml.replace("idle_timeout: 30s", "idle_timeout: 10s")
                .replace("absolute_timeout: 60s", "absolute_timeout: 15s")
        })
        .await;
    log_out(&world, &mut browser).await;
    let me = portal_url(&world, "acq", "/.prehod/me");
    assert_eq!(status_with_session_cookie(&world, &me, &stolen).await, 401);
    tokio::time::sleep(Duration::from_secs(17)).await;
    assert_eq!(
        status_with_session_cookie(&world, &me, &stolen).await,
        401,
        "the logged-out session works again once its revocation lapsed"
    );
}

/// Finding 4: without `state:` the revocations lived only in the process; a restart (which
/// SECURITY.md says sessions survive) brought every logged-out or ended session back, and
/// forgot that the next login after "end all" must be fresh. With `session.revocation_file`
/// they are kept on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_and_end_all_survive_a_restart() {
    let mut world = world(Options::default()).await;
    let path = world.gw.dir.path().join("proxy.yaml");
    let file = world.gw.dir.path().join("revocations");
    let yaml = std::fs::read_to_string(&path).expect("config");
    let with_file = yaml.replacen(
        "session:\n",
        &format!("session:\n  revocation_file: {}\n", file.display()),
        1,
    );
    assert_ne!(yaml, with_file);
    std::fs::write(&path, with_file).expect("write");
    world.gw.restart();
    let acq = portal_url(&world, "acq", "/");
    let mut one = Browser::new(&world);
    login_otp(&world, &mut one, &acq, SREDNJA, SREDNJA_TOTP).await;
    let logged_out = one
        .cookie_at(&prehod_test_support::host("acq"), SESSION)
        .expect("cookie");
    log_out(&world, &mut one).await;
    let mut two = Browser::new(&world);
    login_otp(&world, &mut two, &acq, SREDNJA, SREDNJA_TOTP).await;
    let ended = two
        .cookie_at(&prehod_test_support::host("acq"), SESSION)
        .expect("cookie");
    end_all(&world, &mut two).await;
    let me = portal_url(&world, "acq", "/.prehod/me");
    assert_eq!(
        status_with_session_cookie(&world, &me, &logged_out).await,
        401
    );
    assert_eq!(status_with_session_cookie(&world, &me, &ended).await, 401);
    world.gw.restart();
    assert_eq!(
        status_with_session_cookie(&world, &me, &logged_out).await,
        401,
        "logout forgotten"
    );
    assert_eq!(
        status_with_session_cookie(&world, &me, &ended).await,
        401,
        "end-all forgotten"
    );
    // And the next login of the person who ended everything must still be fresh.
    let mut thief = Browser::new(&world);
    for name in ["rekono_sid", "rekono_browser", "rekono_lang"] {
        thief.carry_cookie_from(&two, name);
    }
    let (hops, _) = sso_login(&world, &mut thief, "b2b").await;
    assert!(
        hops.iter().any(|h| h.contains("prompt=login")),
        "fresh login forgotten: {hops:?}"
    );
    assert_eq!(
        thief
            .api(&portal_url(&world, "b2b", "/.prehod/me"))
            .await
            .status,
        401
    );
}

/// Finding 3 (design): "End this session" for a session the person does not recognise ends
/// that id only; its holder logs straight back in through Rekono's single sign-on without a
/// password. Ending someone's session should make their next login fresh, as end-all does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_from_the_sessions_page_cannot_log_straight_back_in() {
    let world = world(Options::default()).await;
    let acq = portal_url(&world, "acq", "/");
    let mut victim = Browser::new(&world);
    login_otp(&world, &mut victim, &acq, SREDNJA, SREDNJA_TOTP).await;
    let mut thief = Browser::new(&world);
    for name in ["rekono_sid", "rekono_browser", "rekono_lang"] {
        thief.carry_cookie_from(&victim, name);
    }
    sso_login(&world, &mut thief, "b2b").await;
    assert_eq!(
        thief
            .api(&portal_url(&world, "b2b", "/.prehod/me"))
            .await
            .status,
        200
    );
    let page = victim.navigate(&login_url(&world, "/sessions")).await;
    let csrf = unescape(&page.hidden("csrf"));
    let mine = page
        .body
        .split("class=\"this-session\"")
        .nth(1)
        .expect("this session");
    let mine = mine
        .split("name=\"sid\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("sid");
    let others: Vec<String> = page
        .body
        .split("name=\"sid\" value=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .filter(|s| *s != mine)
        .map(str::to_owned)
        .collect();
    assert_eq!(others.len(), 1, "{}", page.body);
    victim
        .post_form(
            &login_url(&world, "/sessions/end"),
            &[("csrf", &csrf), ("sid", &others[0])],
        )
        .await;
    assert_eq!(
        thief
            .api(&portal_url(&world, "b2b", "/.prehod/me"))
            .await
            .status,
        401
    );
    let (hops, _) = sso_login(&world, &mut thief, "b2b").await;
    let me = thief.api(&portal_url(&world, "b2b", "/.prehod/me")).await;
    assert!(
        me.status == 401 && hops.iter().any(|h| h.contains("prompt=login")),
        "the ended session's holder is back without authenticating: {hops:?} {}",
        me.status
    );
}
