//! `timeouts` (the defaults) and `portals.*.timeouts`: the upstream timeouts.

use super::{join, Checker};
use crate::{raw, Timeouts};

impl Checker<'_> {
    pub(super) fn timeouts(
        &mut self,
        raw: &raw::Timeouts,
        key: &str,
        defaults: Timeouts,
    ) -> Timeouts {
        let mut t = defaults;
        if let Some(d) = self.duration(raw.connect.as_ref(), &join(key, "connect")) {
            t.connect = d;
        }
        if let Some(d) = self.duration(raw.read.as_ref(), &join(key, "read")) {
            t.read = d;
        }
        if let Some(d) = self.duration(raw.write.as_ref(), &join(key, "write")) {
            t.write = d;
        }
        if let Some(d) = self.duration(raw.idle.as_ref(), &join(key, "idle")) {
            t.idle = d;
        }
        t
    }
}
