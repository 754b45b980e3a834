//! `cookies`: the prefix of the gateway's cookie names.

use super::Checker;
use crate::{raw, Cookies};

impl Checker<'_> {
    pub(super) fn cookies(&mut self, raw: raw::Cookies) -> Option<Cookies> {
        let prefix = raw.prefix.unwrap_or_else(|| "prehod".into());
        let valid = !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            self.problem("cookies.prefix", "use letters, digits, '_' and '-' only");
            return None;
        }
        Some(Cookies { prefix })
    }
}
