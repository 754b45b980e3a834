//! A step-up that starts on a portal host: the session's level is below the portal's, so the
//! browser goes to Rekono again; counted, and written to the audit log with who asked.

use prehod_config::Portal;

use crate::request::Request;
use crate::Shared;

/// Counts the step-up in `prehod_step_ups_total` and writes its `started` audit line, naming
/// the session's person when the cookie still opens.
pub fn started(shared: &Shared, portal: &Portal, req: &Request<'_>) {
    shared
        .metrics
        .step_ups
        .with_label_values(&[&portal.name])
        .inc();
    let valid = shared.auth.as_ref().and_then(|auth| {
        let cookie = req.cookie(&auth.cookie_name)?;
        auth.sessions
            .validate_on_portal(cookie, prehod_identity::unix_now())
            .ok()
    });
    let session = valid.as_ref().map(|v| &v.session);
    crate::audit::write(&crate::audit::Event {
        event: crate::audit::Kind::StepUp,
        outcome: crate::audit::Outcome::Started,
        sub: session.map(|s| s.sub.as_str()),
        email: session.map(|s| s.email.as_str()),
        portal: Some(&portal.name),
        method: session.map(|s| s.method_label()),
        level: Some(portal.min_level),
        request_id: req.request_id,
        ..Default::default()
    });
}
