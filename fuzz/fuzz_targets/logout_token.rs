//! The back-channel logout token's pure checks (anyone can POST one): the header read before
//! anything is trusted (`logout_token_header`, on the input as text and as the header of a
//! compact JWS), and the claims check (`logout_claims`) on any JSON.
//!
//! Input: 8 bytes `now` (little endian), 2 bytes clock skew, then the claims JSON — a plain
//! layout, so seeds and regression inputs can be written by hand.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use prehod_identity::oidc::{logout_claims, logout_token_header};

fuzz_target!(|data: &[u8]| {
    let Some((now, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some((skew, json)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let (now, skew) = (
        u64::from_le_bytes(*now),
        u64::from(u16::from_le_bytes(*skew)),
    );
    let _ = logout_token_header(&String::from_utf8_lossy(json));
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let _ = logout_token_header(&format!("{}.{}.sig", b64.encode(json), b64.encode(json)));
    if let Ok(claims) = serde_json::from_slice::<serde_json::Value>(json) {
        let _ = logout_claims(&claims, now, skew);
        let _ = logout_claims(&claims, prehod_identity::unix_now(), 300);
    }
});
