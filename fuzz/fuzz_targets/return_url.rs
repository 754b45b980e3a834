//! The return-URL check (`crates/gateway/src/return_url.rs`, compiled in by path: the gateway
//! crate needs pingora) on any text: an accepted URL is https, names a portal host and the
//! public port, carries no credentials, and is accepted again as it was returned.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/gateway/src/return_url.rs"]
mod return_url;

use std::collections::HashMap;

use libfuzzer_sys::{arbitrary, fuzz_target};

#[derive(arbitrary::Arbitrary, Debug)]
struct Input<'a> {
    value: &'a str,
    port: Option<u16>,
}

fuzz_target!(|input: Input<'_>| {
    let hosts: HashMap<String, usize> = [
        ("acq.bankart.si".to_owned(), 0),
        ("bips.bankart.si".to_owned(), 1),
    ]
    .into_iter()
    .collect();
    if let Some((normal, portal)) = return_url::accepted(input.value, &hosts, input.port) {
        let url = url::Url::parse(&normal).expect("accepted URLs parse");
        assert_eq!(url.scheme(), "https");
        assert_eq!(hosts.get(url.host_str().expect("a host")), Some(&portal));
        assert_eq!(url.port(), input.port);
        assert!(url.username().is_empty() && url.password().is_none());
        assert_eq!(
            return_url::accepted(&normal, &hosts, input.port),
            Some((normal.clone(), portal)),
            "the normalised URL is accepted as it is"
        );
    }
});
