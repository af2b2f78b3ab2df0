//! User data: the ordered key-value list attached to an interaction (the product family's
//! `KeyValueCollection`). Values are typed (string, integer, binary, nested list); keys may
//! repeat and order is kept. It has a stable binary encoding (stored as one value, the
//! "flexible properties") and a JSON form: an object whose values are strings, integers,
//! nested objects, or `{"$binary": "<base64>"}` for bytes.
//!
//! Binary encoding, version 1 (all integers unsigned LEB128 unless said otherwise):
//! `0x01` (version) then the list: `count`, and per entry `key_len key_utf8 tag value`, where tag
//! `1` = string (`len utf8`), `2` = integer (zig-zag LEB128), `3` = binary (`len bytes`),
//! `4` = nested list (`count` entries, same layout). Nesting deeper than [`MAX_DEPTH`] is refused.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Deepest nesting accepted, in the binary and the JSON form alike.
pub const MAX_DEPTH: usize = 16;
const VERSION: u8 = 1;

/// One typed value.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Value {
    Str(String),
    Int(i64),
    Bin(Vec<u8>),
    List(UserData),
}

/// An ordered list of key-value pairs; keys may repeat.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct UserData(Vec<(String, Value)>);

/// Why bytes could not be decoded as user data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("user data: unsupported encoding version {0}")]
    Version(u8),
    #[error("user data: truncated at byte {0}")]
    Truncated(usize),
    #[error("user data: unknown value tag {tag} at byte {at}")]
    Tag { tag: u8, at: usize },
    #[error("user data: key or string is not UTF-8 at byte {0}")]
    Utf8(usize),
    #[error("user data: nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("user data: {0} trailing bytes")]
    Trailing(usize),
}

impl UserData {
    pub fn new() -> Self {
        UserData(Vec::new())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The first value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn get_int(&self, key: &str) -> Option<i64> {
        match self.get(key) {
            Some(Value::Int(i)) => Some(*i),
            Some(Value::Str(s)) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    /// Appends a pair, keeping any earlier pair with the same key.
    pub fn push(&mut self, key: impl Into<String>, value: Value) {
        self.0.push((key.into(), value));
    }

    /// Replaces the first value under `key`, or appends when there is none.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Removes every pair under `key`; returns whether any was there.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|(k, _)| k != key);
        before != self.0.len()
    }

    /// Applies every pair of `other` with [`UserData::set`].
    pub fn merge(&mut self, other: &UserData) {
        for (k, v) in other.iter() {
            self.set(k, v.clone());
        }
    }

    /// The stable binary form (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.0.len() * 24);
        out.push(VERSION);
        encode_list(self, &mut out);
        out
    }

    /// Parses the binary form; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<UserData, DecodeError> {
        if bytes.is_empty() {
            return Ok(UserData::new());
        }
        if bytes[0] != VERSION {
            return Err(DecodeError::Version(bytes[0]));
        }
        let mut r = Reader { b: bytes, pos: 1 };
        let list = r.list(0)?;
        if r.pos != bytes.len() {
            return Err(DecodeError::Trailing(bytes.len() - r.pos));
        }
        Ok(list)
    }

    /// Depth of nesting (a flat list is 1).
    pub fn depth(&self) -> usize {
        1 + self
            .0
            .iter()
            .map(|(_, v)| if let Value::List(l) = v { l.depth() } else { 0 })
            .max()
            .unwrap_or(0)
    }
}

impl FromIterator<(String, Value)> for UserData {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        UserData(iter.into_iter().collect())
    }
}

impl fmt::Debug for UserData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(k, v)| (k, v))).finish()
    }
}

fn put_uvar(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn encode_list(list: &UserData, out: &mut Vec<u8>) {
    put_uvar(list.0.len() as u64, out);
    for (k, v) in &list.0 {
        put_uvar(k.len() as u64, out);
        out.extend_from_slice(k.as_bytes());
        match v {
            Value::Str(s) => {
                out.push(1);
                put_uvar(s.len() as u64, out);
                out.extend_from_slice(s.as_bytes());
            }
            Value::Int(i) => {
                out.push(2);
                put_uvar(((*i << 1) ^ (*i >> 63)) as u64, out);
            }
            Value::Bin(b) => {
                out.push(3);
                put_uvar(b.len() as u64, out);
                out.extend_from_slice(b);
            }
            Value::List(l) => {
                out.push(4);
                encode_list(l, out);
            }
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let v = *self.b.get(self.pos).ok_or(DecodeError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(v)
    }

    fn uvar(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Truncated(self.pos))
    }

    fn bytes(&mut self) -> Result<&[u8], DecodeError> {
        let len = self.uvar()?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= self.b.len())
            .ok_or(DecodeError::Truncated(start))?;
        self.pos = end;
        Ok(&self.b[start..end])
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let at = self.pos;
        let raw = self.bytes()?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Utf8(at))
    }

    fn list(&mut self, depth: usize) -> Result<UserData, DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let count = self.uvar()?;
        // Each entry takes at least 3 bytes; refuse counts the input cannot hold.
        if count > (self.b.len() - self.pos) as u64 / 3 + 1 {
            return Err(DecodeError::Truncated(self.pos));
        }
        let mut out = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let key = self.string()?;
            let at = self.pos;
            let value = match self.byte()? {
                1 => Value::Str(self.string()?),
                2 => {
                    let z = self.uvar()?;
                    Value::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
                }
                3 => Value::Bin(self.bytes()?.to_vec()),
                4 => Value::List(self.list(depth + 1)?),
                tag => return Err(DecodeError::Tag { tag, at }),
            };
            out.push((key, value));
        }
        Ok(UserData(out))
    }
}

// ---- JSON form ----

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Str(v) => s.serialize_str(v),
            Value::Int(v) => s.serialize_i64(*v),
            Value::Bin(b) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("$binary", &base64_encode(b))?;
                m.end()
            }
            Value::List(l) => l.serialize(s),
        }
    }
}

impl Serialize for UserData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

struct ListVisitor;

impl<'de> Visitor<'de> for ListVisitor {
    type Value = UserData;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of user data (string, integer, nested object or {\"$binary\": base64})")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UserData, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let v: Value = map.next_value()?;
            out.push((key, v));
        }
        let list = UserData(out);
        if list.depth() > MAX_DEPTH {
            return Err(de::Error::custom(format!(
                "user data nested deeper than {MAX_DEPTH}"
            )));
        }
        Ok(list)
    }
}

impl<'de> Deserialize<'de> for UserData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ListVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, an integer, a nested object or {\"$binary\": base64}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer out of range for user data"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        Err(E::custom(
            "user data values are strings, integers, binary or lists; use a string for decimals",
        ))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Int(i64::from(v)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        let list = ListVisitor.visit_map(map)?;
        if list.0.len() == 1 && list.0[0].0 == "$binary" {
            if let Value::Str(b64) = &list.0[0].1 {
                return base64_decode(b64)
                    .map(Value::Bin)
                    .ok_or_else(|| de::Error::custom("invalid base64 in $binary"));
            }
        }
        Ok(Value::List(list))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let t = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(t.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in t {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            "\\PC{0,12}".prop_map(Value::Str),
            any::<i64>().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::Bin),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            proptest::collection::vec(("[a-zA-Z_]{1,8}", inner), 0..6)
                .prop_map(|v| Value::List(v.into_iter().collect()))
        })
    }

    fn user_data() -> impl Strategy<Value = UserData> {
        proptest::collection::vec(("[a-zA-Z_]{1,8}", value()), 0..8).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn binary_round_trips(ud in user_data()) {
            prop_assert_eq!(UserData::decode(&ud.encode()), Ok(ud));
        }

        #[test]
        fn json_round_trips(ud in user_data()) {
            let json = serde_json::to_string(&ud).unwrap();
            let back: UserData = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, ud);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = UserData::decode(&bytes);
        }
    }

    #[test]
    fn encoding_is_stable() {
        let mut ud = UserData::new();
        ud.push("Subject", Value::Str("hi".into()));
        ud.push("n", Value::Int(-1));
        // version, count 2, "Subject" str "hi", "n" int zigzag(-1)=1
        let expected = [
            1, 2, 7, b'S', b'u', b'b', b'j', b'e', b'c', b't', 1, 2, b'h', b'i', 1, b'n', 2, 1,
        ];
        assert_eq!(ud.encode(), expected);
    }

    #[test]
    fn order_and_duplicates_survive_json() {
        let ud: UserData = serde_json::from_str(r#"{"b":1,"a":"x","b":2,"bin":{"$binary":"AAEC"}}"#).unwrap();
        let keys: Vec<_> = ud.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["b", "a", "b", "bin"]);
        assert_eq!(ud.get("bin"), Some(&Value::Bin(vec![0, 1, 2])));
        assert_eq!(
            serde_json::to_string(&ud).unwrap(),
            r#"{"b":1,"a":"x","b":2,"bin":{"$binary":"AAEC"}}"#
        );
    }

    #[test]
    fn refuses_decimals_and_deep_nesting() {
        assert!(serde_json::from_str::<UserData>(r#"{"x":1.5}"#).is_err());
        let deep = "{\"a\":".repeat(20) + "1" + &"}".repeat(20);
        assert!(serde_json::from_str::<UserData>(&deep).is_err());
    }

    #[test]
    fn set_replaces_first_and_remove_removes_all() {
        let mut ud = UserData::new();
        ud.push("k", Value::Int(1));
        ud.push("k", Value::Int(2));
        ud.set("k", Value::Int(3));
        assert_eq!(ud.get("k"), Some(&Value::Int(3)));
        assert!(ud.remove("k"));
        assert!(ud.is_empty());
    }
}
