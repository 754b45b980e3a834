//! Configuration problems, each with the file, line, column and key it concerns.

use std::fmt;
use std::path::PathBuf;

use crate::positions::Position;

/// One problem in a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub position: Position,
    /// The key path, e.g. `portals.acq.upstream.urls[0]`.
    pub key: String,
    pub message: String,
}

/// Every problem found in one configuration file. Displays one line per problem:
/// `FILE:LINE:COL: key.path: message`.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let key = if p.key.is_empty() { "(top)" } else { &p.key };
            write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file.display(),
                p.position.line,
                p.position.col,
                key,
                p.message
            )?;
        }
        Ok(())
    }
}
