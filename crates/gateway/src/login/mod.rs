//! The login host: the Bankart login page, the OIDC start and callback, logout (RP-initiated
//! and back-channel), the gateway's JWKS, and the message pages. Plain async functions over a
//! [`Request`]; the proxy only reads the request and writes the [`Reply`].
//!
//! [`handle`] holds the one (method, path) table of the login host; each row's handler lives
//! in the file of what it does (`home`, `oidc`, `step_up`, `sso`, `logout`, `certificate`,
//! `sessions`), over the per-request [`context::Ctx`]. A new login method is a new file and
//! new rows here.

mod certificate;
mod context;
mod home;
pub mod limit;
mod logout;
mod oidc;
mod own_paths;
pub mod sessions;
mod sso;
mod step_up;

pub use certificate::{certificate, certificate_session, check_certificate};
pub use own_paths::portal_path;
pub use sso::{redeem_sso_code, signed_in, FormCarry};

use crate::auth::AuthState;
use crate::pages::{Message, MessageView};
use crate::reply::Reply;
use crate::request::Request;
use crate::Shared;
use context::Ctx;
use home::login_page;
use logout::{backchannel_logout, logout, logout_confirmation};
use oidc::{callback, start};
use sso::adopt_sso_code;
use step_up::step_up_page;

/// Answers a request to the login host: the user's sessions pages, then the table.
pub async fn handle(shared: &Shared, auth: &AuthState, req: Request<'_>) -> Reply {
    let ctx = Ctx::new(shared, auth, &req);
    // The user's sessions: see `crate::login::sessions`.
    if let Some(resp) = crate::login::sessions::handle(shared, auth, &req, ctx.lang).await {
        return resp;
    }
    let mut resp = match (req.method.as_str(), req.path) {
        ("GET" | "HEAD", "/") => login_page(&ctx),
        ("GET", "/oidc/start") => start(&ctx).await,
        ("GET", p) if auth.providers.by_callback(p).is_some() => callback(&ctx).await,
        ("GET", "/logout") => logout_confirmation(&ctx),
        ("POST", "/logout") => logout(&ctx),
        ("GET", "/logged-out") => {
            let mut view = MessageView::new(Message::LoggedOut);
            view.apps = ctx.apps();
            ctx.page(&view)
        }
        ("GET", "/step-up") => step_up_page(&ctx),
        ("POST", "/oidc/backchannel-logout") => backchannel_logout(&ctx).await,
        ("GET", "/.well-known/jwks.json") => Reply::json(200, auth.signer.jwks()),
        ("GET", "/certificate") => ctx.message(Message::CertificateNotYet),
        ("GET", p) if p == auth.sso.path() => adopt_sso_code(&ctx),
        _ => ctx.message(Message::NotFound),
    };
    // A language the person chose (not the default from `Accept-Language`) goes along to a
    // portal with its single-sign-on code, so that the portal's own pages speak it too.
    let chosen = req
        .query()
        .get("lang")
        .is_some_and(|l| l == "en" || l == "sl")
        || crate::auth::cookie(req.headers, &auth.lang_cookie).is_some();
    if let Some((_, location)) = resp
        .headers
        .iter_mut()
        .find(|(n, l)| chosen && *n == "location" && l.contains(auth.sso.path()))
    {
        location.push_str("&lang=");
        location.push_str(ctx.lang.code());
    }
    if let Some(l) = req.query().get("lang").filter(|l| *l == "en" || *l == "sl") {
        resp = resp.cookie(crate::cookies::set_on_path(
            &auth.lang_cookie,
            l,
            "/",
            31_536_000,
        ));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{head, Dev};
    use context::oidc_refusal;
    use oidc::{attempt_cookie_name, is_state_shaped};
    use prehod_identity::oidc::OidcError;

    async fn get(dev: &Dev, target: &str) -> Reply {
        get_from(&dev.shared, dev.auth(), target).await
    }

    /// `GET target` in Slovenian from the login host of `shared`.
    async fn get_from(shared: &Shared, auth: &AuthState, target: &str) -> Reply {
        let (uri, h) = head(target, &[("accept-language", "sl")]);
        let req = Request::new(&http::Method::GET, &uri, &h, "r-login");
        handle(shared, auth, req).await
    }

    #[tokio::test]
    async fn the_login_host_table_answers_its_paths_and_404s_the_rest() {
        let dev = Dev::new();
        let jwks = get(&dev, "/.well-known/jwks.json").await;
        assert_eq!(jwks.status, 200);
        let keys: serde_json::Value = serde_json::from_slice(&jwks.body).expect("JSON");
        assert!(keys["keys"].as_array().is_some_and(|k| !k.is_empty()));
        let missing = get(&dev, "/no-such-page").await;
        assert_eq!(missing.status, 404);
        assert!(std::str::from_utf8(&missing.body).is_ok_and(|b| b.contains("r-login")));
    }

    /// The dev configuration without its `certificate_login` section.
    fn without_certificate_login(dev: &Dev) -> Shared {
        let text = crate::testing::DEV;
        let start = text
            .find("certificate_login:")
            .expect("the dev config has one");
        let end = text.find("timeouts:").expect("and timeouts after it");
        let text = format!(
            "{}{}",
            text.get(..start).unwrap_or_default(),
            text.get(end..).unwrap_or_default()
        );
        Shared::new(dev.config(&text)).expect("builds")
    }

    #[tokio::test]
    async fn certificate_login_is_offered_only_when_it_is_configured() {
        let dev = Dev::new();
        let page = get(&dev, "/").await;
        let html = String::from_utf8_lossy(&page.body).into_owned();
        assert!(html.contains("id=\"login-certificate\""), "{html}");
        let shared = without_certificate_login(&dev);
        let auth = shared.auth.as_ref().expect("login");
        let page = get_from(&shared, auth, "/").await;
        let html = String::from_utf8_lossy(&page.body).into_owned();
        assert!(html.contains("id=\"login-rekono\""), "{html}");
        assert!(
            !html.contains("login-certificate"),
            "no certificate login configured, no button: {html}"
        );
        // Nor on a portal's login page that allows certificates.
        let target = "/?return=https%3A%2F%2Facq.bankart.localhost%3A8443%2F";
        let page = get_from(&shared, auth, target).await;
        let html = String::from_utf8_lossy(&page.body).into_owned();
        assert!(html.contains("id=\"login-rekono\""), "{html}");
        assert!(!html.contains("login-certificate"), "{html}");
    }

    #[tokio::test]
    async fn a_chosen_language_is_remembered_in_a_cookie() {
        let dev = Dev::new();
        let page = get(&dev, "/?lang=en").await;
        assert_eq!(page.status, 200);
        let lang_cookie = format!("{}=en", dev.auth().lang_cookie);
        assert!(
            page.cookies().any(|c| c.starts_with(&lang_cookie)),
            "{page:?}"
        );
        let html = std::str::from_utf8(&page.body).expect("UTF-8");
        assert!(html.contains("<html lang=\"en\">"));
        // Without a choice, Accept-Language speaks, and nothing is remembered.
        let page = get(&dev, "/").await;
        assert!(page
            .cookies()
            .all(|c| !c.starts_with(&dev.auth().lang_cookie)));
    }

    #[test]
    fn a_bad_answer_is_a_failed_login_and_only_an_outage_says_unavailable() {
        let invalid = OidcError::InvalidToken("an ID token without exp".into());
        assert_eq!(
            oidc_refusal(&invalid),
            ("invalid_id_token", Message::LoginFailed)
        );
        assert_eq!(
            oidc_refusal(&OidcError::MissingIssuer),
            ("missing_issuer", Message::LoginFailed)
        );
        assert_eq!(
            oidc_refusal(&OidcError::Unavailable("timeout".into())),
            ("rekono_unavailable", Message::RekonoUnavailable)
        );
    }

    #[test]
    fn attempt_cookie_names_never_split_a_character() {
        assert_eq!(
            attempt_cookie_name("p_", "abcdefghijklmnopqrstuvwxyz"),
            "p_abcdefghijklmnop"
        );
        assert_eq!(attempt_cookie_name("p_", "short"), "p_short");
        // A multi-byte character across byte 16 is left out, not split (this panicked).
        assert_eq!(
            attempt_cookie_name("p_", "aaaaaaaaaaaaaaaé"),
            "p_aaaaaaaaaaaaaaa"
        );
        assert_eq!(attempt_cookie_name("p_", "💥💥💥💥💥"), "p_💥💥💥💥");
        assert_eq!(attempt_cookie_name("p_", ""), "p_");
    }

    #[test]
    fn only_base64url_states_name_an_attempt() {
        assert!(is_state_shaped("abcdefghijklmnop_-ABCD0123"));
        for bad in [
            "short",
            "aaaaaaaaaaaaaaa\0",
            "aaaaaaa\r\nX-Injected: 1",
            "a=b; Max-Age=9;xxxx",
            "aaaaaaaaaaaaaaaé",
        ] {
            assert!(!is_state_shaped(bad), "{bad:?}");
        }
        assert!(!is_state_shaped(&"a".repeat(129)));
    }
}
