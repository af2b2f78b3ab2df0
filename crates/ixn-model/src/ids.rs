//! Interaction ids: 16 characters of base 62, like the product family's record ids
//! (`0001BaBFVPR2004A`). Generated ids sort by creation time: 8 characters of milliseconds,
//! 2 of node id and 6 of a per-millisecond counter, so ids from one node never repeat.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Timestamp;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Longest id accepted from a client (media servers may bring their own ids).
pub const MAX_ID_LEN: usize = 64;

/// The id of one interaction.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InteractionId(Box<str>);

/// Why an id supplied by a client was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid interaction id {0:?}: 1 to 64 characters of letters, digits, '-', '_' or '.'")]
pub struct InvalidId(pub String);

impl InteractionId {
    /// Validates an id that came from outside.
    pub fn parse(s: &str) -> Result<Self, InvalidId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_ID_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(InteractionId(s.into()))
        } else {
            Err(InvalidId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InteractionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InteractionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for InteractionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for InteractionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        InteractionId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Generates unique, time-ordered ids for one server node.
#[derive(Debug, Clone)]
pub struct IdGenerator {
    node: u16,
    last_ms: i64,
    counter: u64,
}

impl IdGenerator {
    /// `node` distinguishes servers that share a store or a cluster (0..3844).
    pub fn new(node: u16) -> Self {
        IdGenerator {
            node: node % 3844,
            last_ms: i64::MIN,
            counter: 0,
        }
    }

    /// Never returns the same id twice, even if the clock steps back.
    pub fn next(&mut self, now: Timestamp) -> InteractionId {
        let ms = now.millis().max(0);
        if ms > self.last_ms {
            self.last_ms = ms;
            self.counter = 0;
        } else {
            self.counter += 1;
            if self.counter >= 62u64.pow(6) {
                self.last_ms += 1;
                self.counter = 0;
            }
        }
        let mut out = [0u8; 16];
        encode(self.last_ms as u64, &mut out[0..8]);
        encode(u64::from(self.node), &mut out[8..10]);
        encode(self.counter, &mut out[10..16]);
        // Only ASCII from ALPHABET was written.
        let s: String = out.iter().map(|&b| b as char).collect();
        InteractionId(s.into_boxed_str())
    }

    /// Makes sure later ids come after every id issued up to `last` (after loading a store):
    /// the next id uses a later millisecond even if the clock reads `last` or earlier.
    pub fn observe(&mut self, last: Timestamp) {
        if last.millis() >= self.last_ms {
            self.last_ms = last.millis();
            self.counter = 62u64.pow(6) - 1;
        }
    }

    /// The millisecond of the last id issued (persist it to call [`IdGenerator::observe`] after a
    /// restart).
    pub fn clock(&self) -> Timestamp {
        Timestamp(self.last_ms.max(0))
    }
}

fn encode(mut v: u64, out: &mut [u8]) {
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v % 62) as usize];
        v /= 62;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_ordered_and_16_chars() {
        let mut g = IdGenerator::new(7);
        let mut prev = g.next(Timestamp(1_000));
        for i in 0..10_000 {
            let now = Timestamp(1_000 + i / 3);
            let id = g.next(now);
            assert_eq!(id.as_str().len(), 16);
            assert!(id > prev, "{id} after {prev}");
            prev = id;
        }
    }

    #[test]
    fn observe_moves_past_the_observed_millisecond() {
        let mut before = IdGenerator::new(1);
        let issued = before.next(Timestamp(9_000));
        let mut after = IdGenerator::new(1);
        after.observe(before.clock());
        // The clock after the restart reads earlier than the last id issued.
        let next = after.next(Timestamp(8_000));
        assert!(next > issued, "{next} after {issued}");
    }

    #[test]
    fn clock_going_back_still_unique() {
        let mut g = IdGenerator::new(1);
        let a = g.next(Timestamp(5_000));
        let b = g.next(Timestamp(4_000));
        assert!(b > a);
    }

    #[test]
    fn parse_rules() {
        assert!(InteractionId::parse("0001BaBFVPR2004A").is_ok());
        assert!(InteractionId::parse("chat-42.a_b").is_ok());
        for bad in ["", "has space", "semi;colon", &"x".repeat(65)] {
            assert!(InteractionId::parse(bad).is_err(), "{bad}");
        }
    }
}
