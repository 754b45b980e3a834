//! What each page shows, as plain data the handlers fill in and the templates read: no text
//! of its own (texts come from the catalogues), no HTML (the templates escape every value).

use serde::Serialize;

use super::keys::Message;

/// One application in the lists of the login host's pages.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AppView {
    pub title: String,
    pub url: String,
    /// `app_login: own`: the application's own username and password follow.
    pub own_login: bool,
}

/// Who is logged in, on the login host's home.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SessionView {
    pub name: String,
    pub email: String,
    pub user: String,
    /// In words (*Rekono račun*, *Certifikat*).
    pub method: String,
    pub level: u8,
}

/// A button on a message page.
#[derive(Clone, Debug, Serialize)]
pub struct Action {
    pub url: String,
    pub label: String,
    pub id: &'static str,
    pub secondary: bool,
}

/// A plain link on a message page (instructions, help).
#[derive(Clone, Debug, Serialize)]
pub struct Link {
    pub url: String,
    pub label: String,
    pub id: &'static str,
}

/// Everything a message page shows.
#[derive(Clone, Debug)]
pub struct MessageView {
    pub message: Message,
    /// Replaces the message's own body.
    pub detail: Option<String>,
    /// Notes under the body (the levels of a step-up, why Rekono refused).
    pub extra: Vec<String>,
    /// The one button of the older pages.
    pub action: Option<(String, String)>,
    pub actions: Vec<Action>,
    pub links: Vec<Link>,
    pub apps: Vec<AppView>,
}

impl MessageView {
    pub fn new(message: Message) -> Self {
        Self {
            message,
            detail: None,
            extra: Vec::new(),
            action: None,
            actions: Vec::new(),
            links: Vec::new(),
            apps: Vec::new(),
        }
    }
}

/// The login page: the links, and what it knows about the application and the person.
#[derive(Default)]
pub struct LoginView {
    pub links: LoginLinks,
    pub notice: Option<String>,
    /// The application the login is for (`None` on the login host's home).
    pub app: Option<AppView>,
    /// The applications listed on the home.
    pub apps: Vec<AppView>,
    /// Logged in already (the home only): who, and the logout form's token.
    pub session: Option<SessionView>,
    pub logout_csrf: String,
    /// The application does not accept this method: its button is not shown.
    pub hide_rekono: bool,
    pub hide_certificate: bool,
    /// The buttons of the OpenID providers the application accepts, in the configured order.
    pub providers: Vec<ProviderButton>,
}

/// One OpenID provider's button on the login page.
#[derive(Default, serde::Serialize)]
pub struct ProviderButton {
    /// The provider's id: the button's HTML id is `login-ID`.
    pub id: String,
    /// `/oidc/start?provider=ID&…`
    pub url: String,
    /// The configured text in the page's language; `None`: the built-in Rekono text.
    pub label: Option<String>,
    /// The Rekono account instructions link, under Rekono's button.
    pub instructions: Option<String>,
}

/// The links of the login page.
#[derive(Default)]
pub struct LoginLinks {
    pub help: String,
    pub rekono: String,
    pub rekono_instructions: String,
    pub certificate: String,
    pub certificate_instructions: String,
}

/// The sessions page (`GET /sessions` on the login host).
#[derive(Default)]
pub struct SessionsView {
    pub rows: Vec<SessionRow>,
    /// The token every form on the page posts.
    pub csrf: String,
    /// The form sent was refused (its token was not this session's): say so.
    pub refused: bool,
}

/// One of the person's sessions.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SessionRow {
    pub sid: String,
    /// When it was issued, e.g. `2026-12-01 12:08 UTC`.
    pub issued: String,
    pub last_seen: String,
    pub certificate: bool,
    /// The provider's own name (its button's text) for a session of a provider other than
    /// `rekono`; `None`: the page's words for Rekono or a certificate.
    pub provider: Option<String>,
    pub level: u8,
    /// The session of the browser that shows the page.
    pub this: bool,
}

/// A form field of the re-submit page.
#[derive(Clone, Debug, Serialize)]
pub struct Field {
    pub name: String,
    pub value: String,
}
