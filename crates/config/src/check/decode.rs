//! Decoding one section of the YAML into its raw serde type: unknown keys and type errors
//! become problems at their own key.

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use super::{join, Checker};

impl Checker<'_> {
    /// Deserializes one value, reporting unknown keys and the first type error in it.
    pub(super) fn decode<T: DeserializeOwned>(&mut self, value: &Value, path: &str) -> Option<T> {
        let mut unknown = Vec::new();
        let mut track = serde_path_to_error::Track::new();
        let result = serde_ignored::deserialize(
            serde_path_to_error::Deserializer::new(value, &mut track),
            |ignored| unknown.push(ignored_path(path, &ignored)),
        );
        for key in unknown {
            self.problem(&key, "unknown key");
        }
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                let mut at = path.to_owned();
                for segment in track.path().iter() {
                    match segment {
                        serde_path_to_error::Segment::Seq { index } => {
                            at = format!("{at}[{index}]");
                        }
                        serde_path_to_error::Segment::Map { key } => at = join(&at, key),
                        _ => {}
                    }
                }
                let message = e.to_string();
                match message
                    .strip_prefix("missing field `")
                    .and_then(|m| m.split('`').next())
                {
                    Some(field) => {
                        self.problem(&at, format!("required key `{field}` is missing"));
                    }
                    None => self.problem(&at, message),
                }
                None
            }
        }
    }

    pub(super) fn required<T: DeserializeOwned>(&mut self, top: &Mapping, key: &str) -> Option<T> {
        match top.get(key) {
            Some(value) => self.decode(value, key),
            None => {
                self.problem("", format!("required key `{key}` is missing"));
                None
            }
        }
    }

    pub(super) fn optional<T: DeserializeOwned>(&mut self, top: &Mapping, key: &str) -> Option<T> {
        top.get(key).and_then(|value| self.decode(value, key))
    }
}

fn ignored_path(prefix: &str, path: &serde_ignored::Path<'_>) -> String {
    match path {
        serde_ignored::Path::Root => prefix.to_owned(),
        serde_ignored::Path::Seq { parent, index } => {
            format!("{}[{index}]", ignored_path(prefix, parent))
        }
        serde_ignored::Path::Map { parent, key } => join(&ignored_path(prefix, parent), key),
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => ignored_path(prefix, parent),
    }
}
