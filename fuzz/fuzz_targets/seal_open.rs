//! The cookie unsealer (`Sealer::open`) on any text a client can put in a cookie, under any
//! purpose; and a seal of any bytes opens to the same bytes, under that purpose only.
#![no_main]

use libfuzzer_sys::{arbitrary, fuzz_target};
use prehod_identity::seal::Sealer;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input<'a> {
    purpose: &'a [u8],
    sealed: &'a str,
    plaintext: &'a [u8],
}

fuzz_target!(|input: Input<'_>| {
    let sealer = Sealer::new(&[[7u8; 32], [9u8; 32]]);
    let _ = sealer.open(input.purpose, input.sealed);
    if let Ok(sealed) = sealer.seal(input.purpose, input.plaintext) {
        assert_eq!(
            sealer.open(input.purpose, &sealed).ok().as_deref(),
            Some(input.plaintext)
        );
        let mut other = input.purpose.to_vec();
        other.push(0);
        assert!(
            sealer.open(&other, &sealed).is_err(),
            "a seal opened under another purpose"
        );
    }
});
