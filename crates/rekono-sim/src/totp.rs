//! RFC 6238 time-based one-time passwords (HMAC-SHA1, 30-second steps, 6 digits), as the
//! Rekono OnePass app shows them, and the RFC 4648 base32 its secrets are written in.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;

pub const STEP_SECONDS: u64 = 30;

/// Decodes RFC 4648 base32 (upper or lower case, `=` padding and spaces ignored).
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits: u64 = 0;
    let mut count = 0u32;
    let mut out = Vec::new();
    for c in s.chars().filter(|c| *c != '=' && !c.is_whitespace()) {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return None,
        };
        bits = (bits << 5) | v;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// The HOTP value (RFC 4226) for `counter`, `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let binary = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    let code = binary % 10u32.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

/// The 6-digit code at unix time `now`.
pub fn totp(secret: &[u8], now: u64) -> String {
    hotp(secret, now / STEP_SECONDS, 6)
}

/// Whether `code` is the code of the step of `now` or of one step either side.
pub fn verify(secret: &[u8], code: &str, now: u64) -> bool {
    let step = now / STEP_SECONDS;
    [step.saturating_sub(1), step, step + 1]
        .iter()
        .any(|s| bool::from(hotp(secret, *s, 6).as_bytes().ct_eq(code.trim().as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        // RFC 6238 Appendix B, 8 digits.
        assert_eq!(hotp(secret, 59 / 30, 8), "94287082");
        assert_eq!(hotp(secret, 1_111_111_109 / 30, 8), "07081804");
        assert_eq!(hotp(secret, 1_234_567_890 / 30, 8), "89005924");
        assert_eq!(hotp(secret, 20_000_000_000 / 30, 8), "65353130");
        assert_eq!(totp(secret, 59), "287082");
    }

    #[test]
    fn window_is_one_step_each_side() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_109;
        assert!(verify(secret, &totp(secret, now - 30), now));
        assert!(verify(secret, &totp(secret, now + 30), now));
        assert!(!verify(secret, &totp(secret, now - 90), now));
        assert!(!verify(secret, &totp(secret, now + 90), now));
    }

    #[test]
    fn base32() {
        assert_eq!(
            base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap(),
            b"12345678901234567890"
        );
        assert_eq!(base32_decode("mzxw6===").unwrap(), b"foo");
        assert!(base32_decode("1!").is_none());
    }
}
