//! `${VAR}` and `${file:PATH}` in values, and keeping what a secret file held out of every
//! problem message.

use serde_yaml::Value;

use super::{join, resolve, Checker};

impl Checker<'_> {
    /// Replaces `${VAR}` and `${file:PATH}` in every string value, in place.
    pub(super) fn expand_env(&mut self, value: &mut Value, path: &str) {
        match value {
            Value::String(s) => {
                let (base_dir, secrets, sources) =
                    (&self.base_dir, &mut self.secrets, &mut self.sources);
                let expanded = crate::env::expand(s, self.env, |file| {
                    let path = resolve(base_dir, file);
                    sources.push(crate::sources::SourceFile::stamp(&path));
                    let value = crate::secret_file::read_value(&path)?;
                    secrets.push(value.clone());
                    Ok(value)
                });
                match expanded {
                    Ok(expanded) => *s = expanded,
                    Err(message) => self.problem(path, message),
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.expand_env(item, &format!("{path}[{i}]"));
                }
            }
            Value::Mapping(map) => {
                for (key, item) in map.iter_mut() {
                    let key = key.as_str().unwrap_or("?").to_owned();
                    self.expand_env(item, &join(path, &key));
                }
            }
            Value::Tagged(tagged) => self.expand_env(&mut tagged.value, path),
            _ => {}
        }
    }
}

/// `message` without any of `secrets` in it: a value that came from a secret file and was
/// wrong for its key (a type error, a URL, …) is not printed, whatever the message quoted.
/// Values shorter than 4 characters are left alone (they would blot out ordinary words).
pub(super) fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    for secret in secrets.iter().filter(|s| s.chars().count() >= 4) {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "(the content of a secret file)");
        }
    }
    out
}
