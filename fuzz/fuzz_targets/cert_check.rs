//! The certificate verdict (`Checker::check`) on whatever a handshake could present: any DER
//! as the leaf and chain, any (depth, error) record, verified or not; also a real client
//! certificate of the dev CA with fuzzed bytes overwritten, so that the parser and the later
//! checks (dates, key usage, extensions, user id) are reached, not only the first refusal.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::{arbitrary, fuzz_target};
use openssl::x509::X509;
use prehod_identity::cert::{Anchor, ChainError, Checker, Presented, UserId};

struct Fixture {
    checker: Checker,
    leaf: Vec<u8>,
    ca: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        prehod_devpki::generate(dir.path(), &["bankart.localhost".to_owned()]).expect("dev PKI");
        let pem = |name: &str| {
            X509::from_pem(&std::fs::read(dir.path().join(name)).expect("read")).expect("pem")
        };
        let ca = pem("ca.crt");
        let anchor = Anchor::new(
            "prehod dev CA".into(),
            vec![ca.clone()],
            UserId::Template("{organization}/{serial_number}:{common_name}".into()),
            None,
            Vec::new(),
            None,
            None,
        );
        Fixture {
            leaf: pem("clients/valid.crt").to_der().expect("der"),
            ca: ca.to_der().expect("der"),
            checker: Checker::new(vec![anchor], 4, 300, None),
        }
    })
}

#[derive(arbitrary::Arbitrary, Debug)]
struct Input {
    leaf: Option<Vec<u8>>,
    chain: Vec<Vec<u8>>,
    errors: Vec<(u32, i32)>,
    verified: bool,
    /// Use the real client certificate with these (offset, byte) overwritten.
    patch_real: Option<Vec<(u16, u8)>>,
    /// Put the dev CA at the end of the chain, as OpenSSL would.
    ca_last: bool,
    now: i64,
}

fuzz_target!(|input: Input| {
    let f = fixture();
    let leaf = match &input.patch_real {
        Some(patches) => {
            let mut der = f.leaf.clone();
            for &(at, byte) in patches {
                let len = der.len();
                if let Some(b) = der.get_mut(usize::from(at) % len) {
                    *b = byte;
                }
            }
            Some(der)
        }
        None => input.leaf.clone(),
    };
    let mut chain = input.chain.clone();
    if let Some(leaf) = &leaf {
        chain.insert(0, leaf.clone());
    }
    if input.ca_last {
        chain.push(f.ca.clone());
    }
    let presented = Presented {
        leaf,
        chain,
        errors: input
            .errors
            .iter()
            .map(|&(depth, code)| ChainError { depth, code })
            .collect(),
        verified: input.verified,
    };
    let _ = f.checker.check(&presented, input.now);
    let _ = f
        .checker
        .check(&presented, prehod_identity::unix_now() as i64);
});
