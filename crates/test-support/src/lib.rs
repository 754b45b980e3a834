//! What the end-to-end tests and benches share (not part of any build of the gateway): the real
//! `prehod` binary started on free ports in front of real demo portals, a fresh dev PKI, the
//! Rekono simulator as the OpenID Provider, browsers that log in through it or with a client
//! certificate, Redis, the revocation server and a hostile OpenID Provider.
//!
//! Each test binary takes what it needs; nothing here is compiled into a test binary it does
//! not use. The pieces, from the bottom up:
//!
//! - [`Pki`] (pki.rs), [`free_port`], [`host`], [`wait_for`], [`env_or`] (here);
//! - [`Setup`] → [`Gateway`] (gateway.rs): a config written from the setup, the binary
//!   started, its bind verified and /healthz polled; [`demo_portal`], [`six_demo_portals`] as
//!   upstreams;
//! - [`login`]: a [`login::World`] (simulator + gateway registered with it), the browser and
//!   the login flows (Rekono, certificate);
//! - [`rekono`]: the simulator alone, its demo accounts and an `openidconnect` relying party;
//! - [`http`], [`servers`], [`clients`], [`metrics`]: reading answers, small servers on loopback,
//!   raw TLS/HTTP clients, Prometheus pages;
//! - [`fleet`], [`redis`], [`load`]: replicas, a Redis of the test's own, and a load that
//!   must see no failed request while a test changes the gateway;
//! - [`revocation`], [`der`]: a revocation server and the CA side that signs what it serves;
//! - [`hostile_op`]: an OpenID Provider that misbehaves on purpose;
//! - [`webdriver`]: headless Chromium through chromedriver;
//! - [`bench`]: the ground a whole-gateway bench starts its gateway on.

pub mod bench;
pub mod check;
pub mod clients;
pub mod der;
pub mod fleet;
pub mod gateway;
pub mod hostile_op;
pub mod http;
pub mod load;
pub mod login;
pub mod metrics;
pub mod pki;
pub mod redis;
pub mod rekono;
pub mod revocation;
pub mod servers;
pub mod webdriver;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use gateway::{
    demo_gateway, demo_portal, demo_portal_on_its_own_thread, six_demo_portals, Gateway, Setup,
};
pub use http::{http_get, received_header, received_header_names, sha256_hex, RawResponse};
pub use pki::Pki;

/// The six portals the gateway guards in the tests, in the order of the demo setup.
pub const PORTALS: [&str; 6] = ["acq", "b2b", "bips", "bws", "ecmsweb", "bankomati"];

/// The root of the workspace (for the shipped files the tests read, e.g. `deploy/dev/`).
pub const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The `prehod` binary cargo built for this test run.
///
/// Cargo (and nextest) tell an integration test or bench where the package's binaries are in
/// `CARGO_BIN_EXE_prehod` at run time as well as at build time; where that is not set (an older
/// cargo), the binary is where cargo always puts it: beside the `deps/` folder that holds the
/// running test executable.
pub fn prehod_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_prehod") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let beside_deps = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("prehod"))
        .filter(|bin| bin.is_file());
    beside_deps.unwrap_or_else(|| {
        panic!(
            "no prehod binary: CARGO_BIN_EXE_prehod is not set and none is beside {} \
             (run the tests with cargo test or cargo nextest)",
            exe.display()
        )
    })
}

/// A port nobody listens on right now. pingora cannot report the port of a `:0` listener,
/// so the harness picks one, and `Gateway::start` then proves the gateway got it (/healthz).
///
/// The port is drawn at random from 20000–32767, below the kernel's ephemeral range
/// (32768–60999): a port handed out by `bind(:0)` could be taken by any outgoing connection
/// before the gateway binds it, one outside that range only by another test's own choice.
pub fn free_port() -> u16 {
    // Never the same port twice in one test process: the ports of one gateway are picked
    // before any is bound, and two picks of one free port (1 in 12 768 per pair) made its
    // admin listener share a public listener's address (a start-up error, seen in CI).
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let mut r = [0u8; 2];
        openssl::rand::rand_bytes(&mut r).expect("randomness");
        let port = 20_000 + u16::from_le_bytes(r) % 12_768;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if given.len() > 8_000 {
            // A long-running process (a benchmark) starts over rather than run out.
            given.clear();
        }
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
}

/// The host name of `portal` in the tests (`acq.bankart.localhost`); also of the login hosts
/// (`login`, `certlogin`) and of a host no portal serves (`unknown`).
pub fn host(portal: &str) -> String {
    format!("{portal}.bankart.localhost")
}

/// Environment variable `name` read as a `T` (a bench's or test's knob), or `default` where it
/// is unset or does not parse.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Polls `done` every 20 ms; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
