//! Header hygiene: what a client may not send upstream, and the forwarding headers the
//! gateway sets. Plain functions over `http::HeaderMap`, built once from the config
//! ([`Hygiene::new`]) and only read per request.
//!
//! Strip before set: every identity header a client sent is removed — in any letter case, in
//! the underscore or dot spelling (`X_Auth_User`, `X.Auth.User`, which some servers turn into
//! `X-Auth-User`), every duplicate, every name under the identity headers' common prefix
//! (`X-Auth-Groups`: a portal may read a name the gateway does not set) and under a configured
//! `headers.strip` prefix, and any header a client nominates in `Connection:` (so it cannot ask
//! a hop to drop or smuggle one). Only then does the gateway set its own. A request whose `Connection:`
//! names a framing or routing header (`Content-Length`, `Transfer-Encoding`, `Host`) is refused
//! outright: removing those would reframe its body as another request.

use std::net::IpAddr;

use http::{header, HeaderMap, HeaderName};
use prehod_config::{Cidr, Config};

/// Header names the gateway never lets through from an untrusted client, besides the
/// configured identity headers: forwarding metadata it sets itself.
const FORWARDING: &[&str] = &[
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
    "forwarded",
];

/// Identity headers other gateways set (Apache and Authelia `Remote-User`, oauth2-proxy's
/// `X-Forwarded-*` and `X-Auth-Request-*`, nginx/HAProxy client-certificate headers). A portal
/// that once sat behind one may still trust them, so no client may send them, trusted proxy or
/// not. Names in the normalised spelling; the `PREFIXES` match every name they begin.
const FOREIGN_IDENTITY: &[&str] = &[
    "remote-user",
    "remote-groups",
    "remote-name",
    "remote-email",
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
];
const FOREIGN_IDENTITY_PREFIXES: &[&str] = &[
    "x-remote-",
    "x-auth-request-",
    "x-ssl-client-",
    "x-client-cert",
];

/// Whether a normalised name is another gateway's identity header.
fn foreign_identity(normal: &str) -> bool {
    FOREIGN_IDENTITY.contains(&normal)
        || FOREIGN_IDENTITY_PREFIXES
            .iter()
            .any(|p| normal.starts_with(p))
}

#[derive(Debug)]
pub struct Hygiene {
    /// Identity header names, normalised (see [`normalise`]). Looked through in order: eleven
    /// names compared by length first cost less than hashing each request header's (issue 20).
    identity: Vec<String>,
    /// Normalised name prefixes no client header may start with: the identity headers'
    /// ([`identity_prefixes`]) and the configured `strip` prefixes. Forwarding headers and
    /// the request id are not theirs (a trusted proxy may send those).
    identity_prefixes: Vec<String>,
    trusted_proxies: Vec<Cidr>,
    cookie_prefix: String,
    request_id: HeaderName,
}

/// Lower case, `_` and `.` → `-`: the spelling a server behind us may normalise any name to
/// (CGI and PHP read `X.Auth.User` and `X_Auth_User` as `X-Auth-User`). Borrows when nothing
/// changes (the common case: `http` names are already lower case).
fn normalise(name: &str) -> std::borrow::Cow<'_, str> {
    if name
        .bytes()
        .any(|b| b == b'_' || b == b'.' || b.is_ascii_uppercase())
    {
        std::borrow::Cow::Owned(
            name.bytes()
                .map(|b| match b {
                    b'_' | b'.' => '-',
                    b => char::from(b.to_ascii_lowercase()),
                })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// The name prefixes of the identity headers the gateway sets: the set names are grouped
/// by their first word (their first two when the first is `x`), and every group of two or
/// more names gives the words all of them begin with (`x-auth-` for the defaults, even when
/// one of them is renamed `X-Remote-User`). Normalised, ending in `-`. A single name, or a
/// group of one, gives none: its prefix could be any application's (`x-` alone never is one).
fn identity_prefixes(headers: &prehod_config::Headers) -> Vec<String> {
    // (the group's words, the words its names have in common, how many names)
    let mut groups: Vec<(Vec<String>, Vec<String>, usize)> = Vec::new();
    for name in &headers.identity {
        let words: Vec<String> = normalise(name.as_str())
            .split('-')
            .map(str::to_owned)
            .collect();
        let key_len = if words.first().is_some_and(|w| w == "x") {
            2
        } else {
            1
        };
        // The group's words and at least one more: `x-auth` alone is no member of `x-auth-`.
        if words.len() <= key_len || words.iter().any(String::is_empty) {
            continue;
        }
        let key: Vec<String> = words.iter().take(key_len).cloned().collect();
        let family: Vec<String> = words.iter().take(words.len() - 1).cloned().collect();
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, common, count)) => {
                let shared = common
                    .iter()
                    .zip(&family)
                    .take_while(|(a, b)| a == b)
                    .count();
                common.truncate(shared);
                *count += 1;
            }
            None => groups.push((key, family, 1)),
        }
    }
    groups
        .into_iter()
        .filter(|(_, _, count)| *count >= 2)
        .map(|(_, common, _)| format!("{}-", common.join("-")))
        .collect()
}

impl Hygiene {
    pub fn new(config: &Config) -> Self {
        Self {
            identity: config
                .headers
                .identity_names()
                .iter()
                .map(|n| normalise(n.as_str()).into_owned())
                .collect(),
            identity_prefixes: identity_prefixes(&config.headers)
                .into_iter()
                .chain(config.headers.strip_prefixes.iter().cloned())
                .collect(),
            trusted_proxies: config.trusted_proxies.clone(),
            cookie_prefix: config.cookies.prefix.clone(),
            request_id: config.headers.request_id.clone(),
        }
    }

    pub fn is_trusted_proxy(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.trusted_proxies.iter().any(|net| net.contains(ip)))
    }

    /// The headers to remove from a client's request, before anything else looks at it.
    pub fn names_to_strip(&self, headers: &HeaderMap, trusted: bool) -> Vec<HeaderName> {
        let mut out: Vec<HeaderName> = Vec::new();
        let mut push = |name: &HeaderName| {
            if !out.contains(name) {
                out.push(name.clone());
            }
        };
        for name in headers.keys() {
            let normal = normalise(name.as_str());
            let forwarding = !trusted && FORWARDING.contains(&normal.as_ref());
            let request_id = !trusted && normal == self.request_id.as_str();
            let prefixed = self.identity_prefixes.iter().any(|p| normal.starts_with(p))
                && !FORWARDING.contains(&normal.as_ref())
                && normal != self.request_id.as_str();
            let identity =
                self.identity.iter().any(|n| *n == normal) || prefixed || foreign_identity(&normal);
            if identity || forwarding || request_id {
                push(name);
            }
        }
        for nominated in connection_tokens(headers) {
            // `Connection: upgrade` is how WebSockets start; the upgrade itself is handled by
            // the proxy's upgrade policy. Every other nominated field goes.
            if nominated == "upgrade" || nominated == "close" || nominated == "keep-alive" {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(nominated.as_bytes()) {
                if headers.contains_key(&name) {
                    push(&name);
                }
            }
        }
        out
    }

    /// The `Cookie` header to send upstream once the gateway's own cookies are removed:
    /// `None` when nothing changes, `Some(None)` when no cookie is left.
    pub fn upstream_cookie(&self, headers: &HeaderMap) -> Option<Option<String>> {
        let mut changed = false;
        let mut kept: Vec<&str> = Vec::new();
        let values = headers.get_all(header::COOKIE);
        let count = values.iter().count();
        for value in values {
            let Ok(value) = value.to_str() else {
                // A non-ASCII cookie header cannot be filtered reliably: drop it whole.
                changed = true;
                continue;
            };
            for pair in crate::cookies::split_semicolons(value) {
                let pair = pair.trim();
                if pair.is_empty() {
                    continue;
                }
                let name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
                if crate::cookies::is_gateway_name(name, &self.cookie_prefix) {
                    changed = true;
                } else {
                    kept.push(pair);
                }
            }
        }
        // Several Cookie headers (HTTP/2 sends one per cookie) are joined into one for HTTP/1.
        if !changed && count <= 1 {
            return None;
        }
        Some((!kept.is_empty()).then(|| kept.join("; ")))
    }

    /// Whether an upstream `Set-Cookie` line would set one of the gateway's cookies in the
    /// browser: its name starts with the cookie prefix in any letter case, also behind a
    /// `__Host-` or `__Secure-` prefix, and also as a nameless cookie (`=prehod_session=x`,
    /// which a browser sends back as `prehod_session=x`). A portal must never set them: one
    /// portal could otherwise swap the user's session on every portal (cookie tossing).
    pub fn is_gateway_set_cookie(&self, line: &[u8]) -> bool {
        let line = String::from_utf8_lossy(line);
        let pair = line.split(';').next().unwrap_or_default().trim();
        // RFC 6265bis 5.6: no `=` is a nameless cookie whose value is the whole pair.
        let mut name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
        if name.is_empty() {
            let value = pair.split_once('=').map_or("", |(_, v)| v).trim();
            name = value.split_once('=').map_or(value, |(n, _)| n).trim();
        }
        crate::cookies::is_gateway_name(name, &self.cookie_prefix)
    }

    /// The client a request is from: the peer, or, when the peer is a trusted proxy, the last
    /// `X-Forwarded-For` address that is not itself a trusted proxy (the entries before it
    /// are the client's own say and could be anything). An entry that is no address ends the
    /// walk: the address after it is the best known.
    pub fn client_address(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        trusted: bool,
    ) -> Option<IpAddr> {
        if !trusted {
            return peer;
        }
        let mut client = peer;
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for entry in entries.iter().rev() {
            let Ok(ip) = entry.parse::<IpAddr>() else {
                break;
            };
            client = Some(ip);
            if !self.is_trusted_proxy(Some(ip)) {
                break;
            }
        }
        client
    }

    /// `X-Forwarded-For` for the upstream: the client's chain is kept only from a trusted proxy.
    pub fn forwarded_for(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        trusted: bool,
    ) -> Option<String> {
        let peer = crate::text::ip_string(peer?);
        if trusted {
            let previous: Vec<&str> = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if !previous.is_empty() {
                return Some(format!("{}, {peer}", previous.join(", ")));
            }
        }
        Some(peer)
    }
}

/// Header fields a client may not nominate in `Connection:`: removing them would change how
/// the message is framed (`Content-Length`, `Transfer-Encoding`) or where it goes (`Host`) —
/// request smuggling. `TE` (RFC 9110 asks clients to nominate it), `Upgrade` (WebSockets),
/// `Trailer` and the client's own fields stay allowed: dropping them changes neither.
const FRAMING: &[&str] = &["content-length", "transfer-encoding", "host"];

/// The first framing or routing header a request nominates in `Connection:`, if any: such a
/// request is refused (400) before anything is removed from it.
pub fn nominated_framing_header(headers: &HeaderMap) -> Option<String> {
    connection_tokens(headers).find(|t| FRAMING.contains(&t.as_str()))
}

/// Lower-case tokens of every `Connection` header.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
}

/// Accepts a request id from a trusted proxy only if it is short and plain.
pub fn valid_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A path and query for the access log: values of parameters that may carry secrets
/// (codes, tokens, passwords…) are replaced by `REDACTED`.
pub fn loggable_path(path_and_query: &str) -> String {
    const SECRET: &[&str] = &[
        "code",
        "state",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "key",
        "api_key",
        "apikey",
        "session",
        "sessionid",
        "jsessionid",
        "auth",
        "authorization",
        "otp",
        "pin",
        "sig",
        "signature",
        "nonce",
        "ticket",
        "samlresponse",
        "logout_token",
    ];
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if SECRET.contains(&k.to_ascii_lowercase().as_str()) => {
                format!("{k}=REDACTED")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn hygiene() -> Hygiene {
        Hygiene {
            identity: ["x-auth-user", "x-auth-email", "x-remote-user"]
                .into_iter()
                .map(String::from)
                .collect(),
            identity_prefixes: vec!["x-auth-".into(), "x-bank-".into()],
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            cookie_prefix: "prehod".into(),
            request_id: HeaderName::from_static("x-request-id"),
        }
    }

    #[test]
    fn the_client_address_is_believed_from_forwarded_for_only_behind_trusted_proxies() {
        let h = hygiene();
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let xff = map(&[("x-forwarded-for", "6.6.6.6, 192.0.2.7, 10.1.1.1")]);
        // An untrusted peer: its own address, whatever it says.
        assert_eq!(
            h.client_address(&xff, ip("203.0.113.9"), false),
            ip("203.0.113.9")
        );
        // Behind a trusted proxy: the last address not a trusted proxy (not the client's own
        // first entry, which anyone can write).
        assert_eq!(
            h.client_address(&xff, ip("10.0.0.1"), true),
            ip("192.0.2.7")
        );
        assert_eq!(
            h.client_address(&map(&[]), ip("10.0.0.1"), true),
            ip("10.0.0.1")
        );
        let junk = map(&[("x-forwarded-for", "192.0.2.1, not-an-ip, 198.51.100.4")]);
        assert_eq!(
            h.client_address(&junk, ip("10.0.0.1"), true),
            ip("198.51.100.4")
        );
        let junk_last = map(&[("x-forwarded-for", "192.0.2.1, garbage")]);
        assert_eq!(
            h.client_address(&junk_last, ip("10.0.0.1"), true),
            ip("10.0.0.1")
        );
    }

    /// Every one of `spoofed` is stripped, whether a client or a trusted proxy sent it.
    fn assert_stripped_from_anyone(spoofed: &[&str]) {
        let pairs: Vec<(&str, &str)> = spoofed.iter().map(|n| (*n, "spoofed")).collect();
        for trusted in [false, true] {
            let strip: Vec<String> = hygiene()
                .names_to_strip(&map(&pairs), trusted)
                .iter()
                .map(|n| n.as_str().to_owned())
                .collect();
            for name in spoofed {
                assert!(
                    strip.contains(&name.to_ascii_lowercase()),
                    "{name} kept (trusted: {trusted})"
                );
            }
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn strips_every_spelling_and_nominated_names() {
        let h = map(&[
            ("X-Auth-User", "a"),
            ("x-auth-user", "b"),
            ("X_Auth_User", "c"),
            ("x_AUTH-email", "d"),
            ("Connection", "keep-alive, X-Sneaky"),
            ("X-Sneaky", "e"),
            ("X-Forwarded-For", "6.6.6.6"),
            ("Accept", "text/html"),
        ]);
        let names: Vec<String> = hygiene()
            .names_to_strip(&h, false)
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "x-auth-user",
                "x_auth_user",
                "x_auth-email",
                "x-forwarded-for",
                "x-sneaky"
            ]
        );
        // A trusted proxy may send forwarding headers, never identity headers.
        let trusted = hygiene().names_to_strip(&h, true);
        assert!(!trusted.iter().any(|n| n == "x-forwarded-for"));
        assert!(trusted.iter().any(|n| n == "x-auth-user"));
    }

    #[test]
    fn identity_like_names_go_in_any_spelling_under_the_identity_and_configured_prefixes() {
        let spoofed = [
            "X.Auth.User",
            "x.auth_email",
            "X-Auth-Groups",
            "x_auth_roles",
            "X.AUTH.IS.ADMIN",
            "X-Bank-Customer",
            "x.bank.account",
        ];
        assert_stripped_from_anyone(&spoofed);
        // Only whole words of the prefix count.
        let h = map(&[
            ("X-Authority", "x"),
            ("X-Auth", "x"),
            ("X-Authorization-Hint", "x"),
            ("X-Banking", "x"),
            ("X-Requested-With", "x"),
        ]);
        assert!(hygiene().names_to_strip(&h, false).is_empty());
    }

    fn config_headers(names: [&str; 11]) -> prehod_config::Headers {
        let n = |s: &str| HeaderName::from_bytes(s.as_bytes()).unwrap();
        prehod_config::Headers {
            request_id: n("x-request-id"),
            identity: names.map(n),
            strip: vec![],
            strip_prefixes: vec![],
        }
    }

    #[test]
    fn identity_prefixes_are_the_words_the_set_names_of_one_family_begin_with() {
        let defaults = [
            "x-auth-user",
            "x-auth-email",
            "x-auth-name",
            "x-auth-method",
            "x-auth-level",
            "x-auth-amr",
            "x-auth-assertion",
            "x-auth-cert-subject",
            "x-auth-cert-issuer",
            "x-auth-cert-serial",
            "x-auth-cert-fingerprint",
        ];
        let prefixes = |names: [&str; 11]| identity_prefixes(&config_headers(names));
        assert_eq!(prefixes(defaults), ["x-auth-"]);
        // One renamed header leaves the others' family.
        let mut remote = defaults;
        remote[0] = "x-remote-user";
        assert_eq!(prefixes(remote), ["x-auth-"]);
        // A longer shared prefix, in any spelling.
        let bank = defaults.map(|n| n.replacen("x-auth-", "x_bank.id-", 1));
        assert_eq!(
            prefixes(bank.each_ref().map(String::as_str)),
            ["x-bank-id-"]
        );
        // Two families of several names each.
        let mut two = defaults;
        for (i, n) in ["bankart-cert-subject", "bankart-cert-issuer"]
            .into_iter()
            .enumerate()
        {
            two[7 + i] = n;
        }
        assert_eq!(prefixes(two), ["x-auth-", "bankart-cert-"]);
        // Nothing more specific than `x-` is shared, or every name is alone: no prefix.
        let xs = [
            "x-user",
            "x-email",
            "x-name",
            "x-method",
            "x-level",
            "x-amr",
            "x-assertion",
            "x-subject",
            "x-issuer",
            "x-serial",
            "x-fingerprint",
        ];
        assert!(prefixes(xs).is_empty());
        let alone = [
            "x-auth-user",
            "x-mail-email",
            "x-n-name",
            "x-m-method",
            "x-l-level",
            "x-a-amr",
            "x-as-assertion",
            "x-s-subject",
            "x-i-issuer",
            "x-se-serial",
            "x-f-fingerprint",
        ];
        assert!(prefixes(alone).is_empty());
    }

    #[test]
    fn a_prefix_never_takes_a_trusted_proxys_forwarding_headers_or_request_id() {
        let mut h = hygiene();
        h.identity_prefixes = vec!["x-forwarded-".into(), "x-request-".into()];
        let sent = map(&[
            ("X-Forwarded-For", "192.0.2.1"),
            ("X-Forwarded-Proto", "https"),
            ("X-Request-Id", "abc"),
            ("X-Forwarded-Role", "admin"),
        ]);
        let strip: Vec<String> = h
            .names_to_strip(&sent, true)
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect();
        assert_eq!(strip, ["x-forwarded-role"]);
    }

    #[test]
    fn other_gateways_identity_headers_go_in_every_spelling_even_from_a_trusted_proxy() {
        let spoofed = [
            "X-Remote-User",
            "x_remote_user",
            "REMOTE-USER",
            "Remote_User",
            "X-Forwarded-User",
            "X-Forwarded-Email",
            "x-forwarded-groups",
            "X-Forwarded-Preferred-Username",
            "X-Auth-Request-User",
            "X_Auth_Request_Email",
            "x-auth-request-anything",
            "X-SSL-Client-Cert",
            "X-Ssl-Client-S-Dn",
            "X_SSL_CLIENT_VERIFY",
            "X-Client-Cert",
            "X-Client-Cert-Chain",
            "x-client-certificate",
        ];
        assert_stripped_from_anyone(&spoofed);
        // Look-alikes of no gateway stay.
        let h = map(&[
            ("X-Forwarded-Usership", "x"),
            ("X-Remote", "x"),
            ("User-Agent", "x"),
        ]);
        assert!(hygiene().names_to_strip(&h, false).is_empty());
    }

    #[test]
    fn framing_and_routing_headers_may_not_be_nominated() {
        for bad in [
            "content-length",
            "Content-Length",
            "keep-alive, transfer-encoding",
            "close,HOST",
        ] {
            let h = map(&[("Connection", bad)]);
            assert!(nominated_framing_header(&h).is_some(), "{bad}");
        }
        let split = map(&[
            ("Connection", "keep-alive"),
            ("Connection", "content-length"),
        ]);
        assert_eq!(
            nominated_framing_header(&split).as_deref(),
            Some("content-length")
        );
        for fine in ["upgrade", "TE, close", "keep-alive, X-Own", "trailer"] {
            let h = map(&[("Connection", fine)]);
            assert_eq!(nominated_framing_header(&h), None, "{fine}");
        }
    }

    #[test]
    fn removes_only_gateway_cookies() {
        let h = map(&[(
            "Cookie",
            "prehod_session=s; app=1; prehod_login_x=y; other=2",
        )]);
        assert_eq!(
            hygiene().upstream_cookie(&h),
            Some(Some("app=1; other=2".into()))
        );
        let h = map(&[("Cookie", "prehod_session=s")]);
        assert_eq!(hygiene().upstream_cookie(&h), Some(None));
        let h = map(&[("Cookie", "app=1")]);
        assert_eq!(hygiene().upstream_cookie(&h), None);
        let h = map(&[("Cookie", "a=1"), ("Cookie", "b=2")]);
        assert_eq!(hygiene().upstream_cookie(&h), Some(Some("a=1; b=2".into())));
    }

    #[test]
    fn recognises_every_spelling_of_a_gateway_set_cookie() {
        let h = hygiene();
        for line in [
            "prehod_session=x; Domain=bankart.si; Path=/",
            "PREHOD_SESSION=x",
            " Prehod_lang=en",
            "__Host-prehod_session=x; Secure; Path=/",
            "__SECURE-prehod_post=x",
            "=prehod_session=x",
            "prehod_session",
            "prehod",
        ] {
            assert!(h.is_gateway_set_cookie(line.as_bytes()), "{line}");
        }
        for line in ["app=1; Path=/", "my_prehod=1", "__Host-app=1", "=app=1", ""] {
            assert!(!h.is_gateway_set_cookie(line.as_bytes()), "{line}");
        }
        assert!(h.is_gateway_set_cookie(b"prehod\xff=1"), "not UTF-8");
    }

    #[test]
    fn forwarded_for_trusts_only_trusted_proxies() {
        let h = map(&[("X-Forwarded-For", "1.2.3.4")]);
        let peer = Some("10.1.1.1".parse().unwrap());
        assert_eq!(
            hygiene().forwarded_for(&h, peer, true).unwrap(),
            "1.2.3.4, 10.1.1.1"
        );
        assert_eq!(
            hygiene().forwarded_for(&h, peer, false).unwrap(),
            "10.1.1.1"
        );
        assert!(hygiene().is_trusted_proxy(peer));
        assert!(!hygiene().is_trusted_proxy(Some("192.0.2.1".parse().unwrap())));
    }

    #[test]
    fn redacts_secret_query_values() {
        assert_eq!(
            loggable_path("/cb?code=abc&state=xyz&lang=sl"),
            "/cb?code=REDACTED&state=REDACTED&lang=sl"
        );
        assert_eq!(loggable_path("/plain"), "/plain");
        assert!(valid_request_id("abc-123"));
        assert!(!valid_request_id("a b"));
    }
}
