//! A 128-bit digest under a secret key drawn at start: the key of the caches looked up by what
//! a client sends or makes — the session cache by cookie, the signer's cache of assertions by
//! the identity they are about.

/// A value's digest under a secret key drawn at start (SipHash-1-3 with 128-bit output). As the
/// session cache's key for a cookie value: 16 bytes where the cookie (~520 bytes, ~1 650 with
/// an id token) was the key before. Keyed, so that nobody can make a cookie whose digest is
/// another session's (a cache hit skips opening the seal) — its outputs never leave the
/// process; 128 bits, so that two cookies never share one by chance. One pass of SipHash-1-3
/// costs ~2 instructions per byte, what moka's own hash of the cookie cost before; two passes
/// of SipHash-2-4 cost 13 000 instructions per request, and software SHA-256 ~30 per byte
/// (benches/README.md, issue 20, where it is still called `CookieDigest`).
#[derive(Clone)]
pub(crate) struct KeyedDigest([u64; 2]);

impl KeyedDigest {
    pub(crate) fn random() -> Self {
        let mut bytes = [0u8; 16];
        // As crate::random_id: without system randomness nothing can be kept secret.
        if let Err(e) = openssl::rand::rand_bytes(&mut bytes) {
            panic!("no system randomness ({e}): refusing to key the session cache predictably");
        }
        let mut k = [0u64; 2];
        for (k, b) in k.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(b);
            *k = u64::from_le_bytes(word);
        }
        Self(k)
    }

    pub(crate) fn of(&self, cookie: &str) -> u128 {
        use siphasher::sip128::Hasher128;
        use std::hash::Hasher;
        let mut h = self.hasher();
        h.write(cookie.as_bytes());
        h.finish128().as_u128()
    }

    /// The digest of a list of values, each after its length: two lists have one digest only
    /// when they are the same values (`"ab", "c"` is not `"a", "bc"`).
    pub(crate) fn of_parts<'a>(&self, parts: impl IntoIterator<Item = &'a [u8]>) -> u128 {
        use siphasher::sip128::Hasher128;
        use std::hash::Hasher;
        let mut h = self.hasher();
        for part in parts {
            h.write(&(part.len() as u64).to_le_bytes());
            h.write(part);
        }
        h.finish128().as_u128()
    }

    fn hasher(&self) -> siphasher::sip128::SipHasher13 {
        let [k0, k1] = self.0;
        siphasher::sip128::SipHasher13::new_with_keys(k0, k1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_has_the_digest_of_its_values_not_of_their_bytes_run_together() {
        let d = KeyedDigest::random();
        let of = |parts: &[&str]| d.of_parts(parts.iter().map(|p| p.as_bytes()));
        assert_eq!(of(&["ab", "c"]), of(&["ab", "c"]));
        assert_ne!(of(&["ab", "c"]), of(&["a", "bc"]));
        assert_ne!(of(&["ab", ""]), of(&["ab"]));
        assert_ne!(of(&["a"]), KeyedDigest::random().of_parts([&b"a"[..]]));
    }
}
