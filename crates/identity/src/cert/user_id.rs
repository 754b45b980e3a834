//! User ids of certificate sessions: the anchor's prefix, then the configured attribute of the
//! certificate's subject — or a template of several, filled in one pass so that no value can
//! fake the template's own separators.

use super::Anchor;

/// Which certificate attribute names the user, or a template of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserId {
    SerialNumber,
    CommonName,
    Email,
    /// e.g. `"{organization}/{serial_number}"`; placeholders: `serial_number`, `common_name`,
    /// `email`, `organization`. An empty placeholder makes the certificate unusable.
    Template(String),
}

/// The certificate attributes a user id may be made of.
pub(crate) struct Attributes<'a> {
    pub serial_number: &'a str,
    pub common_name: &'a str,
    pub email: &'a str,
    pub organization: &'a str,
}

impl Anchor {
    /// The user id: this anchor's prefix, then the configured attribute (or template). `None`
    /// when an attribute it needs is empty.
    pub(crate) fn user_id(&self, a: &Attributes<'_>) -> Option<String> {
        let value = match &self.user_id {
            UserId::SerialNumber => a.serial_number.to_owned(),
            UserId::CommonName => a.common_name.to_owned(),
            UserId::Email => a.email.to_owned(),
            UserId::Template(t) => expand_template(t, a)?,
        };
        (!value.is_empty()).then(|| format!("{}{value}", self.user_id_prefix))
    }
}

/// Fills a user-id template in one pass over it (a value is never expanded again, so a CN of
/// `{organization}` stays text). A value that is empty, or that contains a character the
/// template itself uses around its placeholders, makes no id: `{organization}/{serial_number}`
/// must never give one id for O `a/b` + serial `c` and for O `a` + serial `b/c`.
fn expand_template(template: &str, a: &Attributes<'_>) -> Option<String> {
    let mut out = String::new();
    let mut literals = String::new();
    let mut values: Vec<&str> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let (before, after) = rest.split_at(open);
        out.push_str(before);
        literals.push_str(before);
        let close = after.find('}')?;
        let name = after.get(1..close)?;
        let value = match name {
            "serial_number" => a.serial_number,
            "common_name" => a.common_name,
            "email" => a.email,
            "organization" => a.organization,
            _ => return None,
        };
        if value.is_empty() {
            return None;
        }
        values.push(value);
        out.push_str(value);
        rest = after.get(close + 1..)?;
    }
    out.push_str(rest);
    literals.push_str(rest);
    let clash = values
        .iter()
        .any(|v| v.chars().any(|c| literals.contains(c)));
    (!clash).then_some(out)
}

/// [`expand_template`] for callers outside this module (the fuzz targets): the template
/// filled with these attribute values, or `None` when it makes no id.
pub fn expand_user_id_template(
    template: &str,
    serial_number: &str,
    common_name: &str,
    email: &str,
    organization: &str,
) -> Option<String> {
    expand_template(
        template,
        &Attributes {
            serial_number,
            common_name,
            email,
            organization,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_id_template_is_filled_once_and_values_cannot_fake_its_separators() {
        let a = |org, serial, cn| Attributes {
            serial_number: serial,
            common_name: cn,
            email: "",
            organization: org,
        };
        let t = "{organization}/{serial_number}";
        assert_eq!(
            expand_template(t, &a("Banka", "SI-1", "x")).as_deref(),
            Some("Banka/SI-1")
        );
        // O `a/b` + serial `c` and O `a` + serial `b/c` would both be `a/b/c`: neither is.
        assert_eq!(expand_template(t, &a("a/b", "c", "x")), None);
        assert_eq!(expand_template(t, &a("a", "b/c", "x")), None);
        // A value that looks like a placeholder stays text.
        assert_eq!(
            expand_template("{common_name}", &a("Banka", "SI-1", "{organization}")).as_deref(),
            Some("{organization}")
        );
        assert_eq!(
            expand_template(t, &a("", "SI-1", "x")),
            None,
            "an empty value"
        );
        assert_eq!(expand_template("{nope}", &a("a", "b", "c")), None);
        assert_eq!(expand_template("{organization", &a("a", "b", "c")), None);
    }
}
