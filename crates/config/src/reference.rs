//! The configuration reference (`docs/configuration.md`) held against the raw model: every key
//! `raw.rs` accepts is documented there, and every key documented there is one it accepts.
//!
//! The model's keys are found by deserializing each top-level section's raw type from a
//! [`Tracer`], a serde deserializer that answers every field a type asks for and records its
//! path (`tls.certificates[].cert`, `portals.NAME.upstream.urls`). The documented keys are the
//! backticked names in the first column of the reference's tables whose first heading is `key`.
//! So a field added to `raw.rs` without a row fails the test, and so does a row naming a key
//! serde would report as unknown.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde::de::value::{Error, StrDeserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess};
use serde::de::{Deserializer, Visitor};

use crate::raw;

/// What stands for a map's key (a portal's name, an `acr` value) in a key path.
const NAME: &str = "NAME";

/// The keys of the model, as the reference writes them.
#[derive(Debug, Default)]
struct Model {
    /// Every top-level section and every struct field under it.
    keys: BTreeSet<String>,
    /// Entries of maps (`portals.NAME`): may be documented, need not be.
    names: BTreeSet<String>,
}

type Section = fn(&str, &RefCell<Model>) -> Result<(), Error>;

/// Each top-level key the checker knows (`check::TOP_LEVEL_KEYS`) and the raw type it decodes.
const SECTIONS: &[(&str, Section)] = &[
    ("listen", trace::<raw::Listen>),
    ("admin", trace::<raw::Admin>),
    ("state", trace::<raw::State>),
    ("reload", trace::<raw::Reload>),
    ("tls", trace::<raw::Tls>),
    ("trusted_proxies", trace::<Vec<String>>),
    ("timeouts", trace::<raw::Timeouts>),
    ("headers", trace::<raw::Headers>),
    ("cookies", trace::<raw::Cookies>),
    ("server", trace::<raw::Server>),
    ("rate_limits", trace::<raw::RateLimits>),
    ("portals", trace::<BTreeMap<String, raw::Portal>>),
    ("login", trace::<raw::Login>),
    ("session", trace::<raw::Session>),
    ("oidc", trace::<raw::Oidc>),
    ("providers", trace::<Vec<raw::Oidc>>),
    ("assertion", trace::<raw::Assertion>),
    ("certificate_login", trace::<raw::CertificateLogin>),
];

/// Keys serde reads in a shared type but the checker refuses in this place, and why: the
/// reference does not list them (`refused_keys_are_refused_by_the_checker` proves the refusal).
const REFUSED: &[(&str, &str)] = &[
    (
        "rate_limits.login.per_certificate",
        "only rate_limits.certificate_login knows a certificate",
    ),
    (
        "rate_limits.backchannel_logout.per_certificate",
        "only rate_limits.certificate_login knows a certificate",
    ),
];

/// Keys of a value the raw model keeps as YAML and `check::certificates` reads itself (a
/// `crls` entry is a string or this mapping); `tests/check.rs`
/// `check_binds_every_crl_source_to_one_of_its_anchors_cas` proves that it takes exactly these.
const READ_BY_THE_CHECKER: &[&str] = &[
    "certificate_login.anchors[].crls[].source",
    "certificate_login.anchors[].crls[].issuer",
];

fn trace<T: DeserializeOwned>(path: &str, model: &RefCell<Model>) -> Result<(), Error> {
    T::deserialize(Tracer {
        path: path.to_owned(),
        model,
    })
    .map(drop)
}

fn model() -> Model {
    let model = RefCell::new(Model::default());
    for (key, section) in SECTIONS {
        model.borrow_mut().keys.insert((*key).to_owned());
        if let Err(e) = section(key, &model) {
            panic!("{key}: the tracer could not walk its raw type: {e}");
        }
    }
    model.into_inner()
}

/// A deserializer that gives every type what it asks for — each field of a struct, one element
/// of a sequence, one `NAME` entry of a map, a plausible scalar — and records the path of each
/// field and map entry it hands out.
struct Tracer<'m> {
    path: String,
    model: &'m RefCell<Model>,
}

impl<'m> Tracer<'m> {
    fn at(&self, suffix: &str) -> Tracer<'m> {
        Tracer {
            path: format!("{}{suffix}", self.path),
            model: self.model,
        }
    }
}

impl<'de> Deserializer<'de> for Tracer<'_> {
    type Error = Error;

    /// A value the model keeps as it is (`serde_yaml::Value`): nothing to trace inside it.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bool(true)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(1)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(1)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(1)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(1)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(1)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(1)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(1)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(1)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(1.0)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(1.0)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_char('x')
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("x")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("x")
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bytes(b"x")
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bytes(b"x")
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_seq(One(Some(self.at("[]"))))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom(format!(
            "{}: a tuple of {len} (the tracer walks structs, sequences, maps and scalars)",
            self.path
        )))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom(format!(
            "{}: tuple struct {name} (the tracer walks structs, sequences, maps and scalars)",
            self.path
        )))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let entry = self.at(&format!(".{NAME}"));
        self.model.borrow_mut().names.insert(entry.path.clone());
        visitor.visit_map(Entries {
            keys: vec![NAME],
            parent: self,
            named: true,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        {
            let mut model = self.model.borrow_mut();
            for field in fields {
                model.keys.insert(format!("{}.{field}", self.path));
            }
        }
        visitor.visit_map(Entries {
            keys: fields.iter().rev().copied().collect(),
            parent: self,
            named: false,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom(format!(
            "{}: enum {name} (the tracer walks structs, sequences, maps and scalars: teach it enums)",
            self.path
        )))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str("x")
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// A sequence of one element.
struct One<'m>(Option<Tracer<'m>>);

impl<'de> SeqAccess<'de> for One<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        self.0.take().map(|t| seed.deserialize(t)).transpose()
    }
}

/// A struct's fields, or one `NAME` entry of a map; `keys` is popped from the end.
struct Entries<'m> {
    keys: Vec<&'static str>,
    parent: Tracer<'m>,
    /// A map entry (`.NAME`) rather than a struct field.
    named: bool,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.keys.last() {
            Some(key) => {
                let key: StrDeserializer<'_, Error> = key.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let key = self
            .keys
            .pop()
            .ok_or_else(|| de::Error::custom("a value asked for before its key"))?;
        let value = if self.named {
            self.parent.at(&format!(".{NAME}"))
        } else {
            self.parent.at(&format!(".{key}"))
        };
        seed.deserialize(value)
    }
}

/// The keys the reference documents, with their line numbers: every backticked name in the
/// first column of a table whose first heading is `key` (outside code blocks). A trailing `[]`
/// (`tls.certificates[]`: the list itself) is dropped.
fn documented_keys(text: &str) -> Vec<(usize, String)> {
    let mut keys = Vec::new();
    let mut in_code = false;
    let mut in_table = false;
    let mut key_table = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("```") || line.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        if in_code || !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let first = line.split('|').nth(1).unwrap_or_default().trim();
        if !in_table {
            in_table = true;
            key_table = first == "key";
            continue;
        }
        if !key_table || first.starts_with("---") {
            continue;
        }
        for (j, part) in first.split('`').enumerate() {
            if j % 2 == 1 {
                let key = part.strip_suffix("[]").unwrap_or(part);
                keys.push((i + 1, key.to_owned()));
            }
        }
    }
    keys
}

/// Where the reference and the model disagree, one line each.
fn compare(model: &Model, documented: &[(usize, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    let names: BTreeSet<&str> = documented.iter().map(|(_, k)| k.as_str()).collect();
    let refused: BTreeMap<&str, &str> = REFUSED.iter().copied().collect();
    let mut seen = BTreeSet::new();
    for (line, key) in documented {
        if !seen.insert(key) {
            problems.push(format!(
                "docs/configuration.md:{line}: `{key}` is documented twice"
            ));
        }
        if let Some(why) = refused.get(key.as_str()) {
            problems.push(format!(
                "docs/configuration.md:{line}: `{key}` is refused by the checker ({why})"
            ));
        } else if !model.keys.contains(key)
            && !model.names.contains(key)
            && !READ_BY_THE_CHECKER.contains(&key.as_str())
        {
            problems.push(format!(
                "docs/configuration.md:{line}: `{key}` is no key of the model (crates/config/src/raw.rs): prehod check would call it unknown"
            ));
        }
    }
    let all = model
        .keys
        .iter()
        .map(String::as_str)
        .chain(READ_BY_THE_CHECKER.iter().copied());
    for key in all {
        if refused.contains_key(key) {
            continue;
        }
        let covered = names.contains(key)
            || names.iter().any(|d| {
                d.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with("[]."))
            });
        if !covered {
            problems.push(format!(
                "`{key}` is accepted by crates/config/src/raw.rs but not in docs/configuration.md: add a row for it"
            ));
        }
    }
    problems
}

/// File extensions: a span like `server.key` or `tls.crt` names a file, not a key.
const FILE_EXTENSIONS: &[&str] = &["crt", "key", "pem", "rs", "yaml", "yml", "json", "md", "sh"];

/// The config keys the prose of a document names: every inline code span outside code blocks
/// that is a dotted path (`server.read_buffer`, `tls.certificates[].key`) starting with a
/// top-level key; a trailing `[]` is dropped. `section.EXT` (`server.key`, a file) is left out
/// unless the model has that key.
fn mentioned_keys(text: &str, model: &Model) -> Vec<(usize, String)> {
    let mut keys = Vec::new();
    let mut in_code = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        for (j, span) in line.split('`').enumerate() {
            if j % 2 == 0 || !span.contains('.') {
                continue;
            }
            let path_like = span
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
            let top = span.split('.').next().unwrap_or_default();
            if !path_like || !SECTIONS.iter().any(|(k, _)| *k == top) {
                continue;
            }
            let key = span.strip_suffix("[]").unwrap_or(span);
            let parts: Vec<&str> = key.split('.').collect();
            let file_name = parts.len() == 2
                && parts
                    .last()
                    .is_some_and(|ext| FILE_EXTENSIONS.contains(ext))
                && !model.keys.contains(key);
            if !file_name {
                keys.push((i + 1, key.to_owned()));
            }
        }
    }
    keys
}

/// The keys the prose names that the model does not know, one line each.
fn unknown_mentions(model: &Model, file: &str, mentioned: &[(usize, String)]) -> Vec<String> {
    mentioned
        .iter()
        .filter(|(_, key)| {
            !model.keys.contains(key)
                && !model.names.contains(key)
                && !READ_BY_THE_CHECKER.contains(&key.as_str())
        })
        .map(|(line, key)| {
            format!("{file}:{line}: `{key}` is no key of the model (crates/config/src/raw.rs)")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn reference() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_configuration_reference_documents_every_key_of_the_model_and_no_other() {
        let documented = documented_keys(&reference());
        assert!(
            documented.len() > 100,
            "only {} keys found in docs/configuration.md: are its tables' first headings `key`?",
            documented.len()
        );
        let problems = compare(&model(), &documented);
        assert!(
            problems.is_empty(),
            "docs/configuration.md and the config model disagree:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn every_top_level_key_of_the_checker_is_traced() {
        let traced: BTreeSet<&str> = SECTIONS.iter().map(|(k, _)| *k).collect();
        let checked: BTreeSet<&str> = crate::check::TOP_LEVEL_KEYS.iter().copied().collect();
        assert_eq!(
            traced, checked,
            "SECTIONS must name each top-level key of check/mod.rs with the raw type it decodes"
        );
    }

    #[test]
    fn the_tracer_walks_into_every_kind_of_field() {
        let model = model();
        for key in [
            "listen.https",
            "state.sentinel.urls",
            "tls.certificates[].cert",
            "portals.NAME.upstream.health_check.interval",
            "portals.NAME.timeouts.read",
            "certificate_login.anchors[].ocsp.max_age",
            "certificate_login.anchors[].crls",
            "oidc.acr_levels",
            "headers.strip",
        ] {
            assert!(model.keys.contains(key), "{key} not traced: {model:?}");
        }
        assert!(model.names.contains("portals.NAME"), "{model:?}");
        assert!(model.names.contains("oidc.acr_levels.NAME"), "{model:?}");
        assert!(!model.keys.contains("trusted_proxies[]"), "{model:?}");
    }

    #[test]
    fn refused_keys_are_refused_by_the_checker() {
        for (key, why) in REFUSED {
            let mut yaml = String::new();
            let parts: Vec<&str> = key.split('.').collect();
            for (depth, part) in parts.iter().enumerate() {
                let value = if depth + 1 == parts.len() { " 1/s" } else { "" };
                yaml.push_str(&format!("{}{part}:{value}\n", "  ".repeat(depth)));
            }
            let err = crate::Config::from_text(Path::new("/proxy.yaml"), &yaml, |_| None)
                .expect_err("refused");
            assert!(
                err.problems
                    .iter()
                    .any(|p| p.key == *key && p.message.contains(why)),
                "{key}: {err}"
            );
        }
    }

    /// The documents whose prose may name config keys, relative to the repository.
    fn documents() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut names: Vec<String> = [
            "README.md",
            "SECURITY.md",
            "benches/README.md",
            "certs/README.md",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let docs = std::fs::read_dir(root.join("docs")).expect("docs/");
        for entry in docs {
            let name = entry.expect("docs/ entry").file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".md") {
                names.push(format!("docs/{name}"));
            }
        }
        names.sort();
        names
            .into_iter()
            .filter_map(|name| {
                let text = std::fs::read_to_string(root.join(&name)).ok()?;
                Some((name, text))
            })
            .collect()
    }

    #[test]
    fn every_config_key_the_docs_name_is_a_key_of_the_model() {
        let model = model();
        let mut problems = Vec::new();
        let mut found = 0;
        for (name, text) in documents() {
            let mentioned = mentioned_keys(&text, &model);
            found += mentioned.len();
            problems.extend(unknown_mentions(&model, &name, &mentioned));
        }
        assert!(found > 100, "only {found} config keys named in the docs");
        assert!(
            problems.is_empty(),
            "the docs name keys prehod check would call unknown:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn a_misspelt_key_in_prose_is_found_and_file_names_are_not_keys() {
        let model = toy_model();
        let text = "\
Set `reload.watch`, `tls.certificates[].cert` and `tls.certificates[]`; `reload.wach` is wrong.
`tls.crt` and `reload.key` are files; `reload.watch: 5s` and `headers.*` are not paths.
```
`reload.nothing` in a code block
```
";
        let mentioned = mentioned_keys(text, &model);
        let keys: Vec<&str> = mentioned.iter().map(|(_, k)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "reload.watch",
                "tls.certificates[].cert",
                "tls.certificates",
                "reload.wach"
            ]
        );
        let problems = unknown_mentions(&model, "docs/x.md", &mentioned);
        assert_eq!(
            problems,
            ["docs/x.md:1: `reload.wach` is no key of the model (crates/config/src/raw.rs)"]
        );
    }

    fn toy_model() -> Model {
        let mut model = Model::default();
        for key in [
            "tls",
            "tls.certificates",
            "tls.certificates[].cert",
            "reload",
        ] {
            model.keys.insert(key.into());
        }
        model.keys.insert("reload.watch".into());
        model.names.insert("portals.NAME".into());
        model
    }

    fn lines(keys: &[&str]) -> Vec<(usize, String)> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (i + 1, (*k).into()))
            .collect()
    }

    fn full_toy_docs() -> Vec<&'static str> {
        let mut docs = vec![
            "tls.certificates",
            "tls.certificates[].cert",
            "reload.watch",
        ];
        docs.extend(READ_BY_THE_CHECKER);
        docs
    }

    #[test]
    fn a_key_of_the_model_without_a_row_is_found() {
        let model = toy_model();
        assert_eq!(
            compare(&model, &lines(&full_toy_docs())),
            Vec::<String>::new()
        );
        let mut docs = full_toy_docs();
        docs.retain(|k| *k != "reload.watch");
        let problems = compare(&model, &lines(&docs));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("`reload.watch`")));
        assert!(problems.iter().any(|p| p.starts_with("`reload`")));
    }

    #[test]
    fn a_row_naming_no_key_of_the_model_is_found() {
        let model = toy_model();
        let mut docs = full_toy_docs();
        docs.extend([
            "tls.profil",
            "portals.NAME",
            "rate_limits.login.per_certificate",
        ]);
        let problems = compare(&model, &lines(&docs));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].contains("`tls.profil` is no key"),
            "{problems:?}"
        );
        assert!(
            problems[1].contains("refused by the checker"),
            "{problems:?}"
        );
        let twice = [full_toy_docs(), vec!["reload.watch"]].concat();
        let problems = compare(&model, &lines(&twice));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("documented twice"), "{problems:?}");
    }

    #[test]
    fn only_the_first_column_of_key_tables_outside_code_names_keys() {
        let text = "\
| key | meaning |
|---|---|
| `a.b`, `a.c[]` | about `not.this` |

| form | meaning |
|---|---|
| `${NAME}` | not a key |

```
| key | meaning |
|---|---|
| `in.code` | no |
```
| key | meaning |
|---|---|
| `d` | yes |
";
        let keys: Vec<String> = documented_keys(text).into_iter().map(|(_, k)| k).collect();
        assert_eq!(keys, ["a.b", "a.c", "d"]);
    }
}
