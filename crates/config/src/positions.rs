//! Where each key of a YAML document stands: a map from key path to line and column.
//!
//! serde_yaml reports a location only for syntax and type errors, so every other problem
//! (an unreadable file, a duplicate host) would have no line. This module reads the same text
//! once more with yaml-rust2's marked event parser and remembers, for every mapping key and
//! sequence item, the position where it starts.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub col: usize,
}

/// Key path → position. Paths look like `portals.acq.upstream.urls[1]`.
#[derive(Debug, Default)]
pub struct Positions {
    by_path: HashMap<String, Position>,
}

impl Positions {
    /// Indexes `text`. A document the parser rejects gives an empty index: serde_yaml reports
    /// that syntax error itself, with its own location.
    pub fn index(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        Self {
            by_path: builder.by_path,
        }
    }

    /// The position of `path`, or of its nearest ancestor that has one (a missing key is
    /// reported where its parent mapping starts).
    pub fn locate(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(position) = self.by_path.get(path) {
                return *position;
            }
            match path.rsplit_once(['.', '[']) {
                Some((parent, _)) => path = parent,
                None => return Position { line: 1, col: 1 },
            }
        }
    }
}

/// One open container on the parser's stack.
enum Frame {
    /// A mapping: `key` is `Some` once the key scalar is read and the value is pending.
    Mapping {
        path: String,
        key: Option<String>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    by_path: HashMap<String, Position>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn position(mark: Marker) -> Position {
    Position {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

impl Builder {
    /// Called for every node start: returns the path of the node that begins here, and records
    /// where sequence items start. A mapping key scalar returns `None`.
    fn node_path(&mut self, mark: Marker, scalar: Option<&str>) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Mapping { path, key }) => match key.take() {
                Some(k) => Some(join(path, &k)),
                None => {
                    // This node is a key. Only scalar keys name a path.
                    let k = scalar.unwrap_or("?").to_owned();
                    self.by_path.insert(join(path, &k), position(mark));
                    *key = Some(k);
                    None
                }
            },
            Some(Frame::Sequence { path, next }) => {
                let item = format!("{path}[{next}]");
                *next += 1;
                self.by_path.insert(item.clone(), position(mark));
                Some(item)
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::Scalar(value, ..) => {
                self.node_path(mark, Some(&value));
            }
            Event::Alias(_) => {
                self.node_path(mark, None);
            }
            Event::MappingStart(..) => {
                if let Some(path) = self.node_path(mark, None) {
                    self.stack.push(Frame::Mapping { path, key: None });
                } else {
                    // A complex key: track it so its own keys do not pollute the index.
                    self.stack.push(Frame::Mapping {
                        path: "?".into(),
                        key: None,
                    });
                }
            }
            Event::SequenceStart(..) => {
                let path = self.node_path(mark, None).unwrap_or_else(|| "?".into());
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_items_have_their_lines() {
        let text = "a: 1\nportals:\n  acq:\n    host: x\n    urls:\n      - one\n      - two\n";
        let p = Positions::index(text);
        assert_eq!(p.locate("a"), Position { line: 1, col: 1 });
        assert_eq!(p.locate("portals.acq.host"), Position { line: 4, col: 5 });
        assert_eq!(
            p.locate("portals.acq.urls[1]"),
            Position { line: 7, col: 9 }
        );
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(
            p.locate("portals.acq.missing"),
            Position { line: 3, col: 3 }
        );
    }
}
