//! `${NAME}` and `${file:PATH}` substitution in configuration values, so that secrets and site
//! paths come from the environment or from files. `${NAME:-default}` gives a default; `$$` is
//! a literal `$`. `${file:PATH}` is the content of the file at PATH (read by the caller's
//! `read_file`, see `crate::secret_file`); PATH may itself name variables
//! (`${file:${CREDENTIALS_DIRECTORY}/session-key}`), but no other file.
//!
//! Substitution happens on parsed string values, never on the raw text, so neither a variable's
//! value nor a file's content can change the YAML structure, and neither is expanded again.

/// What `${file:` starts.
const FILE_PREFIX: &str = "file:";

/// Expands `input`, looking names up with `lookup` and reading `${file:PATH}` with
/// `read_file`. Returns the first problem: a variable that is unset and has no default, a file
/// that cannot be used (`read_file`'s message), or a malformed reference.
pub fn expand(
    input: &str,
    lookup: impl Fn(&str) -> Option<String>,
    mut read_file: impl FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
    expand_with(input, &lookup, &mut read_file)
}

fn expand_with(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    read_file: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<String, String> {
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
            if let Some(file) = body.strip_prefix(FILE_PREFIX) {
                let (path, tail) = split_reference(file)
                    .ok_or_else(|| format!("unclosed `${{file:` in {input:?}"))?;
                if path.contains("${file:") {
                    return Err("`${file:…}` cannot name its file with another file".to_owned());
                }
                let path = expand_with(path, lookup, &mut |_| Err(String::new()))?;
                if path.is_empty() {
                    return Err("`${file:}` names no file: write ${file:/PATH}".to_owned());
                }
                out.push_str(&read_file(&path)?);
                rest = tail;
                continue;
            }
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

/// Splits `text` at the `}` that closes a reference whose body starts `text`, skipping the
/// `${…}` references inside it: (the body, what follows the `}`).
fn split_reference(text: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    let mut previous = '\0';
    for (at, c) in text.char_indices() {
        match c {
            '{' if previous == '$' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            '}' => {
                let (body, rest) = text.split_at_checked(at)?;
                return Some((body, rest.strip_prefix('}')?));
            }
            _ => {}
        }
        previous = c;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn env(name: &str) -> Option<String> {
        match name {
            "SECRET" => Some("s3cr3t".into()),
            "EMPTY" => Some(String::new()),
            "CREDENTIALS_DIRECTORY" => Some("/run/credentials/prehod.service".into()),
            _ => None,
        }
    }

    fn no_files(path: &str) -> Result<String, String> {
        Err(format!("no file {path} here"))
    }

    fn files(path: &str) -> Result<String, String> {
        match path {
            "/run/credentials/prehod.service/session-key" => Ok("a2V5".into()),
            "/etc/prehod/secret" => Ok("from $ a file ${SECRET}".into()),
            _ => Err(format!("secret file {path} does not exist")),
        }
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        assert_eq!(
            expand("a-${SECRET}-b", env, no_files).unwrap(),
            "a-s3cr3t-b"
        );
        assert_eq!(
            expand("${MISSING:-/etc}/x", env, no_files).unwrap(),
            "/etc/x"
        );
        assert_eq!(expand("${EMPTY:-d}", env, no_files).unwrap(), "d");
        assert_eq!(expand("cost $$5 $x", env, no_files).unwrap(), "cost $5 $x");
    }

    #[test]
    fn refuses_missing_and_malformed() {
        assert_eq!(
            expand("${MISSING}", env, no_files).unwrap_err(),
            "environment variable MISSING is not set"
        );
        assert!(expand("${OPEN", env, no_files)
            .unwrap_err()
            .contains("unclosed"));
        assert!(expand("${BAD-NAME}", env, no_files)
            .unwrap_err()
            .contains("not a valid"));
    }

    #[test]
    fn reads_files_whose_content_is_not_expanded_again() {
        assert_eq!(
            expand("${file:/etc/prehod/secret}", env, files).unwrap(),
            "from $ a file ${SECRET}"
        );
        assert_eq!(
            expand(
                "redis://:${file:${CREDENTIALS_DIRECTORY}/session-key}@redis:6379",
                env,
                files
            )
            .unwrap(),
            "redis://:a2V5@redis:6379"
        );
        assert_eq!(
            expand("${file:/nonexistent}", env, files).unwrap_err(),
            "secret file /nonexistent does not exist"
        );
        assert!(expand("${file:/etc/prehod/secret", env, files)
            .unwrap_err()
            .contains("unclosed `${file:`"));
        assert!(expand("${file:}", env, files)
            .unwrap_err()
            .contains("names no file"));
        assert!(expand("${file:${file:/a}}", env, files)
            .unwrap_err()
            .contains("another file"));
        assert_eq!(
            expand("${file:${UNSET_DIR}/key}", env, files).unwrap_err(),
            "environment variable UNSET_DIR is not set"
        );
    }
}
