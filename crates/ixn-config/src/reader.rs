//! Typed, span-aware reading of one TOML table, reporting every problem instead of stopping.
//!
//! serde's derive stops at the first error; an operator fixing a file wants all of them at once,
//! so sections are read by hand through [`Fields`], which remembers which keys were read and
//! reports the rest as unknown.

use std::fmt::Display;
use std::ops::{Range, RangeInclusive};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::Diagnostics;

/// A value read from the file together with where it was written.
#[derive(Clone, Debug)]
pub(crate) struct At<T> {
    pub value: T,
    pub span: Range<usize>,
}

impl<T> At<T> {
    pub(crate) fn new(value: T, span: Range<usize>) -> Self {
        At { value, span }
    }
}

/// A table being read: its entries, which ones were read, and how to name it in messages.
#[derive(Debug)]
pub(crate) struct Fields<'t, 'i> {
    /// Message prefix: `[settings]`, `queues[2]`, then `queue "inbound"` once the name is known.
    context: String,
    /// Span of the whole table, where "missing key" errors point.
    span: Range<usize>,
    entries: Vec<Entry<'t, 'i>>,
    /// Every key asked for, so an unknown key can be matched to the closest known one.
    known: Vec<&'static str>,
}

#[derive(Debug)]
struct Entry<'t, 'i> {
    key: &'t str,
    key_span: Range<usize>,
    value: &'t Spanned<DeValue<'i>>,
    used: bool,
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl<'t, 'i> Fields<'t, 'i> {
    pub(crate) fn new(table: &'t DeTable<'i>, span: Range<usize>, context: impl Into<String>) -> Self {
        let entries = table
            .iter()
            .map(|(k, v)| Entry {
                key: k.get_ref().as_ref(),
                key_span: k.span(),
                value: v,
                used: false,
            })
            .collect();
        Fields {
            context: context.into(),
            span,
            entries,
            known: Vec::new(),
        }
    }

    pub(crate) fn context(&self) -> &str {
        &self.context
    }

    pub(crate) fn set_context(&mut self, context: impl Into<String>) {
        self.context = context.into();
    }

    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The raw value of `key`, marking it read.
    pub(crate) fn take(&mut self, key: &'static str) -> Option<&'t Spanned<DeValue<'i>>> {
        self.known.push(key);
        let entry = self.entries.iter_mut().find(|e| e.key == key)?;
        entry.used = true;
        Some(entry.value)
    }

    fn wrong_type(&self, d: &mut Diagnostics<'_>, key: &str, v: &Spanned<DeValue<'_>>, expected: &str) {
        d.at(
            &v.span(),
            format!(
                "{}: {key} must be {expected}, not {}",
                self.context,
                type_name(v.get_ref())
            ),
        );
    }

    pub(crate) fn string(&mut self, d: &mut Diagnostics<'_>, key: &'static str) -> Option<At<String>> {
        let v = self.take(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(At::new(s.to_string(), v.span())),
            _ => {
                self.wrong_type(d, key, v, "a string");
                None
            }
        }
    }

    /// Like [`Fields::string`], and reports a missing key at the table.
    pub(crate) fn required_string(
        &mut self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
    ) -> Option<At<String>> {
        let present = self.entries.iter().any(|e| e.key == key);
        let value = self.string(d, key);
        if !present {
            d.at(&self.span, format!("{}: missing key {key}", self.context));
        }
        value
    }

    pub(crate) fn bool(&mut self, d: &mut Diagnostics<'_>, key: &'static str, default: bool) -> bool {
        let Some(v) = self.take(key) else { return default };
        match v.get_ref() {
            DeValue::Boolean(b) => *b,
            _ => {
                self.wrong_type(d, key, v, "true or false");
                default
            }
        }
    }

    /// An integer within `range`; the default when absent or wrong. `unit` follows the range in
    /// messages (`"seconds"`), empty for plain counts.
    pub(crate) fn int(
        &mut self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
        range: RangeInclusive<u64>,
        default: u64,
        unit: &str,
    ) -> u64 {
        self.int_at(d, key, range, default, unit)
            .map_or(default, |a| a.value)
    }

    /// An optional integer within `range`, with its position.
    pub(crate) fn int_at(
        &mut self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
        range: RangeInclusive<u64>,
        default: impl Display,
        unit: &str,
    ) -> Option<At<u64>> {
        let v = self.take(key)?;
        let DeValue::Integer(i) = v.get_ref() else {
            self.wrong_type(d, key, v, "an integer");
            return None;
        };
        let parsed = i128::from_str_radix(i.as_str(), i.radix()).ok();
        match parsed
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| range.contains(n))
        {
            Some(n) => Some(At::new(n, v.span())),
            None => {
                let unit = if unit.is_empty() {
                    String::new()
                } else {
                    format!(" {unit}")
                };
                d.at(
                    &v.span(),
                    format!(
                        "{}: {key} = {i} is out of range {}..{}{unit} (default {default})",
                        self.context,
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    /// A sub-table such as `[server]`, as fields named `[key]`.
    pub(crate) fn table(&mut self, d: &mut Diagnostics<'_>, key: &'static str) -> Option<Fields<'t, 'i>> {
        let v = self.take(key)?;
        match v.get_ref() {
            DeValue::Table(t) => Some(Fields::new(t, v.span(), format!("[{key}]"))),
            _ => {
                self.wrong_type(d, key, v, "a table");
                None
            }
        }
    }

    /// An array of tables such as `[[queues]]`, each as fields named `key[index]`.
    pub(crate) fn array_of_tables(
        &mut self,
        d: &mut Diagnostics<'_>,
        key: &'static str,
    ) -> Option<Vec<Fields<'t, 'i>>> {
        let v = self.take(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(d, key, v, &format!("an array of tables ([[{key}]])"));
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(t) => out.push(Fields::new(t, item.span(), format!("{key}[{index}]"))),
                other => d.at(
                    &item.span(),
                    format!("{key}[{index}] must be a table, not {}", type_name(other)),
                ),
            }
        }
        Some(out)
    }

    /// Every entry of a table whose keys are data (user-data keys, event ids), marking all read.
    pub(crate) fn entries_raw(&mut self) -> Vec<(&'t str, &'t Spanned<DeValue<'i>>)> {
        self.entries
            .iter_mut()
            .map(|e| {
                e.used = true;
                (e.key, e.value)
            })
            .collect()
    }

    /// Reports every key that was never read.
    pub(crate) fn finish(self, d: &mut Diagnostics<'_>) {
        for e in self.entries.iter().filter(|e| !e.used) {
            let hint = closest(e.key, &self.known).map_or_else(
                || {
                    let mut known = self.known.clone();
                    known.sort_unstable();
                    known.dedup();
                    format!(" (known keys: {})", known.join(", "))
                },
                |k| format!(" (did you mean {k}?)"),
            );
            d.at(
                &e.key_span,
                format!("{}: unknown key {}{hint}", self.context, e.key),
            );
        }
    }
}

/// The known key nearest to a misspelt one, when it is close enough to be a typo.
fn closest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(&key.to_ascii_lowercase(), k), *k))
        .filter(|(dist, k)| *dist <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_key() {
        let known = ["delivering-timeout", "handling-timeout", "listen"];
        let cases = [
            ("delivering-timout", Some("delivering-timeout")),
            ("delivering_timeout", Some("delivering-timeout")),
            ("Listen", Some("listen")),
            ("nothing-alike", None),
        ];
        for (key, expected) in cases {
            assert_eq!(closest(key, &known), expected, "{key}");
        }
    }
}
