//! `Sessions::validate` on any cookie text, and on any bytes sealed as a session (what a
//! holder of the key could make): the payload parser behind the seal must never panic.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::{arbitrary, fuzz_target};
use prehod_identity::seal::Sealer;
use prehod_identity::session::Sessions;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input<'a> {
    cookie: &'a str,
    payload: &'a [u8],
    now: u64,
}

/// The purpose `session.rs` seals sessions under.
const PURPOSE: &[u8] = b"prehod session v1";

fuzz_target!(|input: Input<'_>| {
    let keys = [[3u8; 32]];
    let sessions = Sessions::new(
        Sealer::new(&keys),
        Duration::from_secs(1800),
        Duration::from_secs(36_000),
        100,
    );
    let _ = sessions.validate(input.cookie, input.now);
    if let Ok(sealed) = Sealer::new(&keys).seal(PURPOSE, input.payload) {
        let _ = sessions.validate(&sealed, input.now);
        let _ = sessions.validate(&sealed, prehod_identity::unix_now());
    }
});
