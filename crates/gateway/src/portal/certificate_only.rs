//! A certificate-only portal: the handshake demanded a client certificate and, once the
//! chain, revocation and the portal's organisations accept it, it is the identity — no
//! session cookie, no login page.

use std::sync::Arc;

use prehod_config::Portal;
use prehod_identity::session::Session;

use crate::pages::Message;
use crate::reply::Reply;
use crate::request::Request;
use crate::Shared;

/// The certificate's verdict for a request to `portal`.
pub enum Verdict {
    /// Forward it with this identity.
    Allow(Arc<Session>),
    /// Refuse it with this page (403).
    Refuse(Reply),
    /// The portal asks for certificates but the gateway has no certificate login: refused
    /// (the config check makes this impossible).
    NotConfigured,
}

/// Checks the certificate the handshake presented, counts the outcome and, when refused,
/// writes the audit line and builds the page that says why.
pub async fn check(shared: &Shared, portal: &Portal, req: &Request<'_>) -> Verdict {
    let Some(certs) = shared.auth.as_ref().and_then(|a| a.certificates.as_ref()) else {
        return Verdict::NotConfigured;
    };
    let presented = req.handshake.and_then(|h| h.client_cert.as_ref());
    let kept = req.handshake.map(|h| &h.cert_verdict);
    let checked =
        crate::login::check_certificate(shared, certs, portal, presented, kept, req.request_id)
            .await;
    let counted = |outcome, label| {
        shared
            .metrics
            .certificates
            .with_label_values(&[outcome, label])
            .inc();
    };
    match checked {
        Ok(id) => {
            counted("success", "ok");
            let mut s =
                crate::login::certificate_session(&id, certs.level, prehod_identity::unix_now());
            // One identity per certificate: its assertion is reused like a session's, and its
            // header values and assertion are prepared once per connection.
            s.sid = format!("cert-{}", id.fingerprint);
            Verdict::Allow(match kept {
                Some(kept) => kept.session(s),
                None => Arc::new(s),
            })
        }
        Err(refusal) => {
            counted("failure", refusal.label());
            shared
                .metrics
                .denials
                .with_label_values(&[refusal.label()])
                .inc();
            crate::audit::write(&crate::audit::Event {
                event: crate::audit::Kind::Denied,
                outcome: crate::audit::Outcome::Failure,
                reason: Some(refusal.label()),
                portal: Some(&portal.name),
                method: Some("certificate"),
                request_id: req.request_id,
                ..Default::default()
            });
            let html = match &shared.auth {
                Some(a) => {
                    let lang = req.lang(a);
                    a.pages.message_detail(
                        lang,
                        Message::CertificateRefused,
                        &a.pages.refusal(lang, refusal),
                        "",
                        req.request_id,
                    )
                }
                None => shared.pages.error(
                    crate::pages::Page::Internal,
                    req.lang_by(&shared.lang_cookie),
                    req.request_id,
                ),
            };
            Verdict::Refuse(Reply::html(403, html))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{head, Dev};

    #[tokio::test]
    async fn no_certificate_is_refused_with_the_page_that_says_why() {
        // The attack: a request to a certificate-only portal over a connection that
        // presented no certificate (here: no handshake at all) must not be forwarded.
        let dev = Dev::new();
        let (uri, h) = head("/", &[("accept-language", "en")]);
        let req = Request::new(&http::Method::GET, &uri, &h, "r-cert");
        match check(&dev.shared, dev.portal("acq"), &req).await {
            Verdict::Refuse(reply) => {
                assert_eq!(reply.status, 403);
                assert!(std::str::from_utf8(&reply.body).is_ok_and(|b| b.contains("r-cert")));
            }
            Verdict::Allow(s) => panic!("allowed as {}", s.sub),
            Verdict::NotConfigured => panic!("the dev config has certificate login"),
        }
    }
}
