//! The login host's pages, rendered with minijinja from templates embedded in the binary;
//! `login.templates` in the config names a directory whose files replace them (branding).
//! Slovenian by default; English by choice (`?lang=en`, remembered) or by `Accept-Language`.

use std::path::Path;

use minijinja::{context, Environment};
use serde::Serialize;

const EMBEDDED: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("logout.html", include_str!("../templates/logout.html")),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Sl,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Sl => "sl",
            Lang::En => "en",
        }
    }

    /// `?lang=` first, then the remembered choice, then `Accept-Language` (first match).
    pub fn choose(
        query: Option<&str>,
        cookie: Option<&str>,
        accept_language: Option<&str>,
    ) -> Lang {
        let pick = |v: &str| match v {
            "en" => Some(Lang::En),
            "sl" => Some(Lang::Sl),
            _ => None,
        };
        if let Some(l) = query.and_then(pick).or_else(|| cookie.and_then(pick)) {
            return l;
        }
        accept_language
            .into_iter()
            .flat_map(|a| a.split(','))
            .map(|l| {
                l.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .find_map(|l| match l.split('-').next() {
                Some("sl") => Some(Lang::Sl),
                Some("en") => Some(Lang::En),
                _ => None,
            })
            .unwrap_or(Lang::Sl)
    }
}

#[derive(Serialize)]
pub struct Texts {
    brand: &'static str,
    welcome: &'static str,
    tagline: &'static str,
    choose: &'static str,
    help: &'static str,
    rekono: &'static str,
    rekono_instructions: &'static str,
    certificate: &'static str,
    certificate_instructions: &'static str,
    support: &'static str,
    request_id: &'static str,
    logging_in_to: &'static str,
    apps_title: &'static str,
    apps_intro: &'static str,
    own_login_note: &'static str,
    own_login_follows: &'static str,
    signed_in: &'static str,
    user: &'static str,
    user_id: &'static str,
    method: &'static str,
    level: &'static str,
    logout: &'static str,
}

impl Texts {
    /// *Prijava s certifikatom*, for buttons outside the login page.
    pub fn certificate_label(&self) -> &'static str {
        self.certificate
    }

    /// *Navodila za prijavo s certifikatom*.
    pub fn certificate_instructions_label(&self) -> &'static str {
        self.certificate_instructions
    }
}

pub fn texts(lang: Lang) -> Texts {
    match lang {
        Lang::Sl => Texts {
            brand: "Varni Spletni Prehod",
            welcome: "Pozdravljeni na prijavni strani Bankart",
            tagline: "Bankartove spletne aplikacije vam omogočajo lažje, hitrejše ter bolj učinkovito poslovanje z vašimi komitenti.",
            choose: "Izberite način prijave",
            help: "Pomoč",
            rekono: "Prijava z Rekono računom",
            rekono_instructions: "Navodila za ustvarjanje Rekono računa",
            certificate: "Prijava s certifikatom",
            certificate_instructions: "Navodila za prijavo s certifikatom",
            support: "Podpora",
            request_id: "ID zahteve",
            logging_in_to: "Prijava v",
            apps_title: "Aplikacije",
            apps_intro: "Aplikacije, pri katerih je prijava mogoča preko računa Rekono so naslednje:",
            own_login_note: "Rekono račun in uporabniško ime ter geslo za prijavo v aplikacijo",
            own_login_follows: "Po prijavi na prehodu se v aplikacijo prijavite še z njenim uporabniškim imenom in geslom.",
            signed_in: "Prijavljeni ste",
            user: "Uporabnik",
            user_id: "Identiteta",
            method: "Način prijave",
            level: "Stopnja zaupanja",
            logout: "Odjava",
        },
        Lang::En => Texts {
            brand: "Secure Web Gateway",
            welcome: "Welcome to the Bankart login page",
            tagline: "Bankart's web applications let you work with your clients more easily, faster and more efficiently.",
            choose: "Choose how to log in",
            help: "Help",
            rekono: "Log in with a Rekono account",
            rekono_instructions: "Instructions for creating a Rekono account",
            certificate: "Log in with a certificate",
            certificate_instructions: "Instructions for logging in with a certificate",
            support: "Support",
            request_id: "Request ID",
            logging_in_to: "Logging in to",
            apps_title: "Applications",
            apps_intro: "These are the applications you can log in to with a Rekono account:",
            own_login_note: "a Rekono account, then the application's own username and password",
            own_login_follows: "After the gateway's login, log in to the application with its own username and password.",
            signed_in: "You are logged in",
            user: "User",
            user_id: "Identity",
            method: "Login method",
            level: "Level of assurance",
            logout: "Log out",
        },
    }
}

/// The messages the login host shows, each with what the user can do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// The login was refused (state mismatch, bad token, …).
    LoginFailed,
    /// Rekono refused (the person cancelled, too many attempts…).
    Denied,
    /// The account's level of assurance is below the portal's.
    LevelTooLow,
    /// Rekono cannot be reached.
    RekonoUnavailable,
    /// The return address is not one of the portals.
    BadReturn,
    LoggedOut,
    /// The login method is not allowed for this portal.
    MethodNotAllowed,
    CertificateNotYet,
    NotFound,
    /// The portal admits only some users, and this is not one of them.
    UserNotAllowed,
    /// A certificate login was refused; the reason is shown with it.
    CertificateRefused,
    /// `GET /logout`: the question, answered by a form that posts the logout token.
    LogoutConfirm,
    /// A logout POST without the session's logout token (a forged cross-site request).
    LogoutRefused,
    /// A step-up returned another Rekono account than the session's: refused.
    StepUpOtherUser,
    /// A login rate limit: too many attempts from this address or certificate.
    TooManyRequests,
    /// Before a step-up: the application needs a higher level than the session has.
    StepUp,
    /// After "end all sessions": the login asked Rekono for a fresh authentication, and
    /// Rekono's answer showed none (see `crate::fresh_auth`).
    FreshLoginRequired,
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

    /// Title, body, what next.
    pub fn text(self, lang: Lang) -> (&'static str, &'static str, &'static str) {
        let sl = lang == Lang::Sl;
        match self {
            Message::LoginFailed => {
                if sl {
                    ("Prijava ni uspela", "Prijave ni bilo mogoče dokončati: odgovor ponudnika identitete ni veljaven ali je potekel.", "Poskusite se prijaviti znova.")
                } else {
                    ("The login failed", "The login could not be completed: the identity provider's answer is not valid or has expired.", "Please log in again.")
                }
            }
            Message::Denied => {
                if sl {
                    (
                        "Prijava je bila zavrnjena",
                        "Rekono prijave ni potrdil.",
                        "Poskusite znova ali se obrnite na podporo.",
                    )
                } else {
                    (
                        "The login was refused",
                        "Rekono did not confirm the login.",
                        "Try again, or contact support.",
                    )
                }
            }
            Message::LevelTooLow => {
                if sl {
                    (
                        "Stopnja zaupanja je prenizka",
                        "Aplikacija zahteva višjo stopnjo zaupanja, kot jo ima vaš račun Rekono.",
                        "Zvišajte stopnjo zaupanja računa Rekono ali se prijavite s certifikatom.",
                    )
                } else {
                    ("Level of assurance too low", "The application requires a higher level of assurance than your Rekono account has.", "Raise your Rekono account's level of assurance, or log in with a certificate.")
                }
            }
            Message::RekonoUnavailable => {
                if sl {
                    (
                        "Rekono trenutno ni dosegljiv",
                        "Ponudnik identitete Rekono se ne odziva.",
                        "Poskusite znova čez nekaj minut ali se prijavite s certifikatom.",
                    )
                } else {
                    (
                        "Rekono is not available",
                        "The Rekono identity provider is not answering.",
                        "Try again in a few minutes, or log in with a certificate.",
                    )
                }
            }
            Message::BadReturn => {
                if sl {
                    (
                        "Neveljaven naslov",
                        "Naslov, na katerega naj vas prehod vrne, ni ena od Bankartovih aplikacij.",
                        "Odprite aplikacijo neposredno, npr. https://acq.bankart.si/.",
                    )
                } else {
                    (
                        "Invalid address",
                        "The address to return to is not one of Bankart's applications.",
                        "Open the application directly, e.g. https://acq.bankart.si/.",
                    )
                }
            }
            Message::LoggedOut => {
                if sl {
                    (
                        "Odjavljeni ste",
                        "Vaša seja na Bankart Varnem Spletnem Prehodu je končana.",
                        "Za ponovno prijavo odprite aplikacijo.",
                    )
                } else {
                    (
                        "You are logged out",
                        "Your session at the Bankart Secure Web Gateway has ended.",
                        "Open an application to log in again.",
                    )
                }
            }
            Message::MethodNotAllowed => {
                if sl {
                    (
                        "Način prijave ni dovoljen",
                        "Ta aplikacija ne sprejema tega načina prijave.",
                        "Odjavite se in se prijavite na drug način.",
                    )
                } else {
                    (
                        "Login method not allowed",
                        "This application does not accept this way of logging in.",
                        "Log out and log in another way.",
                    )
                }
            }
            Message::CertificateNotYet => {
                if sl {
                    (
                        "Prijava s certifikatom še ni na voljo",
                        "Prijava s certifikatom na tem prehodu še ni vključena.",
                        "Prijavite se z računom Rekono.",
                    )
                } else {
                    (
                        "Certificate login is not available yet",
                        "Certificate login is not enabled on this gateway yet.",
                        "Log in with a Rekono account.",
                    )
                }
            }
            Message::UserNotAllowed => {
                if sl {
                    (
                        "Dostop ni dovoljen",
                        "Vaš uporabnik nima dostopa do te aplikacije.",
                        "Če menite, da bi ga moral imeti, se obrnite na podporo.",
                    )
                } else {
                    (
                        "Access not allowed",
                        "Your user has no access to this application.",
                        "If you think you should, contact support.",
                    )
                }
            }
            Message::CertificateRefused => {
                if sl {
                    ("Prijava s certifikatom ni uspela", "Certifikata ni bilo mogoče sprejeti.", "Preverite, da ste izbrali pravi certifikat, ali se prijavite z računom Rekono.")
                } else {
                    ("Certificate login failed", "The certificate could not be accepted.", "Check that you chose the right certificate, or log in with a Rekono account.")
                }
            }
            Message::LogoutConfirm => {
                if sl {
                    ("Odjava", "Ali se želite odjaviti z Bankart Varnega Spletnega Prehoda? Odjava konča sejo v vseh aplikacijah.", "Odjava")
                } else {
                    ("Log out", "Do you want to log out of the Bankart Secure Web Gateway? Logging out ends your session in every application.", "Log out")
                }
            }
            Message::LogoutRefused => {
                if sl {
                    ("Odjava ni bila potrjena", "Zahteva za odjavo ni prišla z odjavne strani prehoda, zato vaša seja ostaja odprta.", "Za odjavo odprite odjavno stran in jo potrdite.")
                } else {
                    ("The logout was not confirmed", "The logout request did not come from the gateway's logout page, so your session stays open.", "To log out, open the logout page and confirm.")
                }
            }
            Message::StepUpOtherUser => {
                if sl {
                    ("Prijavili ste se kot drug uporabnik", "Pri Rekonu ste se prijavili z drugim računom, kot je prijavljen na prehodu. Višje stopnje zaupanja zato niste dobili; vaša seja ostaja taka, kot je bila.", "Za višjo stopnjo se prijavite z istim računom Rekono. Če se želite prijaviti kot nekdo drug, se najprej odjavite.")
                } else {
                    ("You logged in as another user", "At Rekono you logged in with another account than the one logged in at the gateway. You did not get the higher level of assurance; your session is as it was.", "For the higher level, log in with the same Rekono account. To log in as someone else, log out first.")
                }
            }
            Message::TooManyRequests => {
                if sl {
                    (
                        "Preveč poskusov prijave",
                        "Z vašega naslova ali s tem certifikatom je v kratkem času prišlo preveč zahtev za prijavo.",
                        "Počakajte nekaj trenutkov in poskusite znova.",
                    )
                } else {
                    (
                        "Too many login attempts",
                        "Too many login requests came from your address or with this certificate in a short time.",
                        "Wait a moment and try again.",
                    )
                }
            }
            Message::StepUp => {
                if sl {
                    (
                        "Aplikacija zahteva višjo stopnjo zaupanja",
                        "Aplikacija zahteva višjo stopnjo zaupanja, kot jo ima vaša seja.",
                        "Pri Rekonu potrdite prijavo z načinom, ki ustreza zahtevani stopnji; vaš e-naslov je že vpisan.",
                    )
                } else {
                    (
                        "The application needs a higher level of assurance",
                        "The application needs a higher level of assurance than your session has.",
                        "At Rekono, confirm the login with a method that meets the level asked; your e-mail address is filled in.",
                    )
                }
            }
            Message::FreshLoginRequired => {
                if sl {
                    (
                        "Prijavo je treba znova potrditi",
                        "Ker so bile vse vaše seje končane, mora Rekono prijavo znova potrditi z geslom in drugim dejavnikom. Tega ni storil, zato prijava ni bila sprejeta.",
                        "Prijavite se znova; če se to ponovi, se obrnite na podporo.",
                    )
                } else {
                    (
                        "The login must be confirmed again",
                        "Because all your sessions were ended, Rekono must confirm the login again with your password and second factor. It did not, so the login was not accepted.",
                        "Log in again; if this happens again, contact support.",
                    )
                }
            }
            Message::NotFound => {
                if sl {
                    (
                        "Strani ni",
                        "Te strani na prijavnem naslovu ni.",
                        "Odprite aplikacijo, v katero se želite prijaviti.",
                    )
                } else {
                    (
                        "No such page",
                        "There is no such page on the login host.",
                        "Open the application you want to log in to.",
                    )
                }
            }
        }
    }
}

pub struct Pages {
    env: Environment<'static>,
}

#[derive(Debug, thiserror::Error)]
#[error("template {name}: {message}")]
pub struct TemplateError {
    pub name: String,
    pub message: String,
}

impl Pages {
    /// The embedded templates, each replaced by a file of the same name in `dir` if present.
    pub fn new(dir: Option<&Path>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        for (name, source) in EMBEDDED {
            let custom = dir.map(|d| d.join(name)).filter(|p| p.is_file());
            let source: String = match custom {
                Some(path) => std::fs::read_to_string(&path).map_err(|e| TemplateError {
                    name: (*name).into(),
                    message: e.to_string(),
                })?,
                None => (*source).to_owned(),
            };
            env.add_template_owned(*name, source)
                .map_err(|e| TemplateError {
                    name: (*name).into(),
                    message: e.to_string(),
                })?;
        }
        // Render both pages once now: a broken override fails at start, not per request.
        let pages = Self { env };
        let full = LoginView {
            app: Some(AppView::default()),
            apps: vec![AppView::default()],
            session: Some(SessionView {
                name: String::new(),
                email: String::new(),
                user: String::new(),
                method: String::new(),
                level: 0,
            }),
            ..LoginView::default()
        };
        let mut page = MessageView::new(Message::NotFound);
        page.action = Some(("/".into(), "x".into()));
        page.actions.push(Action {
            url: "/".into(),
            label: "x".into(),
            id: "x",
            secondary: true,
        });
        page.links.push(Link {
            url: "/".into(),
            label: "x".into(),
            id: "x",
        });
        page.apps.push(AppView::default());
        page.extra.push("x".into());
        for lang in [Lang::Sl, Lang::En] {
            pages.try_login(lang, &LoginView::default(), "", "")?;
            pages.try_login(lang, &full, "", "")?;
            pages.try_page(lang, &MessageView::new(Message::NotFound), "", "", "")?;
            pages.try_page(lang, &page, "", "", "")?;
            pages.try_logout(lang, "", "", "", "")?;
        }
        Ok(pages)
    }

    fn render(&self, name: &str, ctx: minijinja::value::Value) -> Result<String, TemplateError> {
        let err = |e: minijinja::Error| TemplateError {
            name: name.into(),
            message: e.to_string(),
        };
        self.env
            .get_template(name)
            .map_err(err)?
            .render(ctx)
            .map_err(err)
    }

    fn try_login(
        &self,
        lang: Lang,
        view: &LoginView,
        switch_url: &str,
        support: &str,
    ) -> Result<String, TemplateError> {
        let links = &view.links;
        self.render(
            "login.html",
            context! {
                lang => lang.code(),
                t => texts(lang),
                notice => view.notice,
                switch_url => switch_url,
                support_email => support,
                request_id => "",
                help_url => &links.help,
                rekono_url => &links.rekono,
                rekono_instructions_url => &links.rekono_instructions,
                certificate_url => &links.certificate,
                certificate_instructions_url => &links.certificate_instructions,
                rekono_allowed => !view.hide_rekono,
                certificate_allowed => !view.hide_certificate,
                app => &view.app,
                apps => &view.apps,
                session => &view.session,
                logout_csrf => &view.logout_csrf,
            },
        )
    }

    fn try_page(
        &self,
        lang: Lang,
        view: &MessageView,
        switch_url: &str,
        support: &str,
        request_id: &str,
    ) -> Result<String, TemplateError> {
        let (title, body, next) = view.message.text(lang);
        let (action_url, action) = view.action.clone().unzip();
        self.render(
            "message.html",
            context! {
                lang => lang.code(),
                t => texts(lang),
                title => title,
                body => view.detail.as_deref().unwrap_or(body),
                next => next,
                extra => &view.extra,
                switch_url => switch_url,
                support_email => support,
                request_id => request_id,
                action_url => action_url,
                action => action,
                actions => &view.actions,
                links => &view.links,
                apps => &view.apps,
            },
        )
    }

    fn try_logout(
        &self,
        lang: Lang,
        csrf: &str,
        switch_url: &str,
        support: &str,
        request_id: &str,
    ) -> Result<String, TemplateError> {
        let (title, body, next) = Message::LogoutConfirm.text(lang);
        self.render(
            "logout.html",
            context! {
                lang => lang.code(), t => texts(lang), title => title, body => body, next => next,
                csrf => csrf, switch_url => switch_url, support_email => support,
                request_id => request_id,
            },
        )
    }

    /// The logout confirmation: a form that posts `csrf` (the session's logout token).
    pub fn logout(
        &self,
        lang: Lang,
        csrf: &str,
        switch_url: &str,
        support: &str,
        request_id: &str,
    ) -> String {
        self.try_logout(lang, csrf, switch_url, support, request_id)
            .unwrap_or_else(|e| failed(&e))
    }

    pub fn login(&self, lang: Lang, view: &LoginView, switch_url: &str, support: &str) -> String {
        self.try_login(lang, view, switch_url, support)
            .unwrap_or_else(|e| failed(&e))
    }

    /// A message page with everything it can carry: a more specific body, notes, buttons,
    /// links and the list of applications.
    pub fn page(
        &self,
        lang: Lang,
        view: &MessageView,
        switch_url: &str,
        support: &str,
        request_id: &str,
    ) -> String {
        self.try_page(lang, view, switch_url, support, request_id)
            .unwrap_or_else(|e| failed(&e))
    }

    /// A message page whose body says something more specific (a certificate refusal's reason).
    pub fn message_detail(
        &self,
        lang: Lang,
        m: Message,
        detail: &str,
        switch_url: &str,
        support: &str,
        request_id: &str,
    ) -> String {
        let view = MessageView {
            detail: Some(detail.to_owned()),
            ..MessageView::new(m)
        };
        self.page(lang, &view, switch_url, support, request_id)
    }

    pub fn message(
        &self,
        lang: Lang,
        m: Message,
        switch_url: &str,
        support: &str,
        request_id: &str,
    ) -> String {
        self.message_action(lang, m, None, switch_url, support, request_id)
    }

    /// A message page with a button: `action` is its URL and label.
    pub fn message_action(
        &self,
        lang: Lang,
        m: Message,
        action: Option<(&str, &str)>,
        switch_url: &str,
        support: &str,
        request_id: &str,
    ) -> String {
        let view = MessageView {
            action: action.map(|(u, l)| (u.to_owned(), l.to_owned())),
            ..MessageView::new(m)
        };
        self.page(lang, &view, switch_url, support, request_id)
    }
}

fn failed(e: &TemplateError) -> String {
    format!(
        "<!doctype html><p>{}</p>",
        crate::pages::escape(&e.to_string())
    )
}

/// One application in the lists of the login host's pages.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AppView {
    pub title: String,
    pub url: String,
    /// `app_login: own`: the application's own username and password follow.
    pub own_login: bool,
}

/// Who is logged in, on the login host's home.
#[derive(Clone, Debug, Serialize)]
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

/// Why a certificate was refused, in words a bank clerk understands.
pub fn certificate_reason(lang: Lang, r: prehod_identity::cert::Refusal) -> &'static str {
    use prehod_identity::cert::Refusal as R;
    let sl = lang == Lang::Sl;
    match r {
        R::NoCertificate => {
            if sl {
                "Brskalnik ni poslal certifikata. Izberite ga, ko vas brskalnik vpraša."
            } else {
                "Your browser sent no certificate. Choose one when the browser asks."
            }
        }
        R::Expired => {
            if sl {
                "Certifikat je potekel."
            } else {
                "The certificate has expired."
            }
        }
        R::NotYetValid => {
            if sl {
                "Certifikat še ni veljaven."
            } else {
                "The certificate is not valid yet."
            }
        }
        R::IssuerExpired => {
            if sl {
                "Certifikat izdajatelja je potekel (vmesni ali korenski overitelj v verigi)."
            } else {
                "The issuer's certificate has expired (an intermediate or root authority on the chain)."
            }
        }
        R::IssuerNotYetValid => {
            if sl {
                "Certifikat izdajatelja še ni veljaven (vmesni ali korenski overitelj v verigi)."
            } else {
                "The issuer's certificate is not valid yet (an intermediate or root authority on the chain)."
            }
        }
        R::ChainInvalid => {
            if sl {
                "Verige certifikatov ni bilo mogoče preveriti."
            } else {
                "The certificate chain could not be verified."
            }
        }
        R::NotVerified => {
            if sl {
                "Certifikat v tej povezavi ni bil preverjen. Zaprite brskalnik in poskusite znova."
            } else {
                "The certificate was not verified on this connection. Close the browser and try again."
            }
        }
        R::Untrusted => {
            if sl {
                "Certifikata ni izdal izdajatelj, ki mu prehod zaupa."
            } else {
                "The certificate was not issued by an authority the gateway trusts."
            }
        }
        R::BadSignature => {
            if sl {
                "Podpis certifikata se ne ujema z izdajateljem, ki mu prehod zaupa (morda ponarejen izdajatelj)."
            } else {
                "The certificate's signature does not match the issuer the gateway trusts (possibly an impostor authority)."
            }
        }
        R::Revoked => {
            if sl {
                "Certifikat je preklican."
            } else {
                "The certificate has been revoked."
            }
        }
        R::NotForClientAuth => {
            if sl {
                "Certifikat ni namenjen prijavi (overjanju odjemalca)."
            } else {
                "The certificate is not meant for logging in (client authentication)."
            }
        }
        R::PolicyNotAllowed => {
            if sl {
                "Politika tega certifikata ni dovoljena."
            } else {
                "This certificate's policy is not allowed."
            }
        }
        R::UnknownCriticalExtension => {
            if sl {
                "Certifikat vsebuje neznano kritično razširitev."
            } else {
                "The certificate has an unknown critical extension."
            }
        }
        R::ChainTooDeep => {
            if sl {
                "Veriga certifikatov je predolga."
            } else {
                "The certificate chain is too long."
            }
        }
        R::RevokedOcsp => {
            if sl {
                "Certifikat je preklican (OCSP)."
            } else {
                "The certificate has been revoked (OCSP)."
            }
        }
        R::RevocationUnknown => {
            if sl {
                "Preklicnosti certifikata trenutno ni mogoče preveriti."
            } else {
                "The certificate's revocation status cannot be checked right now."
            }
        }
        R::Unreadable => {
            if sl {
                "Certifikata ni bilo mogoče prebrati."
            } else {
                "The certificate could not be read."
            }
        }
        R::UserNotAllowed => {
            if sl {
                "Uporabnik tega certifikata nima dostopa do aplikacije."
            } else {
                "This certificate's user has no access to the application."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_choice() {
        assert_eq!(Lang::choose(None, None, None), Lang::Sl);
        assert_eq!(Lang::choose(None, None, Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(Lang::choose(None, None, Some("de-DE, sl;q=0.8")), Lang::Sl);
        assert_eq!(Lang::choose(None, Some("en"), Some("sl")), Lang::En);
        assert_eq!(Lang::choose(Some("sl"), Some("en"), None), Lang::Sl);
    }

    #[test]
    fn pages_render_and_escape() {
        let pages = Pages::new(None).unwrap();
        let view = LoginView {
            links: LoginLinks {
                rekono: "/oidc/start?return=x&y=\"z\"".into(),
                ..Default::default()
            },
            notice: Some("<b>seja</b>".into()),
            ..Default::default()
        };
        let html = pages.login(Lang::Sl, &view, "?lang=en", "helpdesk@bankart.si");
        assert!(html.contains("Pozdravljeni na prijavni strani Bankart"));
        assert!(
            html.contains("Prijava z Rekono računom") && html.contains("Prijava s certifikatom")
        );
        assert!(
            html.contains("&lt;b&gt;seja") && !html.contains("<b>seja"),
            "notices are escaped"
        );
        assert!(!html.contains("y=\"z\""), "attributes are escaped");
        assert!(
            html.contains("<svg") && html.contains(">Bankart</title>"),
            "the logo"
        );
        let en = pages.message(Lang::En, Message::LevelTooLow, "?lang=sl", "h@b", "req-1");
        assert!(en.contains("Level of assurance too low") && en.contains("req-1"));
    }

    #[test]
    fn the_login_page_names_the_application_and_the_home_lists_them_all() {
        let pages = Pages::new(None).unwrap();
        let cms = AppView {
            title: "CMS web".into(),
            url: "https://ecmsweb.bankart.si/".into(),
            own_login: true,
        };
        let view = LoginView {
            app: Some(cms.clone()),
            hide_certificate: true,
            ..Default::default()
        };
        let html = pages.login(Lang::Sl, &view, "", "");
        assert!(html.contains("Prijava v CMS web"), "{html}");
        assert!(html.contains("id=\"own-login-note\""));
        assert!(
            !html.contains("id=\"login-certificate\""),
            "not allowed: not offered"
        );
        let home = LoginView {
            apps: vec![
                AppView {
                    title: "BIPS portal".into(),
                    url: "https://bips.bankart.si/".into(),
                    own_login: false,
                },
                cms,
            ],
            ..Default::default()
        };
        let html = pages.login(Lang::Sl, &home, "", "");
        assert!(html.contains("Aplikacije, pri katerih je prijava mogoča preko računa Rekono"));
        // (minijinja writes `/` in attributes as `&#x2f;`)
        assert!(
            html.contains("bips.bankart.si&#x2f;\">BIPS portal</a>"),
            "{html}"
        );
        assert!(html.contains("uporabniško ime ter geslo za prijavo v aplikacijo"));
        let signed_in = LoginView {
            session: Some(SessionView {
                name: "Srednja".into(),
                email: "s@r".into(),
                user: "sub-1".into(),
                method: "Rekono račun".into(),
                level: 20,
            }),
            logout_csrf: "tok".into(),
            ..home
        };
        let html = pages.login(Lang::En, &signed_in, "", "");
        assert!(html.contains("You are logged in") && html.contains("id=\"who-level\">20<"));
        assert!(html.contains("name=\"csrf\" value=\"tok\"") && html.contains("id=\"logout\""));
        assert!(
            !html.contains("id=\"login-rekono\""),
            "no chooser when logged in"
        );
    }

    #[test]
    fn a_directory_overrides_templates() {
        let dir = std::env::temp_dir().join(format!("prehod-templates-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("login.html"),
            "{% extends \"base.html\" %}{% block main %}BRANDED {{ t.welcome }}{% endblock %}",
        )
        .unwrap();
        let pages = Pages::new(Some(&dir)).unwrap();
        assert!(pages
            .login(Lang::Sl, &LoginView::default(), "", "")
            .contains("BRANDED Pozdravljeni"));
        std::fs::write(dir.join("login.html"), "{% broken").unwrap();
        assert!(
            Pages::new(Some(&dir)).is_err(),
            "a broken override fails at start"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
