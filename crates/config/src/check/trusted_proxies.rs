//! `trusted_proxies`: the peers whose forwarding headers are believed.

use super::Checker;
use crate::Cidr;

impl Checker<'_> {
    pub(super) fn trusted_proxies(&mut self, raw: Vec<String>) -> Vec<Cidr> {
        let mut out = Vec::new();
        for (i, s) in raw.iter().enumerate() {
            match s.parse() {
                Ok(cidr) => out.push(cidr),
                Err(message) => self.problem(&format!("trusted_proxies[{i}]"), message),
            }
        }
        out
    }
}
