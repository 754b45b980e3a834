//! The step-up page: a portal asks for a higher level than the session has; the page says
//! why and sends the person to Rekono again (or to a certificate).

use super::context::{back_action, certificate_action, with_nonce, Ctx};
use super::sso::query_bind;
use crate::auth::encode;
use crate::pages::{Action, Message, MessageView, Text};
use crate::reply::Reply;
use prehod_identity::unix_now;

/// The portal of a return URL, with the URL.
pub(super) fn portal_of<'c>(
    ctx: &Ctx<'c, '_>,
    return_to: Option<&str>,
) -> Option<(String, &'c prehod_config::Portal)> {
    let (r, p) = ctx.auth.check_return(return_to?)?;
    Some((r, ctx.shared.config.portals.get(p)?))
}

/// "Level of assurance too low": which level the application needs, certificate login where
/// the portal allows it, and the way back.
pub(super) fn level_too_low(
    ctx: &Ctx<'_, '_>,
    return_to: Option<&str>,
    from: Option<&str>,
) -> (MessageView, Option<String>) {
    let mut view = MessageView::new(Message::LevelTooLow);
    let mut nonce = None;
    let portal = portal_of(ctx, return_to);
    if let Some((r, p)) = &portal {
        view.extra.push(ctx.text_with(
            Text::LevelTooLowFor,
            &[
                ("app", p.title.as_str().into()),
                ("level", p.min_level.into()),
            ],
        ));
        if let Some((action, n)) = certificate_action(ctx, r, p, None) {
            view.actions.push(action);
            nonce = n;
        }
    }
    view.actions
        .push(back_action(ctx, from, portal.map(|(_, p)| p.host.as_str())));
    (view, nonce)
}

/// `GET /step-up?level=…&return=…[&from=…]`: before a step-up, which level the application
/// needs and which the session has; on to Rekono (with the e-mail filled in), or certificate
/// login where the portal allows it, or back.
pub(super) fn step_up_page(ctx: &Ctx<'_, '_>) -> Reply {
    let q = &ctx.req.query();
    let Some((return_to, portal)) = portal_of(ctx, q.get("return").map(String::as_str)) else {
        return ctx.message(Message::BadReturn);
    };
    // The portal's own level: a `level` in the link could make a genuine page say more.
    let level = portal.min_level;
    let live = ctx.session(unix_now()).map(|v| v.session);
    let have = live.as_ref().map(|s| s.level);
    // The step-up goes to the provider that made the session, when the portal allows it.
    let provider = live
        .as_ref()
        .and_then(|s| ctx.auth.providers.of_session(s))
        .filter(|p| portal.allows_provider(&p.id));
    let mut view = MessageView::new(Message::StepUp);
    let (app, needs) = (portal.title.as_str().into(), level.into());
    view.detail = Some(match have {
        Some(h) => ctx.text_with(
            Text::StepUpNeedsHave,
            &[("app", app), ("level", needs), ("have", h.into())],
        ),
        None => ctx.text_with(Text::StepUpNeeds, &[("app", app), ("level", needs)]),
    });
    let from = q
        .get("from")
        .and_then(|f| ctx.auth.check_return(f))
        .map(|(f, _)| f);
    let mut start = format!("/oidc/start?level={level}&return={}", encode(&return_to));
    if let Some(p) = provider {
        start.push_str("&provider=");
        start.push_str(&p.id);
    }
    // The portal's binding of this browser goes along (see [`crate::sso`]).
    let bind = query_bind(ctx.req);
    if let Some(b) = &bind {
        start.push_str("&bind=");
        start.push_str(b);
    }
    if let Some(f) = &from {
        start.push_str("&from=");
        start.push_str(&encode(f));
    }
    view.actions.push(Action {
        url: start,
        // Another provider's button text; Rekono's own words for Rekono.
        label: match provider.and_then(|p| p.button.as_ref()) {
            Some((_, en)) if ctx.lang.code() == "en" => en.clone(),
            Some((sl, _)) => sl.clone(),
            None => ctx.text(Text::ContinueAtRekono),
        },
        id: "step-up-continue",
        secondary: false,
    });
    let mut nonce = None;
    if let Some((mut action, n)) = certificate_action(ctx, &return_to, portal, bind.as_deref()) {
        action.secondary = true;
        view.actions.push(action);
        nonce = n;
    }
    view.actions
        .push(back_action(ctx, from.as_deref(), Some(&portal.host)));
    with_nonce(ctx, ctx.page(&view), nonce)
}
