//! The soak: the real `prehod` binary, the Rekono simulator and six demo portals (the login
//! tests' harness, `crates/test-support`), on loopback, looping a whole Rekono login (password +
//! OnePass), requests on two portals and a logout, at a bounded rate, for a fixed time, while
//! the gateway's resident memory (`VmRSS` in `/proc/PID/status`) is sampled to a CSV.
//! At the end it compares the last quarter's mean RSS with the second quarter's: "flat" when
//! within `SOAK_TOLERANCE` percent.
//!
//! `cargo test --release --bench soak` (or without `--release`: a debug gateway).
//! Env: `SOAK_SECONDS` (default 1800), `SOAK_SAMPLE_SECONDS` (30), `SOAK_PAUSE_MS` (pause
//! after each login cycle, 2500: about 20 logins a minute, under the default 30 a minute per
//! address of `rate_limits`), `SOAK_REQUESTS` (portal requests per cycle, 20),
//! `SOAK_CSV` (default `target/soak-rss.csv`), `SOAK_TOLERANCE` (5), `SOAK_IDLE` (the
//! session idle timeout, 30m; validated sessions stay cached that long, so a shorter run sees
//! the cache fill: set it below a quarter of the run to see whether memory ends flat).
//! Figures go in benches/README.md.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prehod_test_support::env_or;
use prehod_test_support::login::{log_out, login_otp, portal_url, world, Browser, Options};
use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP};

/// `VmRSS` of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn mean(values: &[u64]) -> f64 {
    values.iter().sum::<u64>() as f64 / values.len().max(1) as f64
}

#[derive(Default)]
struct Counts {
    cycles: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
}

/// One login, `requests` portal requests (each must be 200), one logout.
async fn cycle(world: &prehod_test_support::login::World, requests: u64, counts: &Counts) {
    let mut browser = Browser::new(world);
    let bips = portal_url(world, "bips", "/soak");
    let page = login_otp(world, &mut browser, &bips, SREDNJA, SREDNJA_TOTP).await;
    assert_eq!(page.status, 200, "login: {}", page.body);
    // Cookies are host-only: b2b gets its own session by single sign-on at the login host.
    let b2b = browser.follow(&portal_url(world, "b2b", "/soak")).await;
    assert_eq!(b2b.status, 200, "single sign-on to b2b: {}", b2b.body);
    for i in 0..requests {
        let portal = if i % 2 == 0 { "bips" } else { "b2b" };
        let page = browser
            .api(&portal_url(world, portal, &format!("/soak/{i}")))
            .await;
        assert_eq!(page.status, 200, "{portal}: {}", page.body);
        counts.requests.fetch_add(1, Ordering::Relaxed);
    }
    log_out(world, &mut browser).await;
    assert_eq!(
        browser.api(&bips).await.status,
        401,
        "the session ends at logout"
    );
}

fn main() {
    let seconds: u64 = env_or("SOAK_SECONDS", 1800);
    let sample = env_or::<u64>("SOAK_SAMPLE_SECONDS", 30).max(1);
    let pause = Duration::from_millis(env_or("SOAK_PAUSE_MS", 2500));
    let requests: u64 = env_or("SOAK_REQUESTS", 20);
    let tolerance = env_or::<u64>("SOAK_TOLERANCE", 5) as f64;
    let csv = std::env::var("SOAK_CSV").unwrap_or_else(|_| "target/soak-rss.csv".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        // The session idle timeout is also how long the gateway caches a validated session:
        // a run shorter than it only shows the cache filling (bounded, `session.cache_*`).
        let idle: &'static str = Box::leak(
            std::env::var("SOAK_IDLE")
                .unwrap_or_else(|_| "30m".into())
                .into_boxed_str(),
        );
        let world = Arc::new(
            world(Options {
                idle,
                ..Options::default()
            })
            .await,
        );
        let pid = world.gw.pid();
        let counts = Arc::new(Counts::default());
        println!("soak: {seconds} s, gateway pid {pid}, RSS every {sample} s to {csv}");
        let mut out = String::from("elapsed_s,rss_kib,cycles,requests,failures\n");
        let mut samples = Vec::new();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);

        let driver = {
            let (world, counts) = (world.clone(), counts.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let (w, c) = (world.clone(), counts.clone());
                    // A failed cycle (a panic in the harness's checks) is counted, not fatal.
                    let done = tokio::spawn(async move { cycle(&w, requests, &c).await }).await;
                    match done {
                        Ok(()) => counts.cycles.fetch_add(1, Ordering::Relaxed),
                        Err(_) => counts.failures.fetch_add(1, Ordering::Relaxed),
                    };
                    tokio::time::sleep(pause).await;
                }
            })
        };

        loop {
            let elapsed = started.elapsed().as_secs();
            let rss = rss_kib(pid).expect("the gateway is running");
            samples.push(rss);
            let line = format!(
                "{elapsed},{rss},{},{},{}\n",
                counts.cycles.load(Ordering::Relaxed),
                counts.requests.load(Ordering::Relaxed),
                counts.failures.load(Ordering::Relaxed)
            );
            print!("{line}");
            out.push_str(&line);
            std::fs::write(&csv, &out).expect("write the CSV");
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_secs(sample)).await;
        }
        driver.await.expect("driver");
        let quarter = (samples.len() / 4).max(1);
        let second = mean(samples.get(quarter..2 * quarter).unwrap_or(&samples));
        let last = mean(samples.get(samples.len().saturating_sub(quarter)..).unwrap_or(&samples));
        let change = (last - second) / second * 100.0;
        println!(
            "cycles {} requests {} failures {}; RSS mean second quarter {second:.0} KiB, last quarter {last:.0} KiB ({change:+.1} %): {}",
            counts.cycles.load(Ordering::Relaxed),
            counts.requests.load(Ordering::Relaxed),
            counts.failures.load(Ordering::Relaxed),
            if change.abs() <= tolerance { "flat" } else { "NOT flat" }
        );
    });
}
