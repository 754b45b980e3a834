//! `${NAME}` substitution in configuration values, so secrets and site paths come from the
//! environment. `${NAME:-default}` gives a default; `$$` is a literal `$`.
//!
//! Substitution happens on parsed string values, never on the raw text, so a variable's value
//! can never change the YAML structure.

/// Expands `input`, looking names up with `lookup`. Returns the name of the first variable
/// that is unset and has no default, or a message for a malformed reference.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    if !input.contains('$') {
        return Ok(input.to_owned());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some((before, after)) = rest.split_once('$') {
        out.push_str(before);
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let (reference, tail) = body
                .split_once('}')
                .ok_or_else(|| format!("unclosed `${{` in {input:?}"))?;
            let (name, default) = match reference.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (reference, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{reference}}}` is not a valid variable reference"
                ));
            }
            match (lookup(name), default) {
                (Some(value), None) => out.push_str(&value),
                (Some(value), Some(_)) if !value.is_empty() => out.push_str(&value),
                (_, Some(default)) => out.push_str(default),
                (None, None) => return Err(format!("environment variable {name} is not set")),
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("s3cr3t".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        assert_eq!(expand("a-${SECRET}-b", env).unwrap(), "a-s3cr3t-b");
        assert_eq!(expand("${MISSING:-/etc}/x", env).unwrap(), "/etc/x");
        assert_eq!(expand("${EMPTY:-d}", env).unwrap(), "d");
        assert_eq!(expand("cost $$5 $x", env).unwrap(), "cost $5 $x");
    }

    #[test]
    fn refuses_missing_and_malformed() {
        assert_eq!(
            expand("${MISSING}", env).unwrap_err(),
            "environment variable MISSING is not set"
        );
        assert!(expand("${OPEN", env).unwrap_err().contains("unclosed"));
        assert!(expand("${BAD-NAME}", env)
            .unwrap_err()
            .contains("not a valid"));
    }
}
