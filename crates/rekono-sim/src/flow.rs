//! The provider's endpoints: discovery, JWKS, authorize and the login screens, token,
//! userinfo, end-session and back-channel logout, and the `/dev/…` endpoints.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http::{header, Method, Response, StatusCode};
use http_body_util::Full;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::keys::{random_digits, random_token};
use crate::pages::{self, Ctx, Lang};
use crate::server::{plain, Req};
use crate::totp::constant_time_eq;
use crate::{
    unix_now, AccessToken, Code, Factor, PushStatus, Session, Sim, Sms, Step, Tx, AUTHORIZE_LOG,
    BASE_PATH,
};

type Resp = Response<Full<Bytes>>;

const TX_LIFETIME: Duration = Duration::from_secs(600);
const CODE_LIFETIME: Duration = Duration::from_secs(60);
const TOKEN_LIFETIME: u64 = 300;
const MAX_PASSWORD_ATTEMPTS: u32 = 5;
const MAX_CODE_ATTEMPTS: u32 = 3;
const BROWSER_COOKIE: &str = "rekono_browser";
const SESSION_COOKIE: &str = "rekono_sid";
const LANG_COOKIE: &str = "rekono_lang";

pub(crate) async fn route(sim: &Sim, r: Req) -> Resp {
    let Some(rest) = r.path.strip_prefix(BASE_PATH) else {
        return match (r.method.clone(), r.path.as_str()) {
            (Method::GET, "/healthz") => plain(StatusCode::OK, "ok"),
            (_, p) if p.starts_with("/dev/") => dev(sim, &r).await,
            _ => plain(StatusCode::NOT_FOUND, "not found"),
        };
    };
    if r.conn.mtls && rest != "/factor/cert" {
        return plain(
            StatusCode::NOT_FOUND,
            "this listener only serves the certificate step",
        );
    }
    match (r.method.clone(), rest) {
        (Method::GET, "/.well-known/openid-configuration") => discovery(sim),
        (Method::GET, "/jwk") => json_response(StatusCode::OK, &sim.keys.jwks()),
        (Method::GET, "/authorize") => authorize(sim, &r),
        (Method::GET, "/lang") => switch_language(&r),
        (Method::POST, "/login") => login(sim, &r),
        (Method::GET, "/choose") => with_tx(sim, &r, false, |sim, r, id, tx| {
            chooser(sim, r, id, tx, None)
        }),
        (Method::GET, "/resume") => with_tx(sim, &r, false, resume),
        // Where an error page's language switch comes back to.
        (Method::GET, "" | "/") => {
            let l = lang(&r);
            html(
                StatusCode::OK,
                pages::error(
                    l,
                    l.t(
                        "Prijavo začnite v aplikaciji, v katero se želite prijaviti.",
                        "Start the login from the application you want to log in to.",
                    ),
                ),
            )
        }
        (Method::POST, "/abort") => with_tx(sim, &r, true, |sim, _, _, tx| {
            fail_tx(sim, tx, "access_denied", "login cancelled by the user")
        }),
        (Method::POST, "/cancel") => with_tx(sim, &r, true, |sim, r, id, tx| {
            tx.sms_code = None;
            tx.push = None;
            chooser(sim, r, id, tx, None)
        }),
        (Method::POST, "/factor/sms") => with_tx(sim, &r, true, send_sms),
        (Method::POST, "/factor/sms/verify") => with_tx(sim, &r, true, |s, r, id, tx| {
            verify_code(s, r, id, tx, Factor::Sms)
        }),
        (Method::POST, "/factor/otp") => with_tx(sim, &r, true, |s, r, id, tx| {
            code_page(s, r, id, tx, Factor::Otp, None)
        }),
        (Method::POST, "/factor/otp/verify") => with_tx(sim, &r, true, |s, r, id, tx| {
            verify_code(s, r, id, tx, Factor::Otp)
        }),
        (Method::POST, "/factor/push") => with_tx(sim, &r, true, start_push),
        (Method::GET, "/factor/push/wait") => with_tx(sim, &r, false, push_wait),
        (Method::GET, "/factor/push/status") => push_status(sim, &r),
        (Method::GET, "/factor/cert") => with_tx(sim, &r, false, certificate),
        (Method::POST, "/token") => token(sim, &r),
        (Method::GET | Method::POST, "/userinfo") => userinfo(sim, &r),
        (Method::GET | Method::POST, "/endsession") => end_session(sim, &r).await,
        _ => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

fn lang(r: &Req) -> Lang {
    // Slovenian unless the person chose English (like Rekono, whatever the browser says).
    let ui_locale = r.query.get("ui_locales").and_then(|l| l.split(' ').next());
    let choice = r
        .query
        .get("lang")
        .map(String::as_str)
        .or(ui_locale)
        .or_else(|| r.cookies.get(LANG_COOKIE).map(String::as_str));
    if choice == Some("en") {
        Lang::En
    } else {
        Lang::Sl
    }
}

fn html(status: StatusCode, body: String) -> Resp {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https:; frame-ancestors 'none'")
        .header("x-frame-options", "DENY")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Resp {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap_or_default()
}

fn redirect(location: &str, cookies: &[String]) -> Resp {
    let mut b = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location);
    for c in cookies {
        b = b.header(header::SET_COOKIE, c);
    }
    b.body(Full::new(Bytes::new())).unwrap_or_default()
}

fn cookie(name: &str, value: &str, max_age: Option<u64>) -> String {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax{age}")
}

/// `uri?k=v&…`, appending to an existing query.
fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", s.finish())
}

fn discovery(sim: &Sim) -> Resp {
    let iss = sim.issuer();
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/authorize"),
            "token_endpoint": format!("{iss}/token"),
            "userinfo_endpoint": format!("{iss}/userinfo"),
            "jwks_uri": format!("{iss}/jwk"),
            "end_session_endpoint": format!("{iss}/endsession"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "http://idp.rekono.si/openid/taxnumber"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "email", "email_verified", "name"],
            "acr_values_supported": ["10", "20", "30"],
            "claims_parameter_supported": false,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "authorization_response_iss_parameter_supported": true,
        }),
    )
}

fn switch_language(r: &Req) -> Resp {
    let to = if r.query.get("to").map(String::as_str) == Some("en") {
        "en"
    } else {
        "sl"
    };
    // Only back into the simulator: never an open redirect.
    let back = r
        .query
        .get("back")
        .filter(|b| b.starts_with(BASE_PATH) && !b.starts_with("//"))
        .cloned()
        .unwrap_or_else(|| BASE_PATH.to_owned());
    redirect(&back, &[cookie(LANG_COOKIE, to, Some(31_536_000))])
}

fn authorize(sim: &Sim, r: &Req) -> Resp {
    let l = lang(r);
    let q = &r.query;
    {
        let raw = r.path_and_query.split_once('?').map_or("", |(_, q)| q);
        let mut state = sim.state();
        let log = &mut state.authorize_log;
        if log.len() >= AUTHORIZE_LOG {
            log.remove(0);
        }
        log.push(
            url::form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        );
    }
    // Without a known client and an exactly registered redirect URI, nothing is redirected.
    let Some(client) = q
        .get("client_id")
        .and_then(|id| sim.config.clients.iter().position(|c| &c.client_id == id))
    else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error(
                l,
                l.t(
                    "Neznan odjemalec (client_id).",
                    "Unknown client (client_id).",
                ),
            ),
        );
    };
    let redirect_uri = q.get("redirect_uri").cloned().unwrap_or_default();
    if !sim.config.clients[client]
        .redirect_uris
        .contains(&redirect_uri)
    {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error(
                l,
                l.t(
                    "Naslov za preusmeritev (redirect_uri) ni registriran.",
                    "The redirect_uri is not registered for this client.",
                ),
            ),
        );
    }
    let state = q.get("state").cloned();
    let fail = |error: &str, description: &str| {
        let mut params = vec![("error", error), ("error_description", description)];
        if let Some(s) = &state {
            params.push(("state", s));
        }
        let iss = sim.issuer();
        params.push(("iss", &iss));
        redirect(&with_params(&redirect_uri, &params), &[])
    };
    if q.get("response_type").map(String::as_str) != Some("code") {
        return fail(
            "unsupported_response_type",
            "only the code flow is supported",
        );
    }
    if !q
        .get("scope")
        .is_some_and(|s| s.split(' ').any(|s| s == "openid"))
    {
        return fail("invalid_scope", "scope must include openid");
    }
    let challenge = q.get("code_challenge").cloned().unwrap_or_default();
    match q.get("code_challenge_method").map(String::as_str) {
        Some("S256") if challenge.len() == 43 => {}
        Some("S256") => {
            return fail(
                "invalid_request",
                "code_challenge must be a base64url SHA-256",
            )
        }
        Some(_) => {
            return fail(
                "invalid_request",
                "only the S256 code_challenge_method is accepted",
            )
        }
        None => {
            return fail(
                "invalid_request",
                "PKCE (code_challenge with S256) is required",
            )
        }
    }
    let min_level = q
        .get("acr_values")
        .and_then(|v| v.split(' ').filter_map(|a| a.parse::<u8>().ok()).min());
    let max_age: Option<u64> = q.get("max_age").and_then(|m| m.parse().ok());
    let prompt_login = q
        .get("prompt")
        .is_some_and(|p| p.split(' ').any(|p| p == "login"));
    if q.get("prompt")
        .is_some_and(|p| p.split(' ').any(|p| p == "none"))
    {
        // Silent authentication is answered from the SSO session only.
        let fresh = r.cookies.get(SESSION_COOKIE).and_then(|sid| {
            let state = sim.state();
            state.sessions.get(sid).map(|s| (sid.clone(), s.acr))
        });
        match fresh {
            Some((sid, acr)) if min_level.is_none_or(|m| acr >= m) => {
                return issue_from_session(
                    sim,
                    client,
                    &redirect_uri,
                    state.as_deref(),
                    q.get("nonce").cloned(),
                    &challenge,
                    &sid,
                );
            }
            _ => return fail("login_required", "no session"),
        }
    }

    let mut set_cookies = Vec::new();
    // OIDC ui_locales: the relying party's language choice holds for the whole login.
    if let Some(locale) = q.get("ui_locales").and_then(|l| l.split(' ').next()) {
        let code = if locale.starts_with("en") { "en" } else { "sl" };
        set_cookies.push(cookie(LANG_COOKIE, code, Some(31_536_000)));
    }
    let browser = match r.cookies.get(BROWSER_COOKIE) {
        Some(b) if b.len() >= 16 => b.clone(),
        _ => {
            let b = random_token(16);
            set_cookies.push(cookie(BROWSER_COOKIE, &b, None));
            b
        }
    };

    // Single sign-on: an existing session that is strong and fresh enough gets a code at once.
    if !prompt_login {
        if let Some(sid) = r.cookies.get(SESSION_COOKIE) {
            let usable = {
                let state = sim.state();
                state.sessions.get(sid).is_some_and(|s| {
                    s.browser == browser
                        && min_level.is_none_or(|m| s.acr >= m)
                        && max_age.is_none_or(|age| unix_now().saturating_sub(s.auth_time) <= age)
                })
            };
            if usable {
                return issue_from_session(
                    sim,
                    client,
                    &redirect_uri,
                    state.as_deref(),
                    q.get("nonce").cloned(),
                    &challenge,
                    sid,
                );
            }
        }
    }

    let id = random_token(18);
    let tx = Tx {
        client,
        redirect_uri,
        state,
        nonce: q.get("nonce").cloned(),
        code_challenge: challenge,
        min_level,
        target_level: 0,
        browser,
        csrf: random_token(18),
        created: Instant::now(),
        account: None,
        password_attempts: 0,
        code_attempts: 0,
        sms_code: None,
        push: None,
        step: Step::Login {
            email: q.get("login_hint").cloned().unwrap_or_default(),
        },
    };
    let here = resume_path(&id);
    let page = pages::login(
        &Ctx {
            lang: l,
            client_name: &sim.config.clients[client].name,
            tx: &id,
            csrf: &tx.csrf,
            here: &here,
            links: links(sim),
        },
        q.get("login_hint").map_or("", String::as_str),
        None,
    );
    {
        let mut state = sim.state();
        state.txs.retain(|_, t| t.created.elapsed() < TX_LIFETIME);
        state.txs.insert(id, tx);
    }
    let mut resp = html(StatusCode::OK, page);
    for c in set_cookies {
        if let Ok(v) = header::HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// Runs `f` on the transaction named by the request, after checking it belongs to this
/// browser and (for POSTs) that the CSRF token matches.
fn with_tx(
    sim: &Sim,
    r: &Req,
    post: bool,
    f: impl FnOnce(&Sim, &Req, &str, &mut Tx) -> Resp,
) -> Resp {
    let l = lang(r);
    let source = if post { &r.form } else { &r.query };
    let id = source.get("tx").cloned().unwrap_or_default();
    let mut state = sim.state();
    let Some(tx) = state
        .txs
        .get_mut(&id)
        .filter(|t| t.created.elapsed() < TX_LIFETIME)
    else {
        drop(state);
        return html(
            StatusCode::BAD_REQUEST,
            pages::error(
                l,
                l.t(
                    "Prijava je potekla ali ne obstaja. Začnite znova v aplikaciji.",
                    "This login has expired or does not exist. Start again from the application.",
                ),
            ),
        );
    };
    let browser_ok = r
        .cookies
        .get(BROWSER_COOKIE)
        .is_some_and(|b| constant_time_eq(b.as_bytes(), tx.browser.as_bytes()));
    let csrf_ok = !post
        || source
            .get("csrf")
            .is_some_and(|c| constant_time_eq(c.as_bytes(), tx.csrf.as_bytes()));
    if !browser_ok || !csrf_ok {
        drop(state);
        return html(
            StatusCode::FORBIDDEN,
            pages::error(
                l,
                l.t(
                    "Zahteva ni veljavna (CSRF).",
                    "The request is not valid (CSRF).",
                ),
            ),
        );
    }
    // The handler needs the simulator's other state too: take the transaction out meanwhile.
    let mut tx_owned = match state.txs.remove(&id) {
        Some(t) => t,
        None => return plain(StatusCode::INTERNAL_SERVER_ERROR, "transaction vanished"),
    };
    drop(state);
    let resp = f(sim, r, &id, &mut tx_owned);
    // A finished transaction (code issued or refused) is not put back.
    if resp.status() != StatusCode::SEE_OTHER
        || resp
            .headers()
            .get(header::LOCATION)
            .is_some_and(|l| l.to_str().is_ok_and(|l| l.starts_with(BASE_PATH)))
    {
        sim.state().txs.insert(id, tx_owned);
    }
    resp
}

fn ctx<'a>(sim: &'a Sim, r: &'a Req, id: &'a str, tx: &'a Tx, here: &'a str) -> Ctx<'a> {
    Ctx {
        lang: lang(r),
        client_name: &sim.config.clients[tx.client].name,
        tx: id,
        csrf: &tx.csrf,
        here,
        links: links(sim),
    }
}

/// The page a language switch comes back to: the transaction's current screen, by GET (a
/// page reached by a form POST cannot be loaded again).
fn resume_path(id: &str) -> String {
    format!("{BASE_PATH}/resume?tx={id}")
}

fn links(sim: &Sim) -> pages::Links<'_> {
    pages::Links {
        forgot_password: &sim.config.forgot_password_url,
        create_account: &sim.config.create_account_url,
    }
}

/// `GET /resume?tx=…`: the transaction's current screen again (after a language switch).
fn resume(sim: &Sim, r: &Req, id: &str, tx: &mut Tx) -> Resp {
    match tx.step.clone() {
        Step::Login { email } => {
            let here = resume_path(id);
            html(
                StatusCode::OK,
                pages::login(&ctx(sim, r, id, tx, &here), &email, None),
            )
        }
        Step::Chooser => chooser(sim, r, id, tx, None),
        Step::Code(factor) => code_page(sim, r, id, tx, factor, None),
        Step::Push => push_wait(sim, r, id, tx),
    }
}

/// An error back to the relying party, ending the transaction.
fn fail_tx(sim: &Sim, tx: &Tx, error: &str, description: &str) -> Resp {
    let iss = sim.issuer();
    let mut params = vec![
        ("error", error),
        ("error_description", description),
        ("iss", iss.as_str()),
    ];
    if let Some(s) = &tx.state {
        params.push(("state", s));
    }
    redirect(&with_params(&tx.redirect_uri, &params), &[])
}

fn login(sim: &Sim, r: &Req) -> Resp {
    with_tx(sim, r, true, |sim, r, id, tx| {
        let l = lang(r);
        let email = r
            .form
            .get("email")
            .map(|e| e.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let password = r.form.get("password").cloned().unwrap_or_default();
        let account = sim
            .config
            .accounts
            .iter()
            .position(|a| a.email.eq_ignore_ascii_case(&email));
        let ok = account
            .is_some_and(|a| verify_password(&sim.config.accounts[a].password_hash, &password));
        if !ok {
            tx.password_attempts += 1;
            *sim.state().failures.entry(email.clone()).or_default() += 1;
            tracing::info!(email = %email, attempts = tx.password_attempts, "rekono-sim: wrong e-mail or password");
            if tx.password_attempts >= MAX_PASSWORD_ATTEMPTS {
                return fail_tx(sim, tx, "access_denied", "too many failed login attempts");
            }
            tx.step = Step::Login {
                email: email.clone(),
            };
            let left = MAX_PASSWORD_ATTEMPTS - tx.password_attempts;
            let message = format!(
                "{} {left}",
                l.t(
                    "Napačen e-naslov ali geslo. Preostali poskusi:",
                    "Wrong e-mail address or password. Attempts left:"
                )
            );
            let here = resume_path(id);
            return html(
                StatusCode::OK,
                pages::login(&ctx(sim, r, id, tx, &here), &email, Some(&message)),
            );
        }
        let Some(a) = account else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "account vanished");
        };
        let level = sim.config.accounts[a].level;
        if tx.min_level.is_some_and(|m| m > level) {
            return fail_tx(
                sim,
                tx,
                "unmet_authentication_requirements",
                &format!("the account's level of assurance ({level}) is below the requested one"),
            );
        }
        tx.account = Some(a);
        tx.target_level = tx.min_level.unwrap_or(level);
        redirect(&format!("{BASE_PATH}/choose?tx={id}"), &[])
    })
}

fn verify_password(hash: &str, password: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn chooser(sim: &Sim, r: &Req, id: &str, tx: &mut Tx, error: Option<&str>) -> Resp {
    let here = resume_path(id);
    let Some(a) = tx.account else {
        return html(
            StatusCode::OK,
            pages::login(&ctx(sim, r, id, tx, &here), "", None),
        );
    };
    tx.step = Step::Chooser;
    let factors = sim.factors_for(&sim.config.accounts[a], tx.target_level);
    let cert_url = format!(
        "{}{BASE_PATH}/factor/cert?tx={id}",
        sim.config.public_mtls_url
    );
    html(
        StatusCode::OK,
        pages::chooser(&ctx(sim, r, id, tx, &here), &factors, &cert_url, error),
    )
}

/// The account of the transaction, if it may use `factor`.
fn allowed(sim: &Sim, tx: &Tx, factor: Factor) -> Option<usize> {
    let a = tx.account?;
    sim.factors_for(&sim.config.accounts[a], tx.target_level)
        .contains(&factor)
        .then_some(a)
}

fn send_sms(sim: &Sim, r: &Req, id: &str, tx: &mut Tx) -> Resp {
    let Some(a) = allowed(sim, tx, Factor::Sms) else {
        return chooser(sim, r, id, tx, None);
    };
    let account = &sim.config.accounts[a];
    let code = random_digits(6);
    let phone = account.phone.clone().unwrap_or_default();
    let text =
        format!("Rekono: vaše enkratno geslo je {code}. / Your one-time password is {code}.");
    tracing::warn!(to = %phone, email = %account.email, code = %code, "rekono-sim SMS outbox");
    sim.state().outbox.push(Sms {
        to: phone,
        email: account.email.clone(),
        code: code.clone(),
        text,
    });
    tx.sms_code = Some(code);
    tx.code_attempts = 0;
    code_page(sim, r, id, tx, Factor::Sms, None)
}

fn code_page(
    sim: &Sim,
    r: &Req,
    id: &str,
    tx: &mut Tx,
    factor: Factor,
    error: Option<&str>,
) -> Resp {
    let Some(a) = allowed(sim, tx, factor) else {
        return chooser(sim, r, id, tx, None);
    };
    let masked = crate::mask_phone(sim.config.accounts[a].phone.as_deref().unwrap_or(""));
    tx.step = Step::Code(factor);
    let here = resume_path(id);
    html(
        StatusCode::OK,
        pages::code(&ctx(sim, r, id, tx, &here), factor, &masked, error),
    )
}

fn verify_code(sim: &Sim, r: &Req, id: &str, tx: &mut Tx, factor: Factor) -> Resp {
    let l = lang(r);
    let Some(a) = allowed(sim, tx, factor) else {
        return chooser(sim, r, id, tx, None);
    };
    let code = r
        .form
        .get("code")
        .map(|c| c.trim().to_owned())
        .unwrap_or_default();
    let ok = match factor {
        Factor::Sms => tx
            .sms_code
            .as_deref()
            .is_some_and(|expected| constant_time_eq(expected.as_bytes(), code.as_bytes())),
        _ => sim.config.accounts[a]
            .totp_secret
            .as_deref()
            .is_some_and(|secret| crate::totp::verify(secret, &code, unix_now())),
    };
    if ok {
        return complete(sim, tx, a, factor);
    }
    tx.code_attempts += 1;
    *sim.state()
        .failures
        .entry(sim.config.accounts[a].email.clone())
        .or_default() += 1;
    if tx.code_attempts >= MAX_CODE_ATTEMPTS {
        tx.sms_code = None;
        tx.code_attempts = 0;
        let message = l.t(
            "Preveč napačnih poskusov. Izberite način prijave znova.",
            "Too many wrong codes. Choose how to log in again.",
        );
        return chooser(sim, r, id, tx, Some(message));
    }
    let message = format!(
        "{} {}",
        l.t(
            "Napačno enkratno geslo. Preostali poskusi:",
            "Wrong one-time password. Attempts left:"
        ),
        MAX_CODE_ATTEMPTS - tx.code_attempts
    );
    code_page(sim, r, id, tx, factor, Some(&message))
}

fn start_push(sim: &Sim, r: &Req, id: &str, tx: &mut Tx) -> Resp {
    let Some(a) = allowed(sim, tx, Factor::Push) else {
        return chooser(sim, r, id, tx, None);
    };
    let push_id = random_token(9);
    tracing::warn!(
        email = %sim.config.accounts[a].email,
        approve = %format!("curl -k -X POST {}/dev/push/{push_id}/approve", sim.config.public_url),
        "rekono-sim OnePass push sent"
    );
    tx.push = Some((push_id, PushStatus::Pending));
    tx.step = Step::Push;
    let here = resume_path(id);
    html(
        StatusCode::OK,
        pages::push_wait(&ctx(sim, r, id, tx, &here)),
    )
}

fn push_wait(sim: &Sim, r: &Req, id: &str, tx: &mut Tx) -> Resp {
    let l = lang(r);
    match tx.push.as_ref().map(|(_, s)| *s) {
        Some(PushStatus::Approved) => match allowed(sim, tx, Factor::Push) {
            Some(a) => complete(sim, tx, a, Factor::Push),
            None => chooser(sim, r, id, tx, None),
        },
        Some(PushStatus::Rejected) => {
            tx.push = None;
            chooser(
                sim,
                r,
                id,
                tx,
                Some(l.t(
                    "Obvestilo je bilo zavrnjeno.",
                    "The notification was rejected.",
                )),
            )
        }
        Some(PushStatus::Pending) => {
            let here = resume_path(id);
            html(
                StatusCode::OK,
                pages::push_wait(&ctx(sim, r, id, tx, &here)),
            )
        }
        None => chooser(sim, r, id, tx, None),
    }
}

fn push_status(sim: &Sim, r: &Req) -> Resp {
    let id = r.query.get("tx").cloned().unwrap_or_default();
    let state = sim.state();
    let status = state
        .txs
        .get(&id)
        .filter(|t| r.cookies.get(BROWSER_COOKIE) == Some(&t.browser))
        .and_then(|t| t.push.as_ref().map(|(_, s)| *s));
    json_response(StatusCode::OK, &json!({ "status": status }))
}

fn certificate(sim: &Sim, r: &Req, _id: &str, tx: &mut Tx) -> Resp {
    let l = lang(r);
    if !r.conn.mtls {
        return plain(
            StatusCode::NOT_FOUND,
            "the certificate step is on the certificate listener",
        );
    }
    let Some(a) = allowed(sim, tx, Factor::Certificate) else {
        return html(
            StatusCode::FORBIDDEN,
            pages::error(
                l,
                l.t(
                    "Prijava s potrdilom za ta račun ni mogoča.",
                    "Certificate login is not available for this account.",
                ),
            ),
        );
    };
    let linked = r.conn.peer_cert.as_deref().is_some_and(|fp| {
        sim.config.accounts[a]
            .certificates
            .iter()
            .any(|c| constant_time_eq(c.as_bytes(), fp.as_bytes()))
    });
    if linked {
        return complete(sim, tx, a, Factor::Certificate);
    }
    let message = if r.conn.peer_cert.is_none() {
        l.t(
            "Brskalnik ni poslal digitalnega potrdila.",
            "The browser sent no digital certificate.",
        )
    } else {
        l.t(
            "To digitalno potrdilo ni povezano z vašim računom Rekono.",
            "This digital certificate is not linked to your Rekono account.",
        )
    };
    tracing::info!(email = %sim.config.accounts[a].email, "rekono-sim: certificate not linked to the account");
    html(StatusCode::FORBIDDEN, pages::error(l, message))
}

/// The second factor passed: a new SSO session, a code, and back to the relying party.
fn complete(sim: &Sim, tx: &Tx, account: usize, factor: Factor) -> Resp {
    let sid = random_token(18);
    // The level this login established: what was asked, never more than the account has.
    let acr = tx.target_level.min(sim.config.accounts[account].level);
    sim.state().sessions.insert(
        sid.clone(),
        Session {
            account,
            browser: tx.browser.clone(),
            acr,
            amr: factor.amr(),
            auth_time: unix_now(),
            clients: Default::default(),
        },
    );
    tracing::info!(email = %sim.config.accounts[account].email, ?factor, acr, "rekono-sim: login complete");
    let mut resp = issue_from_session(
        sim,
        tx.client,
        &tx.redirect_uri,
        tx.state.as_deref(),
        tx.nonce.clone(),
        &tx.code_challenge,
        &sid,
    );
    if let Ok(v) = header::HeaderValue::from_str(&cookie(SESSION_COOKIE, &sid, None)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

fn issue_from_session(
    sim: &Sim,
    client: usize,
    redirect_uri: &str,
    state_param: Option<&str>,
    nonce: Option<String>,
    challenge: &str,
    sid: &str,
) -> Resp {
    let code = random_token(32);
    {
        let mut state = sim.state();
        let Some(session) = state.sessions.get_mut(sid) else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "session vanished");
        };
        session.clients.insert(client);
        let entry = Code {
            client,
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: challenge.to_owned(),
            nonce,
            sid: sid.to_owned(),
            account: session.account,
            acr: session.acr,
            amr: session.amr.clone(),
            auth_time: session.auth_time,
            expires: Instant::now() + CODE_LIFETIME,
            used: false,
            access_tokens: Vec::new(),
        };
        state
            .codes
            .retain(|_, c| c.expires > Instant::now() || c.used);
        state.codes.insert(code.clone(), entry);
    }
    let iss = sim.issuer();
    let mut params = vec![("code", code.as_str()), ("iss", iss.as_str())];
    if let Some(s) = state_param {
        params.push(("state", s));
    }
    redirect(&with_params(redirect_uri, &params), &[])
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Resp {
    let mut resp = json_response(
        status,
        &json!({"error": error, "error_description": description}),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"rekono-sim\""),
        );
    }
    resp
}

/// Client authentication: `client_secret_basic` or `private_key_jwt`. Returns the client index.
/// A failure is the `error_description` of the 401 `invalid_client` answer.
fn authenticate_client(sim: &Sim, r: &Req) -> Result<usize, &'static str> {
    let unauthorized = |d: &'static str| d;
    if let Some(basic) = r
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
    {
        let decoded = STANDARD
            .decode(basic.trim())
            .map_err(|_| unauthorized("malformed Basic credentials"))?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| unauthorized("malformed Basic credentials"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
        // RFC 6749 2.3.1: both parts are form-urlencoded.
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        let (id, secret) = (
            decode(id).unwrap_or_default(),
            decode(secret).unwrap_or_default(),
        );
        let client = sim
            .config
            .clients
            .iter()
            .position(|c| c.client_id == id)
            .ok_or_else(|| unauthorized("unknown client"))?;
        let ok = sim.config.clients[client]
            .secret
            .as_deref()
            .is_some_and(|s| constant_time_eq(s.as_bytes(), secret.as_bytes()));
        return if ok {
            Ok(client)
        } else {
            Err(unauthorized("wrong client secret"))
        };
    }
    if r.form.get("client_assertion_type").map(String::as_str)
        == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        let assertion = r.form.get("client_assertion").cloned().unwrap_or_default();
        let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode(&assertion)
            .map(|d| d.claims)
            .map_err(|_| unauthorized("malformed client_assertion"))?;
        let id = claims["iss"].as_str().unwrap_or_default().to_owned();
        let client = sim
            .config
            .clients
            .iter()
            .position(|c| c.client_id == id)
            .ok_or_else(|| unauthorized("unknown client"))?;
        let header = jsonwebtoken::decode_header(&assertion)
            .map_err(|_| unauthorized("malformed client_assertion"))?;
        let token_endpoint = format!("{}/token", sim.issuer());
        let verified = sim.config.clients[client]
            .jwt_keys
            .iter()
            .find_map(|(alg, pem)| {
                if *alg != header.alg
                    && !(matches!(alg, Algorithm::RS256)
                        && matches!(
                            header.alg,
                            Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256
                        ))
                {
                    return None;
                }
                let key = match alg {
                    Algorithm::RS256 => jsonwebtoken::DecodingKey::from_rsa_pem(pem).ok()?,
                    _ => jsonwebtoken::DecodingKey::from_ec_pem(pem).ok()?,
                };
                let mut v = Validation::new(header.alg);
                v.set_audience(&[token_endpoint.as_str(), sim.issuer().as_str()]);
                v.set_issuer(&[id.as_str()]);
                v.sub = Some(id.clone());
                v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
                jsonwebtoken::decode::<serde_json::Value>(&assertion, &key, &v).ok()
            });
        let Some(verified) = verified else {
            return Err(unauthorized("client_assertion does not verify"));
        };
        let jti = verified.claims["jti"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| unauthorized("client_assertion has no jti"))?;
        if !sim.state().used_jti.insert(jti) {
            return Err(unauthorized("client_assertion replayed"));
        }
        return Ok(client);
    }
    Err(unauthorized(
        "client authentication required (client_secret_basic or private_key_jwt)",
    ))
}

fn token(sim: &Sim, r: &Req) -> Resp {
    let client = match authenticate_client(sim, r) {
        Ok(c) => c,
        Err(description) => {
            return token_error(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    };
    let bad = |error: &str, d: &str| token_error(StatusCode::BAD_REQUEST, error, d);
    if r.form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return bad("unsupported_grant_type", "only authorization_code");
    }
    let code_value = r.form.get("code").cloned().unwrap_or_default();
    let mut state = sim.state();
    let Some(code) = state.codes.get_mut(&code_value) else {
        return bad("invalid_grant", "unknown code");
    };
    if code.used {
        // A replayed code revokes what the first use issued (RFC 6749 4.1.2).
        let revoked = std::mem::take(&mut code.access_tokens);
        for t in revoked {
            state.tokens.remove(&t);
        }
        tracing::warn!("rekono-sim: authorization code replayed; its tokens are revoked");
        return bad("invalid_grant", "code already used");
    }
    code.used = true;
    if code.expires < Instant::now() {
        return bad("invalid_grant", "code expired");
    }
    if code.client != client {
        return bad("invalid_grant", "code was issued to another client");
    }
    if r.form.get("redirect_uri") != Some(&code.redirect_uri) {
        return bad(
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        );
    }
    let verifier = r.form.get("code_verifier").cloned().unwrap_or_default();
    let valid_verifier = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !valid_verifier || !constant_time_eq(computed.as_bytes(), code.code_challenge.as_bytes()) {
        return bad("invalid_grant", "PKCE code_verifier does not match");
    }
    let access = random_token(32);
    code.access_tokens.push(access.clone());
    let account = &sim.config.accounts[code.account];
    let c = &sim.config.clients[client];
    let now = unix_now();
    let mut claims = json!({
        "iss": sim.issuer(),
        "sub": account.sub,
        "aud": c.client_id,
        "azp": c.client_id,
        "exp": now + TOKEN_LIFETIME,
        "iat": now,
        "auth_time": code.auth_time,
        "acr": code.acr.to_string(),
        "amr": code.amr,
        "sid": code.sid,
        "email": account.email,
        "email_verified": true,
        "name": account.name,
    });
    if let Some(nonce) = &code.nonce {
        claims["nonce"] = json!(nonce);
    }
    let account_index = code.account;
    state.tokens.insert(
        access.clone(),
        AccessToken {
            account: account_index,
            expires: Instant::now() + Duration::from_secs(TOKEN_LIFETIME),
        },
    );
    drop(state);
    let id_token = match sim.keys.sign(c.id_token_alg, "JWT", &claims) {
        Ok(t) => t,
        Err(e) => {
            return token_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                &e.to_string(),
            )
        }
    };
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "id_token": id_token,
            "scope": "openid profile email",
        }),
    )
}

fn userinfo(sim: &Sim, r: &Req) -> Resp {
    let token = r
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or("");
    let state = sim.state();
    match state
        .tokens
        .get(token.trim())
        .filter(|t| t.expires > Instant::now())
    {
        Some(t) => {
            let a = &sim.config.accounts[t.account];
            json_response(
                StatusCode::OK,
                &json!({"sub": a.sub, "email": a.email, "email_verified": true, "name": a.name}),
            )
        }
        None => {
            let mut resp =
                json_response(StatusCode::UNAUTHORIZED, &json!({"error": "invalid_token"}));
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            resp
        }
    }
}

/// RP-initiated logout: ends the SSO session named by `id_token_hint` and tells every relying
/// party of that session through its back-channel.
async fn end_session(sim: &Sim, r: &Req) -> Resp {
    let l = lang(r);
    let params = if r.method == Method::POST {
        &r.form
    } else {
        &r.query
    };
    let hint = params.get("id_token_hint").cloned().unwrap_or_default();
    let claims = (!hint.is_empty())
        .then(|| verify_own_token(sim, &hint))
        .flatten();
    if !hint.is_empty() && claims.is_none() {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error(
                l,
                l.t("Neveljaven id_token_hint.", "Invalid id_token_hint."),
            ),
        );
    }
    let client_id = claims
        .as_ref()
        .and_then(|c| c["aud"].as_str().map(str::to_owned))
        .or_else(|| params.get("client_id").cloned());
    let client = client_id.and_then(|id| sim.config.clients.iter().position(|c| c.client_id == id));
    let post_logout = params.get("post_logout_redirect_uri").cloned();
    if let Some(uri) = &post_logout {
        let registered = client.is_some_and(|c| {
            sim.config.clients[c]
                .post_logout_redirect_uris
                .contains(uri)
        });
        if !registered {
            return html(
                StatusCode::BAD_REQUEST,
                pages::error(
                    l,
                    l.t(
                        "post_logout_redirect_uri ni registriran.",
                        "post_logout_redirect_uri is not registered.",
                    ),
                ),
            );
        }
    }
    let sid = claims
        .as_ref()
        .and_then(|c| c["sid"].as_str().map(str::to_owned))
        .or_else(|| r.cookies.get(SESSION_COOKIE).cloned());
    if let Some(sid) = sid {
        logout_sessions(sim, |id, _| id == sid).await;
    }
    let clear = cookie(SESSION_COOKIE, "", Some(0));
    match post_logout {
        Some(uri) => {
            let target = match params.get("state") {
                Some(s) => with_params(&uri, &[("state", s)]),
                None => uri,
            };
            redirect(&target, &[clear])
        }
        None => {
            let mut resp = html(StatusCode::OK, pages::logged_out(l));
            if let Ok(v) = header::HeaderValue::from_str(&clear) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
            resp
        }
    }
}

/// Checks a token the simulator itself issued (signature, issuer); expiry does not matter
/// for an `id_token_hint`.
fn verify_own_token(sim: &Sim, token: &str) -> Option<serde_json::Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let (alg, key) = sim.keys.decoding_key(header.kid.as_deref()?)?;
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.set_issuer(&[sim.issuer()]);
    v.set_required_spec_claims(&["iss", "sub"]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
        .ok()
        .map(|d| d.claims)
}

/// Ends the sessions `matches` selects and posts a logout token to each of their relying
/// parties' back-channel URIs. Returns how many back-channel posts were accepted.
pub(crate) async fn logout_sessions(sim: &Sim, matches: impl Fn(&str, &Session) -> bool) -> usize {
    let ended: Vec<(String, Session)> = {
        let mut state = sim.state();
        let ids: Vec<String> = state
            .sessions
            .iter()
            .filter(|(id, s)| matches(id, s))
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| state.sessions.remove(&id).map(|s| (id, s)))
            .collect()
    };
    let mut delivered = 0;
    for (sid, session) in ended {
        let sub = sim.config.accounts[session.account].sub.clone();
        for c in session.clients {
            let client = &sim.config.clients[c];
            let Some(uri) = &client.backchannel_logout_uri else {
                continue;
            };
            let now = unix_now();
            let claims = json!({
                "iss": sim.issuer(),
                "aud": client.client_id,
                "iat": now,
                "exp": now + 120,
                "jti": random_token(16),
                "sid": sid,
                "sub": sub,
                "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
            });
            let Ok(token) = sim.keys.sign(client.id_token_alg, "logout+jwt", &claims) else {
                continue;
            };
            match sim
                .http
                .post(uri)
                .form(&[("logout_token", token)])
                .send()
                .await
            {
                Ok(resp) if resp.status().is_success() => delivered += 1,
                Ok(resp) => {
                    tracing::warn!(client = %client.client_id, status = %resp.status(), "rekono-sim: back-channel logout refused")
                }
                Err(e) => {
                    tracing::warn!(client = %client.client_id, error = %e, "rekono-sim: back-channel logout failed")
                }
            }
        }
    }
    delivered
}

/// `/dev/…`: what a person or a test does in place of a phone, an SMS or an admin console.
async fn dev(sim: &Sim, r: &Req) -> Resp {
    let path = r.path.as_str();
    match (r.method.clone(), path) {
        (Method::GET, "/dev/outbox") => json_response(StatusCode::OK, &json!(sim.outbox())),
        (Method::GET, "/dev/try") => playground_start(sim, r),
        (Method::GET, "/dev/callback") => playground_callback(sim, r).await,
        (Method::GET, "/dev/push") => {
            let pending: Vec<_> = sim
                .pending_pushes()
                .into_iter()
                .map(|(id, email)| json!({"id": id, "email": email}))
                .collect();
            json_response(StatusCode::OK, &json!(pending))
        }
        (Method::POST, "/dev/keys/rotate") => match sim.keys.rotate() {
            Ok(kid) => json_response(StatusCode::OK, &json!({"kid": kid})),
            Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        (Method::POST, "/dev/logout") => {
            let sub = r.form.get("sub").or_else(|| r.query.get("sub")).cloned();
            let sid = r.form.get("sid").or_else(|| r.query.get("sid")).cloned();
            if sub.is_none() && sid.is_none() {
                return plain(StatusCode::BAD_REQUEST, "give sub or sid");
            }
            let delivered = logout_sessions(sim, |id, s| {
                sid.as_deref() == Some(id)
                    || sub.as_deref() == Some(sim.config.accounts[s.account].sub.as_str())
            })
            .await;
            json_response(
                StatusCode::OK,
                &json!({"back_channel_delivered": delivered}),
            )
        }
        (Method::POST, p) if p.starts_with("/dev/push/") => {
            let rest = &p["/dev/push/".len()..];
            let (id, action) = rest.split_once('/').unwrap_or((rest, ""));
            let approve = match action {
                "approve" => true,
                "reject" => false,
                _ => return plain(StatusCode::NOT_FOUND, "approve or reject"),
            };
            if sim.answer_push(id, approve) {
                plain(
                    StatusCode::OK,
                    if approve { "approved" } else { "rejected" },
                )
            } else {
                plain(StatusCode::NOT_FOUND, "no such pending push")
            }
        }
        _ => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The client id of the simulator's own relying party, `/dev/try`.
pub const PLAYGROUND_CLIENT: &str = "rekono-sim-playground";

/// `/dev/try`: starts a real code + PKCE login for the built-in playground client, so a person
/// can try every factor from a browser and see the claims Rekono would send.
fn playground_start(sim: &Sim, r: &Req) -> Resp {
    let verifier = random_token(48);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = random_token(16);
    let mut params = vec![
        ("response_type", "code".to_owned()),
        ("client_id", PLAYGROUND_CLIENT.to_owned()),
        (
            "redirect_uri",
            format!("{}/dev/callback", sim.config.public_url),
        ),
        ("scope", "openid profile email".to_owned()),
        ("state", state.clone()),
        ("nonce", random_token(16)),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256".to_owned()),
    ];
    for name in ["acr_values", "prompt", "ui_locales"] {
        if let Some(value) = r.query.get(name) {
            params.push((name, value.clone()));
        }
    }
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let location = with_params(&format!("{}/authorize", sim.issuer()), &pairs);
    // The verifier rides in a cookie bound to this state: the playground keeps no server state.
    redirect(
        &location,
        &[cookie(&format!("rekono_try_{state}"), &verifier, Some(600))],
    )
}

async fn playground_callback(sim: &Sim, r: &Req) -> Resp {
    let l = lang(r);
    if let Some(error) = r.query.get("error") {
        let d = r
            .query
            .get("error_description")
            .cloned()
            .unwrap_or_default();
        return html(StatusCode::OK, pages::error(l, &format!("{error}: {d}")));
    }
    let state = r.query.get("state").cloned().unwrap_or_default();
    let Some(verifier) = r.cookies.get(&format!("rekono_try_{state}")).cloned() else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error(l, "state does not match this browser"),
        );
    };
    let Some(secret) = sim
        .config
        .clients
        .iter()
        .find(|c| c.client_id == PLAYGROUND_CLIENT)
        .and_then(|c| c.secret.clone())
    else {
        return plain(StatusCode::NOT_FOUND, "no playground client");
    };
    // The same token endpoint code a relying party reaches over HTTPS.
    let form = [
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        (
            "code".to_owned(),
            r.query.get("code").cloned().unwrap_or_default(),
        ),
        (
            "redirect_uri".to_owned(),
            format!("{}/dev/callback", sim.config.public_url),
        ),
        ("code_verifier".to_owned(), verifier),
    ];
    let req = Req {
        method: Method::POST,
        path: format!("{BASE_PATH}/token"),
        path_and_query: format!("{BASE_PATH}/token"),
        query: Default::default(),
        form: form.into_iter().collect(),
        cookies: Default::default(),
        authorization: Some(format!(
            "Basic {}",
            STANDARD.encode(format!("{PLAYGROUND_CLIENT}:{secret}"))
        )),
        conn: r.conn.clone(),
    };
    let body = {
        use http_body_util::BodyExt;
        match token(sim, &req).into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(never) => match never {},
        }
    };
    let claims = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|t| {
            t["id_token"]
                .as_str()
                .and_then(|t| verify_own_token(sim, t))
        });
    let Some(claims) = claims else {
        return html(
            StatusCode::BAD_GATEWAY,
            pages::error(l, &String::from_utf8_lossy(&body)),
        );
    };
    let pretty = serde_json::to_string_pretty(&claims).unwrap_or_default();
    let page = format!(
        "<!doctype html><html lang=\"sl\"><head><meta charset=\"utf-8\"><title>Rekono simulator — ID token</title></head>\
<body style=\"font-family:system-ui,sans-serif;margin:2rem\"><h1 id=\"done\">{}</h1><pre id=\"claims\">{}</pre>\
<p><a href=\"/dev/try\">{}</a></p></body></html>",
        l.t("Prijava uspela: trditve žetona ID", "Logged in: the ID token's claims"),
        pages::escape(&pretty),
        l.t("Znova", "Again")
    );
    html(StatusCode::OK, page)
}
