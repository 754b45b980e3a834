//! The pages' texts: one Project Fluent catalogue per language (`templates/CODE.ftl`, embedded
//! in the binary; a file of the same name in `login.templates` replaces it), read and checked
//! once at start-up. Fluent because a translator edits a plain text file with comments, and
//! the format has variables (`{ $app }`) and attributes (`.title`) without any Rust.
//!
//! The checks, all at start-up: the file parses; every id the Rust code names ([`Text`],
//! [`Message`], [`Page`], the certificate refusals' [`refusal_id`]) is there, with the
//! attributes and only the variables the code gives it. Texts only the templates use are checked by rendering every page (see `super::render`),
//! and the languages against each other by [`Catalogue::missing_from`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_syntax::ast;

use prehod_identity::cert::Refusal;

use super::keys::{refusal_id, Message, Page, Text, PAGE_ATTRIBUTES};
use super::lang::Lang;

/// The catalogues built into the binary.
const EMBEDDED: [(Lang, &str); 2] = [
    (Lang::Sl, include_str!("../../templates/sl.ftl")),
    (Lang::En, include_str!("../../templates/en.ftl")),
];

/// A catalogue that cannot be used, with the file and, where known, the line.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct CatalogueError {
    pub file: String,
    pub message: String,
}

/// One language's texts.
pub struct Catalogue {
    bundle: FluentBundle<FluentResource>,
    /// Every text without variables or attributes, formatted once: what templates read as `t`.
    simple: minijinja::Value,
    /// The title, body and next step of every [`Message`] and [`Page`], formatted once.
    pages: HashMap<&'static str, [String; 3]>,
    /// Every id, with `.attribute` ids for attributes: to compare the languages.
    ids: BTreeSet<String>,
    file: String,
}

impl Catalogue {
    /// `lang`'s catalogue: `DIR/CODE.ftl` when `dir` has one, else the embedded one; checked.
    pub fn load(lang: Lang, dir: Option<&Path>) -> Result<Self, CatalogueError> {
        let name = format!("{}.ftl", lang.code());
        let custom = dir.map(|d| d.join(&name)).filter(|p| p.is_file());
        let (file, source) = match custom {
            Some(path) => {
                let file = path.display().to_string();
                let source = std::fs::read_to_string(&path).map_err(|e| CatalogueError {
                    file: file.clone(),
                    message: e.to_string(),
                })?;
                (file, source)
            }
            None => {
                let embedded = EMBEDDED
                    .iter()
                    .find(|(l, _)| *l == lang)
                    .map_or("", |(_, s)| s);
                (format!("(built-in) {name}"), embedded.to_owned())
            }
        };
        Self::parse(lang, file, source)
    }

    fn parse(lang: Lang, file: String, source: String) -> Result<Self, CatalogueError> {
        let problem = |message: String| CatalogueError {
            file: file.clone(),
            message,
        };
        let resource = FluentResource::try_new(source).map_err(|(res, errors)| {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("line {}: {}", line_of(res.source(), e.pos.start), e.kind))
                .collect();
            problem(lines.join("; "))
        })?;
        let mut ids = BTreeSet::new();
        let mut plain = Vec::new();
        for entry in resource.entries() {
            if let ast::Entry::Message(m) = entry {
                ids.insert(m.id.name.to_owned());
                for a in &m.attributes {
                    ids.insert(format!("{}.{}", m.id.name, a.id.name));
                }
                if m.value.is_some() && m.attributes.is_empty() {
                    plain.push(m.id.name.to_owned());
                }
            }
        }
        let locale = lang
            .code()
            .parse()
            .map_err(|e| problem(format!("language {}: {e}", lang.code())))?;
        let mut bundle = FluentBundle::new_concurrent(vec![locale]);
        // No Unicode isolation marks around variables: the pages are one direction.
        bundle.set_use_isolating(false);
        bundle.add_resource(resource).map_err(|errors| {
            let what: Vec<String> = errors.iter().map(ToString::to_string).collect();
            problem(what.join("; "))
        })?;
        let mut catalogue = Self {
            bundle,
            simple: minijinja::Value::UNDEFINED,
            pages: HashMap::new(),
            ids,
            file: file.clone(),
        };
        catalogue.check_texts().map_err(problem)?;
        let mut simple = BTreeMap::new();
        for id in plain {
            if let Ok(text) = catalogue.format(&id, None, None) {
                simple.insert(id, text);
            }
        }
        catalogue.simple = minijinja::Value::from_serialize(&simple);
        for key in Message::ALL
            .iter()
            .map(|m| m.key())
            .chain(Page::ALL.iter().map(|p| p.key()))
        {
            let mut texts: [String; 3] = Default::default();
            for (text, attribute) in texts.iter_mut().zip(PAGE_ATTRIBUTES) {
                *text = catalogue
                    .format(key, Some(attribute), None)
                    .map_err(problem)?;
            }
            catalogue.pages.insert(key, texts);
        }
        Ok(catalogue)
    }

    /// Every [`Text`] is there and names only the variables the code gives it.
    fn check_texts(&self) -> Result<(), String> {
        for t in Text::ALL {
            let mut args = FluentArgs::new();
            for a in t.args() {
                args.set(*a, "x");
            }
            self.format(t.key(), None, Some(&args))?;
        }
        for r in Refusal::ALL {
            self.format(&refusal_id(r), None, None)?;
        }
        Ok(())
    }

    /// Formats `id` (or its `attribute`): an error says what is missing or wrong.
    fn format(
        &self,
        id: &str,
        attribute: Option<&str>,
        args: Option<&FluentArgs>,
    ) -> Result<String, String> {
        let message = self
            .bundle
            .get_message(id)
            .ok_or_else(|| format!("the text `{id}` is missing"))?;
        let pattern = match attribute {
            Some(a) => message
                .get_attribute(a)
                .map(|a| a.value())
                .ok_or_else(|| format!("the text `{id}` has no `.{a}`"))?,
            None => message
                .value()
                .ok_or_else(|| format!("the text `{id}` has no value"))?,
        };
        let mut errors = Vec::new();
        let text = self.bundle.format_pattern(pattern, args, &mut errors);
        match errors.first() {
            Some(e) => Err(format!("the text `{id}`: {e}")),
            None => Ok(text.into_owned()),
        }
    }

    /// Why a certificate was refused (its [`refusal_id`] text, checked at start-up).
    pub fn refusal(&self, r: Refusal) -> String {
        self.format(&refusal_id(r), None, None).unwrap_or_default()
    }

    /// A text without variables.
    pub fn text(&self, t: Text) -> String {
        self.text_with(t, &[])
    }

    /// A text with its variables (`("app", "CMS web".into())`); checked at start-up, so a
    /// failure here can only be a variable the caller left out: the text is shown without it.
    pub fn text_with(&self, t: Text, args: &[(&'static str, FluentValue<'_>)]) -> String {
        let mut fluent = FluentArgs::with_capacity(args.len());
        for (name, value) in args {
            fluent.set(*name, value.clone());
        }
        let Some(pattern) = self.bundle.get_message(t.key()).and_then(|m| m.value()) else {
            return String::new();
        };
        let mut errors = Vec::new();
        self.bundle
            .format_pattern(pattern, Some(&fluent), &mut errors)
            .into_owned()
    }

    /// The title, body and next step of a message or error page (`key`).
    pub fn page(&self, key: &str) -> (&str, &str, &str) {
        match self.pages.get(key) {
            Some([title, body, next]) => (title, body, next),
            None => ("", "", ""),
        }
    }

    /// The texts without variables, for the templates (`{{ t.welcome }}`).
    pub fn simple(&self) -> &minijinja::Value {
        &self.simple
    }

    /// An error naming the ids `other` has and this catalogue has not.
    pub fn missing_from(&self, other: &Catalogue) -> Result<(), CatalogueError> {
        let missing: Vec<&str> = other
            .ids
            .difference(&self.ids)
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(CatalogueError {
            file: self.file.clone(),
            message: format!(
                "missing {} (in {}): {}",
                if missing.len() == 1 {
                    "a text"
                } else {
                    "texts"
                },
                other.file,
                missing.join(", ")
            ),
        })
    }
}

/// The 1-based line of byte `pos` in `source`.
fn line_of(source: &str, pos: usize) -> usize {
    source.bytes().take(pos).filter(|b| *b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lang: Lang, source: &str) -> Result<Catalogue, CatalogueError> {
        Catalogue::parse(lang, "test.ftl".into(), source.into())
    }

    #[test]
    fn the_built_in_catalogues_load_and_agree() {
        let sl = Catalogue::load(Lang::Sl, None).unwrap();
        let en = Catalogue::load(Lang::En, None).unwrap();
        sl.missing_from(&en).unwrap();
        en.missing_from(&sl).unwrap();
        assert_eq!(
            en.text_with(
                Text::StepUpNeedsHave,
                &[
                    ("app", "CMS web".into()),
                    ("level", 20.into()),
                    ("have", 10.into())
                ]
            ),
            "CMS web needs level of assurance 20; your session has level 10."
        );
        assert_eq!(
            sl.page(Page::Busy.key()).0,
            "Prehod je trenutno preobremenjen"
        );
        assert_eq!(sl.text(Text::TryAgain), "Poskusite znova");
        assert_eq!(sl.refusal(Refusal::Revoked), "Certifikat je preklican.");
        assert_eq!(
            sl.refusal(Refusal::IssuerExpired),
            "Certifikat izdajatelja je potekel (vmesni ali korenski overitelj v verigi)."
        );
    }

    #[test]
    fn a_missing_text_a_missing_attribute_or_a_stray_variable_fails_the_load() {
        let full = EMBEDDED[1].1;
        let without = |id: &str| {
            full.lines()
                .filter(|l| !l.starts_with(&format!("{id} =")))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let e = parse(Lang::En, &without("try_again")).err().unwrap();
        assert!(e.to_string().contains("`try_again` is missing"), "{e}");
        // A certificate refusal's text, one of the two ids named before the labels too.
        for id in [
            "certificate_refusal_revoked",
            "certificate_refusal_issuer_expired",
        ] {
            let e = parse(Lang::En, &without(id)).err().unwrap();
            assert!(e.to_string().contains(&format!("`{id}` is missing")), "{e}");
        }
        let no_next = full.replacen("    .next = Try again in a few seconds.\n", "", 1);
        assert_ne!(no_next, full, "the test edits the catalogue");
        let e = parse(Lang::En, &no_next).err().unwrap();
        assert!(e.to_string().contains("`error_busy` has no `.next`"), "{e}");
        let stray = full.replacen("back_to = Back to { $app }", "back_to = { $who }", 1);
        assert_ne!(stray, full);
        let e = parse(Lang::En, &stray).err().unwrap();
        assert!(e.to_string().contains("`back_to`"), "{e}");
    }

    #[test]
    fn a_broken_file_names_its_line_and_a_language_missing_an_id_is_named() {
        let e = parse(Lang::En, "ok = fine\n\n= no id\n").err().unwrap();
        assert!(e.to_string().starts_with("test.ftl: line 3:"), "{e}");
        let en = Catalogue::load(Lang::En, None).unwrap();
        let mut sl_src = EMBEDDED[0].1.to_owned();
        sl_src.push_str("only_here = samo tu\n");
        let sl = parse(Lang::Sl, &sl_src).unwrap();
        let e = en.missing_from(&sl).err().unwrap();
        assert!(e.to_string().contains("only_here"), "{e}");
    }
}
