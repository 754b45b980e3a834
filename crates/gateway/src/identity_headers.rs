//! A session's identity as header values — one list for the request the gateway forwards to a
//! portal (`proxy::upstream`) and for the forward-auth endpoint's answer (`forward_auth`), so
//! the two can never name or encode the identity differently. The signed assertion is added
//! by each caller (it is signed for the portal's audience). A forwarded request takes them
//! ready made from the session ([`values`]).

use bytes::Bytes;
use http::header::{HeaderValue, InvalidHeaderValue};
use prehod_config::IdentityHeader as H;
use prehod_identity::session::{PreparedValues, Session};

/// Calls `put` with each identity header of session `s`, by its kind (the caller names it
/// from `Headers`): user, e-mail, name, method (the provider's id or `certificate`), level, amr, and the certificate's subject, issuer, serial and fingerprint
/// when it has one. Every value that may be text goes through [`header_safe`].
pub fn each<E>(s: &Session, mut put: impl FnMut(H, String) -> Result<(), E>) -> Result<(), E> {
    put(H::User, header_safe(&s.sub))?;
    put(H::Email, header_safe(&s.email))?;
    put(H::Name, header_safe(&s.name))?;
    put(H::Method, s.method_label().to_owned())?;
    put(H::Level, s.level.to_string())?;
    put(H::Amr, header_safe(&s.amr.join(" ")))?;
    if let Some(cert) = &s.cert {
        put(H::CertSubject, header_safe(&cert.subject))?;
        put(H::CertIssuer, header_safe(&cert.issuer))?;
        put(H::CertSerial, header_safe(&cert.serial))?;
    }
    if let Some(fp) = &s.cert_fingerprint {
        put(H::CertFingerprint, header_safe(fp))?;
    }
    Ok(())
}

/// The identity headers of session `s` as [`each`] makes them, as header values: made at the
/// first request of the session object and kept for it while it is in use
/// ([`Session::identity_header_values`]), so that each later request of the cookie clones them
/// (a reference count each) where it formatted, percent-encoded, checked and copied every
/// value again (~4 200 instructions per authenticated request, issue 20). The values share one
/// buffer: one allocation for all of them, not one each.
pub fn values(s: &Session) -> Result<PreparedValues, InvalidHeaderValue> {
    s.identity_header_values(|s| {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(H::ALL.len());
        each(s, |kind, value| {
            text.push_str(&value);
            ends.push((kind, text.len()));
            Ok::<(), std::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
        let text = Bytes::from(text.into_bytes().into_boxed_slice());
        let mut start = 0;
        ends.into_iter()
            .map(|(kind, end)| {
                let value = HeaderValue::from_maybe_shared(text.slice(start..end))?;
                start = end;
                Ok((kind, value))
            })
            .collect()
    })
}

/// Identity values (a certificate CN "Žan", a Rekono name with č, an IDN e-mail) can hold any
/// Unicode; a header value is sent as it is only when it is visible ASCII, otherwise (and when
/// it already looks encoded, so a chosen name cannot pass for another) percent-encoded as
/// UTF-8, RFC 8187 style (`UTF-8''%C5%BDan`), so nothing is lost and nothing becomes a 500.
pub fn header_safe(value: &str) -> String {
    let looks_encoded = value
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("UTF-8''"));
    if !looks_encoded && value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        value.to_owned()
    } else {
        format!(
            "UTF-8''{}",
            url::form_urlencoded::byte_serialize(value.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingora::http::RequestHeader;

    #[test]
    fn identity_values_of_any_text_become_valid_header_values() {
        // Why: a raw value with a control character is refused as a header value (a 500), and
        // raw UTF-8 goes out as obs-text that portals read as Latin-1 or drop.
        let mut raw = RequestHeader::build("GET", b"/", None).unwrap();
        assert!(raw.insert_header("x-auth-user", "a\nb").is_err());
        assert_eq!(header_safe("Jan Novak"), "Jan Novak");
        assert_eq!(header_safe("Žan"), "UTF-8''%C5%BDan");
        assert_eq!(
            header_safe("Špela Čeh Žužek"),
            "UTF-8''%C5%A0pela%20%C4%8Ceh%20%C5%BDu%C5%BEek"
        );
        assert_eq!(
            header_safe("žan@bankart.si"),
            "UTF-8''%C5%BEan%40bankart.si"
        );
        // Control characters cannot split the header; an ASCII look-alike of an encoded value
        // is encoded too, so it cannot decode to another name.
        assert_eq!(
            header_safe("a\r\nX-Auth-User: admin"),
            "UTF-8''a%0D%0AX-Auth-User%3A%20admin"
        );
        assert_eq!(header_safe("utf-8''%41dmin"), "UTF-8''utf-8%27%27%2541dmin");
        for value in [
            "Žan",
            "a\r\nb",
            "\u{7f}",
            "tab\there",
            "UTF-8''x",
            "",
            "日本",
        ] {
            let safe = header_safe(value);
            assert!(
                http::HeaderValue::from_str(&safe).is_ok(),
                "{value:?} → {safe:?} is no header value"
            );
            let mut h = RequestHeader::build("GET", b"/", None).unwrap();
            h.insert_header("x-auth-name", safe).unwrap();
        }
    }

    fn session(name: &str, cert: bool) -> Session {
        use prehod_identity::session::{CertInfo, Method};
        let cert_info = CertInfo {
            organization: String::new(),
            organization_id: String::new(),
            subject: format!("CN={name}"),
            issuer: "CN=Žiga CA\r\n".into(),
            serial: String::new(),
            anchor: String::new(),
            not_after: 0,
            revocation_keys: vec![],
            distribution_points: vec![],
        };
        let method = if cert {
            Method::Certificate
        } else {
            Method::Rekono
        };
        Session {
            sid: "s-1".into(),
            name: name.into(),
            email: "žan@bankart.si".into(),
            amr: vec!["pwd".into(), "otp".into()],
            cert_fingerprint: cert.then(|| "ab:cd".into()),
            cert: cert.then(|| Box::new(cert_info)),
            provider: (!cert).then(|| "bankart-staff".into()),
            ..Session::new(method, "utf-8''%41dmin", 30)
        }
    }

    #[test]
    fn the_values_a_session_keeps_are_the_ones_each_makes() {
        // The attack: hostile identity values (a header split, an encoded look-alike, empty
        // ones) must reach a portal encoded exactly as the forward-auth answer (`each`) encodes
        // them, made once or not — one list, one encoding.
        for s in [
            session("a\r\nX-Auth-User: admin", false),
            session("Žan Novak", true),
            session("", true),
            session("Jan", false),
        ] {
            let mut made = Vec::new();
            each(&s, |kind, value| {
                made.push((kind, value));
                Ok::<(), ()>(())
            })
            .unwrap();
            let kept = values(&s).unwrap();
            let kept_as_text: Vec<(H, String)> = kept
                .iter()
                .map(|(kind, v)| (*kind, v.to_str().unwrap().to_owned()))
                .collect();
            assert_eq!(kept_as_text, made);
            assert!(
                std::ptr::eq(kept.as_ptr(), values(&s).unwrap().as_ptr()),
                "made once"
            );
        }
    }
}
