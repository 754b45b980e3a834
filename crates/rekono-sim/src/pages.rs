//! The simulator's pages, following the seed's Rekono screens: Slovenian by default with an
//! SL | EN switch, every form carrying the transaction id and its CSRF token, no JavaScript
//! needed (the push page refreshes itself; a small script only speeds that up).

use crate::{Factor, BASE_PATH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Sl,
    En,
}

impl Lang {
    pub fn t<'a>(self, sl: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Sl => sl,
            Lang::En => en,
        }
    }

    pub fn code(self) -> &'static str {
        self.t("sl", "en")
    }
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What every page of a login transaction needs.
pub struct Ctx<'a> {
    pub lang: Lang,
    pub client_name: &'a str,
    pub tx: &'a str,
    pub csrf: &'a str,
    /// A GET path and query that shows this page again, for the language switch.
    pub here: &'a str,
    pub links: Links<'a>,
}

/// Rekono's own pages the login screen links to (configurable: `forgot_password_url`,
/// `create_account_url`).
#[derive(Clone, Copy)]
pub struct Links<'a> {
    pub forgot_password: &'a str,
    pub create_account: &'a str,
}

impl Default for Links<'_> {
    fn default() -> Self {
        Self {
            forgot_password: crate::config::FORGOT_PASSWORD_URL,
            create_account: crate::config::CREATE_ACCOUNT_URL,
        }
    }
}

const STYLE: &str = "body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#eef2f5;color:#22313f}\
.sim{background:#ffd400;color:#222;text-align:center;font-weight:700;padding:.4rem;letter-spacing:.03em}\
main{max-width:26rem;margin:2.5rem auto;background:#fff;padding:2rem;border-radius:6px;box-shadow:0 2px 10px rgba(0,0,0,.08)}\
.logo{font-weight:800;font-size:1.6rem;color:#0a6e8a;letter-spacing:.15em;text-align:center}\
.rp{text-align:center;color:#556}.rp b{color:#22313f}h1{font-size:1.2rem;text-align:center}\
label{display:block;margin:.8rem 0 .2rem;font-size:.9rem}input{width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #b8c4ce;border-radius:4px;font-size:1rem}\
button{width:100%;margin-top:1rem;padding:.7rem;border:0;border-radius:4px;background:#0a6e8a;color:#fff;font-size:1rem;cursor:pointer}\
button.secondary{background:#fff;color:#0a6e8a;border:1px solid #0a6e8a}.option{border:1px solid #d5dde3;border-radius:6px;padding:.8rem 1rem;margin:.8rem 0}\
.option p{margin:.2rem 0;color:#556;font-size:.9rem}.err{background:#fdecea;color:#8a1c12;padding:.6rem;border-radius:4px}\
.links{display:flex;justify-content:space-between;font-size:.85rem;margin-top:1rem}a{color:#0a6e8a}\
footer{text-align:center;font-size:.8rem;color:#667;margin:1rem}";

fn layout(ctx: &Ctx<'_>, title: &str, body: &str, head_extra: &str) -> String {
    let lang = ctx.lang;
    let switch = |to: Lang| {
        let label = to.code().to_ascii_uppercase();
        if to == lang {
            format!("<b>{label}</b>")
        } else {
            format!(
                "<a href=\"{BASE_PATH}/lang?to={}&amp;back={}\">{label}</a>",
                to.code(),
                escape(
                    &url::form_urlencoded::byte_serialize(ctx.here.as_bytes()).collect::<String>()
                )
            )
        }
    };
    format!(
        "<!doctype html>\n<html lang=\"{code}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} — Rekono</title>\
<style>{STYLE}</style>{head_extra}</head><body>\
<div class=\"sim\">{sim}</div><main><div class=\"logo\">REKONO</div>\
<p class=\"rp\">{logging_in} <b>{client}</b></p>{body}</main>\
<footer>{support}: <a href=\"mailto:helpdesk@bankart.si\">helpdesk@bankart.si</a> · \
{terms} · {privacy} · {sl} | {en}<br>Rekono d.o.o. © {rights} 2022</footer></body></html>\n",
        code = lang.code(),
        sim = lang.t(
            "SIMULATOR REKONO — samo za razvoj in teste",
            "REKONO SIMULATOR — for development and tests only"
        ),
        logging_in = lang.t("Prijavljate se v storitev", "You are logging in to the service"),
        client = escape(ctx.client_name),
        support = lang.t("Podpora", "Support"),
        terms = lang.t("Pogoji uporabe", "Terms of use"),
        privacy = lang.t("Politika zasebnosti", "Privacy policy"),
        rights = lang.t("Vse pravice pridržane", "All rights reserved"),
        sl = switch(Lang::Sl),
        en = switch(Lang::En),
    )
}

fn hidden(ctx: &Ctx<'_>) -> String {
    format!(
        "<input type=\"hidden\" name=\"tx\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(ctx.tx),
        escape(ctx.csrf)
    )
}

fn error_box(error: Option<&str>) -> String {
    error
        .map(|e| format!("<p class=\"err\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default()
}

pub fn login(ctx: &Ctx<'_>, email: &str, error: Option<&str>) -> String {
    let l = ctx.lang;
    let body = format!(
        "{err}<form method=\"post\" action=\"{BASE_PATH}/login\">{hidden}\
<label for=\"email\">{email_label}</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{email}\">\
<label for=\"password\">{password}</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\" id=\"login\">{submit}</button></form>\
<div class=\"links\"><a id=\"forgot-password\" href=\"{forgot_url}\">{forgot}</a><span>{no_account} <a id=\"create-account\" href=\"{create_url}\">{create}</a></span></div>{back}",
        forgot_url = escape(ctx.links.forgot_password),
        create_url = escape(ctx.links.create_account),
        back = back_to_client(ctx),
        err = error_box(error),
        hidden = hidden(ctx),
        email_label = l.t("Vaš e-naslov", "Your e-mail address"),
        email = escape(email),
        password = l.t("Geslo", "Password"),
        submit = l.t("Prijava", "Log in"),
        forgot = l.t("Pozabljeno geslo?", "Forgotten password?"),
        no_account = l.t("Nimate računa Rekono?", "No Rekono account?"),
        create = l.t("Ustvari račun", "Create account"),
    );
    layout(ctx, l.t("Prijava", "Log in"), &body, "")
}

/// The second-factor chooser: only the factors the account's level allows.
pub fn chooser(ctx: &Ctx<'_>, factors: &[Factor], cert_url: &str, error: Option<&str>) -> String {
    let l = ctx.lang;
    let mut options = String::new();
    for f in factors {
        let (text, button, action) = match f {
            Factor::Sms => (
                l.t(
                    "Prejeli boste enkratno geslo na svojo mobilno napravo.",
                    "You will receive a one-time password on your mobile device.",
                ),
                l.t("Pošlji SMS", "Send SMS"),
                "sms",
            ),
            Factor::Otp => (
                l.t(
                    "Vpišite enkratno geslo iz aplikacije Rekono OnePass.",
                    "Type the one-time password from the Rekono OnePass app.",
                ),
                l.t("Enkratno geslo", "One-time password"),
                "otp",
            ),
            Factor::Push => (
                l.t(
                    "Potrdite obvestilo v aplikaciji Rekono OnePass.",
                    "Confirm the notification in the Rekono OnePass app.",
                ),
                l.t("OnePass prijava", "OnePass login"),
                "push",
            ),
            Factor::Certificate => {
                options.push_str(&format!(
                    "<div class=\"option\"><p>{}</p><p>POSTArCA G2 · ACNLB</p>\
<a href=\"{}\"><button type=\"button\" id=\"factor-certificate\">{}</button></a></div>",
                    l.t(
                        "Prijava z digitalnim potrdilom, povezanim z vašim računom.",
                        "Log in with a digital certificate linked to your account."
                    ),
                    escape(cert_url),
                    l.t("Digitalno potrdilo", "Digital certificate"),
                ));
                continue;
            }
        };
        options.push_str(&format!(
            "<div class=\"option\"><p>{text}</p><form method=\"post\" action=\"{BASE_PATH}/factor/{action}\">{hidden}\
<button type=\"submit\" id=\"factor-{action}\">{button}</button></form></div>",
            hidden = hidden(ctx)
        ));
    }
    let body = format!(
        "<h1>{}</h1>{}{options}{}",
        l.t("Izberite način prijave", "Choose how to log in"),
        error_box(error),
        back_to_client(ctx)
    );
    layout(
        ctx,
        l.t("Izberite način prijave", "Choose how to log in"),
        &body,
        "",
    )
}

/// The way back to the service that asked for the login (ends the login there: the
/// relying party gets `access_denied`, "cancelled by the user").
fn back_to_client(ctx: &Ctx<'_>) -> String {
    format!(
        "<form method=\"post\" action=\"{BASE_PATH}/abort\">{}<button type=\"submit\" class=\"secondary\" id=\"back-to-client\">{} {}</button></form>",
        hidden(ctx),
        ctx.lang.t("Nazaj v storitev", "Back to"),
        escape(ctx.client_name)
    )
}

fn cancel(ctx: &Ctx<'_>) -> String {
    format!(
        "<form method=\"post\" action=\"{BASE_PATH}/cancel\">{}<button type=\"submit\" class=\"secondary\" id=\"cancel\">{}</button></form>",
        hidden(ctx),
        ctx.lang.t("Preklic", "Cancel")
    )
}

/// The SMS and OnePass code screens.
pub fn code(ctx: &Ctx<'_>, factor: Factor, masked_phone: &str, error: Option<&str>) -> String {
    let l = ctx.lang;
    let (intro, action) = match factor {
        Factor::Sms => (
            format!(
                "{} {}",
                l.t("Vpišite enkratno geslo, ki smo vam ga poslali s SMS na vaš mobilni telefon", "Type the one-time password we sent by SMS to your mobile phone"),
                escape(masked_phone)
            ),
            "sms",
        ),
        _ => (
            l.t(
                "Vpišite enkratno geslo, ki ga prikazuje aplikacija Rekono OnePass. Geslo velja omejen čas.",
                "Type the one-time password shown in the Rekono OnePass app. The code is valid for a limited time only.",
            )
            .to_owned(),
            "otp",
        ),
    };
    let body = format!(
        "<h1>{title}</h1><p>{intro}</p>{err}<form method=\"post\" action=\"{BASE_PATH}/factor/{action}/verify\">{hidden}\
<label for=\"code\">{label}</label><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{{6}}\" required>\
<button type=\"submit\" id=\"confirm\">{confirm}</button></form>{cancel}",
        title = l.t("Enkratno geslo", "One-time password"),
        err = error_box(error),
        hidden = hidden(ctx),
        label = l.t("Enkratno geslo", "One-time password"),
        confirm = l.t("Potrdi", "Confirm"),
        cancel = cancel(ctx),
    );
    layout(ctx, l.t("Enkratno geslo", "One-time password"), &body, "")
}

/// The OnePass push screen: refreshes itself until the push is answered.
pub fn push_wait(ctx: &Ctx<'_>) -> String {
    let l = ctx.lang;
    let wait_url = format!("{BASE_PATH}/factor/push/wait?tx={}", ctx.tx);
    let head = format!(
        "<meta http-equiv=\"refresh\" content=\"2;url={url}\">",
        url = escape(&wait_url)
    );
    let body = format!(
        "<h1>{title}</h1><p>{text}</p><p id=\"push-status\" role=\"status\">{waiting}</p>{cancel}",
        title = l.t("Potrdite obvestilo", "Confirm the notification"),
        text = l.t(
            "Za nadaljevanje odprite svojo mobilno napravo in potrdite prejeto obvestilo, ki vam ga je poslal Rekono.",
            "To continue, open your mobile device and confirm the notification Rekono sent you."
        ),
        waiting = l.t(
            "Čakamo na vašo potrditev; stran se osveži sama.",
            "Waiting for your confirmation; this page refreshes by itself."
        ),
        cancel = cancel(ctx),
    );
    layout(
        ctx,
        l.t("Potrdite obvestilo", "Confirm the notification"),
        &body,
        &head,
    )
}

/// A dead end inside the simulator (unknown transaction, bad client registration…).
pub fn error(lang: Lang, message: &str) -> String {
    let ctx = Ctx {
        lang,
        client_name: "—",
        tx: "",
        csrf: "",
        here: BASE_PATH,
        links: Links::default(),
    };
    let body = format!(
        "<h1>{}</h1><p class=\"err\">{}</p>",
        lang.t("Napaka", "Error"),
        escape(message)
    );
    layout(&ctx, lang.t("Napaka", "Error"), &body, "")
}

pub fn logged_out(lang: Lang) -> String {
    let ctx = Ctx {
        lang,
        client_name: "—",
        tx: "",
        csrf: "",
        here: BASE_PATH,
        links: Links::default(),
    };
    let body = format!(
        "<h1>{}</h1>",
        lang.t("Odjavljeni ste.", "You are logged out.")
    );
    layout(&ctx, lang.t("Odjava", "Logged out"), &body, "")
}

/// The playground's result (`/dev/callback`): the ID token's claims, `pretty` as JSON.
pub fn claims(lang: Lang, pretty: &str) -> String {
    format!(
        "<!doctype html><html lang=\"sl\"><head><meta charset=\"utf-8\"><title>Rekono simulator — ID token</title></head>\
<body style=\"font-family:system-ui,sans-serif;margin:2rem\"><h1 id=\"done\">{}</h1><pre id=\"claims\">{}</pre>\
<p><a href=\"/dev/try\">{}</a></p></body></html>",
        lang.t("Prijava uspela: trditve žetona ID", "Logged in: the ID token's claims"),
        escape(pretty),
        lang.t("Znova", "Again")
    )
}
