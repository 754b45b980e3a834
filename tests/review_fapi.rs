//! Review of the FAPI 2.0 profile (branch `review-fapi`): the attacks on `oidc.profile: fapi2`
//! that succeed on the code as reviewed. Each test fails until its finding is fixed.

use std::time::Duration;

use prehod_test_support::hostile_op::{hostile_world, Behaviour};
use prehod_test_support::login::unescape;

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Finding 1: a hostile (or compromised, or man-in-the-middled through a trusted CA) provider
/// answers the pushed authorization request with a body of any size, and the gateway reads it
/// all into memory (`resp.json()` in `par.rs`), for every anonymous `/oidc/start`. The same
/// holds for userinfo (`userinfo.rs`) and the token endpoint. An answer from the provider must
/// be bounded (a few KiB for PAR); here 32 MiB are read whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_par_answer_is_not_read_whole_into_memory() {
    const SIZE: usize = 32 << 20;
    let world = hostile_world(Behaviour {
        fapi2: true,
        par_body: Some(SIZE),
        ..Behaviour::default()
    })
    .await;
    let before = peak_rss_kib(world.gw.pid());
    let mut browser = world.browser();
    let login_page = browser.follow(&world.portal_url("bips", "/")).await;
    let marker = "id=\"login-rekono\" href=\"";
    let at = login_page.body.find(marker).expect("Rekono button") + marker.len();
    let href = login_page.body[at..].split('"').next().unwrap_or_default();
    // The gateway's own answer may be an error or a cut connection: what matters is what it read.
    let start = tokio::time::timeout(
        Duration::from_secs(20),
        browser.http.get(world.login_url(&unescape(href))).send(),
    )
    .await
    .expect("the start answers in time");
    let (written, complete) = world.op.par_written();
    let after = peak_rss_kib(world.gw.pid());
    println!(
        "start answered {:?}; PAR body written {written} bytes, whole: {complete}; gateway peak RSS {before} -> {after} KiB",
        start.map(|r| (r.status(), r.headers().get("location").map(|l| l.len()))),
    );
    assert!(world.op.requested("/par") >= 1, "the PAR endpoint was asked");
    assert!(
        !complete && written < (4 << 20),
        "the gateway read a {SIZE}-byte PAR answer whole ({written} bytes)"
    );
}
