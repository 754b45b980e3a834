//! `reload`: how the gateway reloads by itself.

use super::Checker;
use crate::raw;

impl Checker<'_> {
    pub(super) fn reload(&mut self, raw: &raw::Reload) -> crate::Reload {
        crate::Reload {
            watch: self.duration(raw.watch.as_ref(), "reload.watch"),
        }
    }
}
