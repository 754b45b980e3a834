//! A session's identity as header values — one list for the request the gateway forwards to a
//! portal (`proxy::upstream`) and for the forward-auth endpoint's answer (`forward_auth`), so
//! the two can never name or encode the identity differently. The signed assertion is added
//! by each caller (it is signed for the portal's audience).

use bytes::Bytes;
use pingora::http::IntoCaseHeaderName;
use prehod_config::{Headers, IdentityHeader as H};
use prehod_identity::session::Session;

/// Calls `put` with each identity header of session `s`, by its kind (the caller names it:
/// `Headers` or [`WireNames`]): user, e-mail, name, method (the provider's id or
/// `certificate`), level, amr, and the certificate's subject, issuer, serial and fingerprint
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

/// The configured names of the headers the gateway sets on every request (the request id,
/// the identity headers) as the bytes pingora's `insert_header` takes as they are: given a
/// `HeaderName`, it copies the name into new bytes on every insert (`IntoCaseHeaderName`);
/// a clone of these is a reference count. Built with the snapshot, from `Headers`; the bytes
/// are what pingora would have made of the `HeaderName` (tests below).
pub struct WireNames {
    pub request_id: Bytes,
    identity: [Bytes; 11],
}

impl WireNames {
    pub fn of(headers: &Headers) -> Self {
        let wire = |name: &http::HeaderName| {
            Bytes::copy_from_slice(name.clone().into_case_header_name().as_slice())
        };
        Self {
            request_id: wire(&headers.request_id),
            identity: headers.identity.each_ref().map(wire),
        }
    }
}

impl std::ops::Index<H> for WireNames {
    type Output = Bytes;

    fn index(&self, header: H) -> &Bytes {
        // As `Headers`' index: a variant's discriminant is its place in `IdentityHeader::ALL`,
        // with one name per entry.
        self.identity
            .get(header as usize)
            .expect("one name per identity header")
    }
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

    /// The same header inserted under its `HeaderName` and under its wire name goes out the
    /// same (name case included), for a custom and a standard name.
    #[test]
    fn wire_names_write_what_header_names_wrote() {
        let name = |n: &str| http::HeaderName::from_bytes(n.as_bytes()).expect("name");
        let headers = Headers {
            request_id: name("x-request-id"),
            identity: H::ALL.map(|(_, _, default)| name(default)),
            strip: Vec::new(),
            strip_prefixes: Vec::new(),
        };
        let headers = Headers {
            // A standard name, which pingora writes title-cased.
            request_id: http::header::SERVER,
            ..headers
        };
        let wire = WireNames::of(&headers);
        let mut named = RequestHeader::build("GET", b"/", None).expect("head");
        let mut bytes = RequestHeader::build("GET", b"/", None).expect("head");
        named
            .insert_header(headers.request_id.clone(), "1")
            .expect("insert");
        bytes
            .insert_header(wire.request_id.clone(), "1")
            .expect("insert");
        for (kind, _, _) in H::ALL {
            named
                .insert_header(headers[kind].clone(), "v")
                .expect("insert");
            bytes
                .insert_header(wire[kind].clone(), "v")
                .expect("insert");
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        named.header_to_h1_wire(&mut a);
        bytes.header_to_h1_wire(&mut b);
        assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
        assert!(String::from_utf8_lossy(&b).contains("Server: 1"));
    }
}
