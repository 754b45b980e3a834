//! Where authentication plugs in: one decision per portal request.
//!
//! The gateway core has no login yet (that is the Rekono and certificate work to come): every
//! routed request is `Allow`ed with outcome `none`, and the access log and metrics say so.
//! The login issues replace [`decide`] — the proxy already acts on all three variants.

/// What to do with a request for a portal.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Forward it upstream.
    Allow,
    /// Send the browser elsewhere (e.g. the login page) with this `Location`.
    Redirect(String),
    /// Refuse it with this status and reason (shown on the page and in the audit log).
    Deny { status: u16, reason: &'static str },
}

impl Decision {
    /// The `auth` label in metrics and the access log.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Allow => "none",
            Decision::Redirect(_) => "redirect",
            Decision::Deny { .. } => "denied",
        }
    }
}

/// The decision for a request to portal number `portal`.
pub fn decide(_portal: usize) -> Decision {
    Decision::Allow
}
