//! `listen`: the public listeners.

use super::Checker;
use crate::{raw, Listen};

impl Checker<'_> {
    pub(super) fn listen(&mut self, raw: raw::Listen) -> Option<Listen> {
        let https = self.socket_addr(&raw.https, "listen.https");
        let http_redirect = match &raw.http_redirect {
            Some(a) => Some(self.socket_addr(a, "listen.http_redirect")?),
            None => None,
        };
        let https = https?;
        if http_redirect == Some(https) {
            self.problem("listen.http_redirect", "must differ from listen.https");
        }
        Some(Listen {
            https,
            http_redirect,
        })
    }
}
