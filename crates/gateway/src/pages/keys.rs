//! The ids the Rust code looks up in the catalogues (`templates/*.ftl`): each is an enum
//! variant, listed once with its id, so that every id can be checked at start-up (a catalogue
//! without one of them is a start-up error, see `super::catalogue`) and a typo cannot compile.
//! Texts only the templates use (`{{ t.welcome }}`) are not listed here: rendering every page
//! at start-up checks them.

use http::StatusCode;
use prehod_identity::cert::Refusal;

/// An enum whose variants each name one catalogue id, with `ALL` and `key()`.
macro_rules! keyed {
    ($(#[$meta:meta])* $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $key:literal $([$($arg:ident),+])?,)+
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every variant, for the start-up check of the catalogues.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// Its id in the catalogues.
            pub fn key(self) -> &'static str {
                match self {
                    $($name::$variant => $key,)+
                }
            }

            /// The variables its text is given (`{ $app }`): a catalogue text that names
            /// another one is a start-up error.
            pub fn args(self) -> &'static [&'static str] {
                match self {
                    $($name::$variant => &[$($(stringify!($arg)),+)?],)+
                }
            }
        }
    };
}

keyed! {
    /// A text the Rust code puts on a page (a button, a note, a more specific body).
    Text {
        Certificate = "certificate",
        CertificateInstructions = "certificate_instructions",
        MethodRekono = "method_rekono",
        MethodCertificate = "method_certificate",
        NoticeExpired = "notice_expired",
        NoticeFormNotKept = "notice_form_not_kept",
        TryAgain = "try_again",
        BackTo = "back_to" [app],
        ToApplications = "to_applications",
        BackToLoginPage = "back_to_login_page",
        ContinueAtRekono = "continue_at_rekono",
        RefusalTooManyAttempts = "refusal_too_many_attempts",
        RefusalNotConfirmed = "refusal_not_confirmed",
        RefusalRefused = "refusal_refused",
        LevelTooLowFor = "level_too_low_for" [app, level],
        StepUpNeeds = "step_up_needs" [app, level],
        StepUpNeedsHave = "step_up_needs_have" [app, level, have],
        TooManyRequestsWait = "too_many_requests_wait" [wait],
    }
}

/// The id of the text that says why a certificate was refused, in words a bank clerk
/// understands: `certificate_refusal_` and the refusal's label, but for the two ids named
/// before the labels were (kept: a catalogue in `login.templates` names them).
pub fn refusal_id(r: Refusal) -> String {
    let label = match r {
        Refusal::IssuerExpired => "issuer_expired",
        Refusal::IssuerNotYetValid => "issuer_not_yet_valid",
        r => r.label(),
    };
    format!("certificate_refusal_{label}")
}

keyed! {
    /// The messages the login host shows, each with what the user can do next. In the
    /// catalogues, a message id with the attributes `.title`, `.body` and `.next`.
    Message {
        /// The login was refused (state mismatch, bad token, …).
        LoginFailed = "login_failed",
        /// Rekono refused (the person cancelled, too many attempts…).
        Denied = "denied",
        /// The account's level of assurance is below the portal's.
        LevelTooLow = "level_too_low",
        /// Rekono cannot be reached.
        RekonoUnavailable = "rekono_unavailable",
        /// The return address is not one of the portals.
        BadReturn = "bad_return",
        LoggedOut = "logged_out",
        /// The login method is not allowed for this portal.
        MethodNotAllowed = "method_not_allowed",
        CertificateNotYet = "certificate_not_yet",
        NotFound = "not_found",
        /// The portal admits only some users, and this is not one of them.
        UserNotAllowed = "user_not_allowed",
        /// A certificate login was refused; the reason is shown with it.
        CertificateRefused = "certificate_refused",
        /// `GET /logout`: the question, answered by a form that posts the logout token.
        LogoutConfirm = "logout_confirm",
        /// A logout POST without the session's logout token (a forged cross-site request).
        LogoutRefused = "logout_refused",
        /// A step-up returned another Rekono account than the session's: refused.
        StepUpOtherUser = "step_up_other_user",
        /// A login rate limit: too many attempts from this address or certificate.
        TooManyRequests = "too_many_requests",
        /// Before a step-up: the application needs a higher level than the session has.
        StepUp = "step_up",
        /// After "end all sessions": the login asked Rekono for a fresh authentication, and
        /// Rekono's answer showed none (see `crate::fresh_auth`).
        FreshLoginRequired = "fresh_login_required",
    }
}

impl Message {
    pub fn status(self) -> u16 {
        match self {
            Message::LoginFailed | Message::BadReturn => 400,
            Message::Denied | Message::LevelTooLow | Message::MethodNotAllowed => 403,
            Message::RekonoUnavailable | Message::CertificateNotYet => 503,
            Message::UserNotAllowed | Message::CertificateRefused => 403,
            Message::LoggedOut | Message::LogoutConfirm | Message::StepUp => 200,
            Message::LogoutRefused | Message::StepUpOtherUser => 403,
            Message::FreshLoginRequired => 403,
            Message::NotFound => 404,
            Message::TooManyRequests => 429,
        }
    }
}

keyed! {
    /// The gateway's own error pages on any host: no stack traces, no internal addresses,
    /// always the request id and what the user can do next. In the catalogues, an id with
    /// `.title`, `.body` and `.next`.
    Page {
        /// 400: the request could not be understood.
        BadRequest = "error_bad_request",
        /// 421: no portal at this address.
        Misdirected = "error_misdirected",
        /// 502: the portal's application is not answering.
        UpstreamUnavailable = "error_upstream_unavailable",
        /// 504: the portal's application took too long.
        UpstreamTimeout = "error_upstream_timeout",
        /// 500: the gateway failed.
        Internal = "error_internal",
        /// 405: the portal does not take this method (answered with `Allow`).
        MethodNotAllowed = "error_method_not_allowed",
        /// 503: no memory for the request's body now (answered with `Retry-After`).
        Busy = "error_busy",
    }
}

impl Page {
    pub fn status(self) -> StatusCode {
        match self {
            Page::BadRequest => StatusCode::BAD_REQUEST,
            Page::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Page::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Page::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Page::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Page::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Page::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The attributes of a [`Message`] or [`Page`] id in the catalogues.
pub const PAGE_ATTRIBUTES: [&str; 3] = ["title", "body", "next"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_name_their_arguments() {
        let mut ids: Vec<&str> = Text::ALL
            .iter()
            .map(|t| t.key())
            .chain(Message::ALL.iter().map(|m| m.key()))
            .chain(Page::ALL.iter().map(|p| p.key()))
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "an id is listed twice");
        assert_eq!(Text::StepUpNeedsHave.args(), ["app", "level", "have"]);
        assert!(Text::TryAgain.args().is_empty());
        assert_eq!(Page::Misdirected.status(), StatusCode::MISDIRECTED_REQUEST);
        assert_eq!(Message::TooManyRequests.status(), 429);
        assert_eq!(refusal_id(Refusal::Revoked), "certificate_refusal_revoked");
        assert_eq!(
            refusal_id(Refusal::IssuerExpired),
            "certificate_refusal_issuer_expired"
        );
    }
}
