//! Configuration errors and the mapping from byte offsets to `line:column`.
//!
//! Every error points at the value that caused it, so an operator can jump straight to it; the
//! list is sorted by position and reported whole, never one error per attempt.

use std::fmt;
use std::ops::Range;

/// One problem in a configuration file, located at the offending value.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the error concerns the whole file (it could not be read).
    pub line: usize,
    /// 1-based, in characters; 0 together with `line == 0`.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one configuration file, sorted by position.
///
/// Never empty when returned as an error.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Collects errors against one source text, turning byte spans into positions.
#[derive(Debug)]
pub(crate) struct Diagnostics<'s> {
    file: &'s str,
    text: &'s str,
    /// Byte offset of the start of every line, for binary search.
    line_starts: Vec<usize>,
    errors: Vec<ConfigError>,
}

impl<'s> Diagnostics<'s> {
    pub(crate) fn new(file: &'s str, text: &'s str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Diagnostics {
            file,
            text,
            line_starts,
            errors: Vec::new(),
        }
    }

    /// 1-based line and character column of a byte offset (clamped to the text).
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        (line, column)
    }

    /// Records an error at the start of `span`.
    pub(crate) fn at(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let (line, column) = self.position(span.start);
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
        });
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The sorted, de-duplicated errors, or `Ok` when there were none.
    pub(crate) fn finish(&mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let mut errors = std::mem::take(&mut self.errors);
        errors.sort_by_key(|e| (e.line, e.column));
        errors.dedup();
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let d = Diagnostics::new("f", "ab\nçd = 1\n\nx");
        let cases = [
            (0, (1, 1)),
            (1, (1, 2)),
            (2, (1, 3)),
            (3, (2, 1)),
            (5, (2, 2)),
            (12, (4, 1)),
            (99, (4, 2)),
        ];
        for (offset, expected) in cases {
            assert_eq!(d.position(offset), expected, "offset {offset}");
        }
        // Inside the two-byte 'ç': clamps back to its start.
        assert_eq!(d.position(4), (2, 1));
    }

    #[test]
    fn display_one_error_per_line() {
        let e = |line, message: &str| ConfigError {
            file: "ixn.toml".into(),
            line,
            column: 3,
            message: message.into(),
        };
        let errors = ConfigErrors(vec![e(2, "first"), e(7, "second")]);
        assert_eq!(errors.to_string(), "ixn.toml:2:3: first\nixn.toml:7:3: second");
        let io = ConfigError {
            file: "x.toml".into(),
            line: 0,
            column: 0,
            message: "cannot read".into(),
        };
        assert_eq!(io.to_string(), "x.toml: cannot read");
    }
}
