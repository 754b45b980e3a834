//! The audit log: one JSON line (target `prehod::audit`) per login, step-up, logout and
//! denial — who, portal, method, level, outcome, reason, request id. Never tokens or cookies.

#[derive(Default)]
pub struct Event<'a> {
    /// `login`, `step_up`, `logout`, `denied`.
    pub event: &'a str,
    /// `success` or `failure`.
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub sub: Option<&'a str>,
    pub email: Option<&'a str>,
    pub portal: Option<&'a str>,
    pub method: Option<&'a str>,
    pub level: Option<u8>,
    pub request_id: &'a str,
}

pub fn write(e: &Event<'_>) {
    tracing::info!(
        target: "prehod::audit",
        event = e.event,
        outcome = e.outcome,
        reason = e.reason.unwrap_or("-"),
        sub = e.sub.unwrap_or("-"),
        email = e.email.unwrap_or("-"),
        portal = e.portal.unwrap_or("-"),
        method = e.method.unwrap_or("-"),
        level = e.level.unwrap_or(0),
        request_id = e.request_id,
        "audit"
    );
}
