//! The audit log: one JSON line (target `prehod::audit`) per login, step-up, logout and
//! denial — who, portal, method, level, outcome, reason, request id. Never tokens or cookies.

/// What happened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    Login,
    StepUp,
    Logout,
    Denied,
}

impl Kind {
    /// The `event` field of the audit line.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Login => "login",
            Kind::StepUp => "step_up",
            Kind::Logout => "logout",
            Kind::Denied => "denied",
        }
    }
}

/// How it ended: a step-up is `started` when the browser is sent to Rekono (its end is a
/// `login` line).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Outcome {
    #[default]
    Success,
    Failure,
    Started,
}

impl Outcome {
    /// The `outcome` field of the audit line.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Started => "started",
        }
    }
}

#[derive(Default)]
pub struct Event<'a> {
    pub event: Kind,
    pub outcome: Outcome,
    /// Why, as the metric label of the refusal or the logout's kind (`back_channel`, …).
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
        event = e.event.label(),
        outcome = e.outcome.label(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_words_the_audit_log_has_always_used() {
        let kinds = [Kind::Login, Kind::StepUp, Kind::Logout, Kind::Denied].map(Kind::label);
        assert_eq!(kinds, ["login", "step_up", "logout", "denied"]);
        let outcomes = [Outcome::Success, Outcome::Failure, Outcome::Started].map(Outcome::label);
        assert_eq!(outcomes, ["success", "failure", "started"]);
    }
}
