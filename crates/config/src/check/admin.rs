//! `admin`: the admin listener and its API token.

use super::Checker;
use crate::{raw, Admin, Listen};

impl Checker<'_> {
    pub(super) fn admin(&mut self, raw: raw::Admin, listen: Option<&Listen>) -> Option<Admin> {
        let addr = self.socket_addr(&raw.listen, "admin.listen")?;
        if let Some(listen) = listen {
            if addr == listen.https || Some(addr) == listen.http_redirect {
                self.problem(
                    "admin.listen",
                    "the admin listener needs an address of its own, not a public listener's",
                );
            }
        }
        let api_token = match raw.api_token {
            Some(t) if t.len() < 32 || !t.bytes().all(|b| b.is_ascii_graphic()) => {
                // The token itself is not repeated.
                self.problem(
                    "admin.api_token",
                    "must be at least 32 visible ASCII characters (e.g. `openssl rand -hex 32`), best from the environment: ${PREHOD_ADMIN_TOKEN}",
                );
                None
            }
            t => t.map(crate::Secret),
        };
        Some(Admin {
            listen: addr,
            api_token,
        })
    }
}
