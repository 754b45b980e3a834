//! One portal's per-request series, resolved once: `with_label_values` hashes the label
//! values and takes the family's lock at every call (~160 instructions; a request made two),
//! so a portal keeps the handles its requests found, each at its first use. Only the series of
//! the known status classes and auth outcomes are kept; any other label (none today) goes
//! through the family as before.

use std::sync::OnceLock;

use prometheus::{Histogram, IntCounter};

use super::labels::{portal_auth_outcomes, STATUS_CLASSES};
use super::Metrics;

/// The auth outcomes a portal's request ends with beyond its decision's
/// ([`portal_auth_outcomes`]): its own `/.prehod/` paths, a refusal before the decision, a panic.
const MORE_AUTH_OUTCOMES: [&str; 3] = ["login", "refused", "panic"];

/// How many auth outcomes a portal keeps handles for.
const AUTH_OUTCOMES: usize = portal_auth_outcomes().len() + MORE_AUTH_OUTCOMES.len();

/// `auth`'s place among the outcomes a portal keeps handles for.
fn auth_index(auth: &str) -> Option<usize> {
    let known = portal_auth_outcomes();
    (known.iter().chain(MORE_AUTH_OUTCOMES.iter())).position(|a| *a == auth)
}

/// A portal's request count by status class and auth outcome, and its request duration.
pub struct PortalMetrics {
    duration: OnceLock<Histogram>,
    /// By `STATUS_CLASSES` index × `AUTH_OUTCOMES` + [`auth_index`].
    requests: Box<[OnceLock<IntCounter>]>,
}

impl Default for PortalMetrics {
    fn default() -> Self {
        Self {
            duration: OnceLock::new(),
            requests: (0..STATUS_CLASSES.len() * AUTH_OUTCOMES)
                .map(|_| OnceLock::new())
                .collect(),
        }
    }
}

impl PortalMetrics {
    /// Counts a request of `portal` (this portal's name) that ended with `status` and `auth`,
    /// and observes its duration, in `metrics`' series.
    pub fn finished(&self, metrics: &Metrics, portal: &str, status: u16, auth: &str, secs: f64) {
        let class = super::status_class(status);
        let slot = STATUS_CLASSES
            .iter()
            .position(|c| *c == class)
            .and_then(|c| self.requests.get(c * AUTH_OUTCOMES + auth_index(auth)?));
        let labels = [portal, class, auth];
        match slot {
            Some(slot) => slot
                .get_or_init(|| metrics.requests.with_label_values(&labels))
                .inc(),
            None => metrics.requests.with_label_values(&labels).inc(),
        }
        let duration = self
            .duration
            .get_or_init(|| metrics.request_duration.with_label_values(&[portal]));
        duration.observe(secs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(m: &Metrics, labels: [&str; 3]) -> u64 {
        m.requests.with_label_values(&labels).get()
    }

    #[test]
    fn a_portal_counts_in_the_series_its_labels_name() {
        let m = Metrics::new().expect("metrics");
        let p = PortalMetrics::default();
        p.finished(&m, "bips", 200, "session", 0.01);
        p.finished(&m, "bips", 204, "session", 0.01);
        p.finished(&m, "bips", 302, "redirect", 0.01);
        p.finished(&m, "bips", 0, "none", 0.01);
        p.finished(&m, "bips", 200, "certificate", 0.01);
        // An outcome outside the known ones still counts, through the family.
        p.finished(&m, "bips", 200, "something-new", 0.01);
        assert_eq!(count(&m, ["bips", "2xx", "session"]), 2);
        assert_eq!(count(&m, ["bips", "3xx", "redirect"]), 1);
        assert_eq!(count(&m, ["bips", "none", "none"]), 1);
        assert_eq!(count(&m, ["bips", "2xx", "certificate"]), 1);
        assert_eq!(count(&m, ["bips", "2xx", "something-new"]), 1);
        assert_eq!(count(&m, ["bips", "2xx", "redirect"]), 0);
        let h = m.request_duration.with_label_values(&["bips"]);
        assert_eq!(h.get_sample_count(), 6);
    }

    #[test]
    fn every_outcome_has_its_own_handle() {
        let all = portal_auth_outcomes();
        let all = all.iter().chain(MORE_AUTH_OUTCOMES.iter());
        let places: Vec<_> = all.map(|a| auth_index(a)).collect();
        assert_eq!(places, (0..AUTH_OUTCOMES).map(Some).collect::<Vec<_>>());
        assert_eq!(auth_index("something-new"), None);
    }

    #[test]
    fn every_status_class_is_known() {
        for status in [0, 100, 200, 301, 404, 503, 600, 999] {
            assert!(STATUS_CLASSES.contains(&super::super::status_class(status)));
        }
    }
}
