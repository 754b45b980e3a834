//! The language switch (`GET /lang`) and the provider's bare start page, where an error page's
//! switch comes back to.

use http::StatusCode;

use crate::exchange::{cookie, html, redirect, Req, Resp, LANG_COOKIE};
use crate::{pages, BASE_PATH};

/// `GET /lang?to=…&back=…`: remembers the language for a year and goes back, only ever to a
/// path of the simulator (never an open redirect).
pub(super) fn switch(r: &Req) -> Resp {
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

/// `GET` of the issuer itself: a login starts at an application, not here.
pub(super) fn start_elsewhere(r: &Req) -> Resp {
    let l = r.lang();
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
