//! User data: the ordered key-value list attached to an interaction (the product family's
//! `KeyValueCollection`). Values are typed (string, integer, binary, nested list); keys may
//! repeat and order is kept. It has a stable binary encoding (stored as one value, the
//! "flexible properties") and a JSON form: an object whose values are strings, integers,
//! nested objects, or `{"$binary": "<base64>"}` for bytes.
//!
//! In memory, [`UserData`] is that binary encoding in one allocation (a million queued
//! interactions must fit in a gigabyte), behind a small index of where each top-level entry
//! starts so a lookup need not walk the entries one length at a time. Reads go through the
//! borrowed [`UserDataRef`] and [`ValueRef`] views, which read the bytes in place. Changes
//! re-encode, which is fine because they are rare (submit, change-properties). Bytes are
//! validated once, on decode, and kept canonical (shortest LEB128), so byte equality is value
//! equality.
//!
//! Binary encoding, version 1 (all integers unsigned LEB128 unless said otherwise):
//! `0x01` (version) then the list: `count`, and per entry `key_len key_utf8 tag value`, where tag
//! `1` = string (`len utf8`), `2` = integer (zig-zag LEB128), `3` = binary (`len bytes`),
//! `4` = nested list (`count` entries, same layout). Nesting deeper than [`MAX_DEPTH`] is refused.

mod json;
mod view;

use std::fmt;

use view::{EMPTY_BODY, put_bytes, put_uvar, uvar};
pub use view::{UserDataRef, ValueRef};

/// Deepest nesting accepted, in the binary and the JSON form alike.
pub const MAX_DEPTH: usize = 16;
const VERSION: u8 = 1;
/// The encoding of an empty list.
const EMPTY_ENCODED: &[u8] = &[VERSION, 0];

/// One typed value, owned: for building user data and for keeping a value past its list.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Value {
    Str(String),
    Int(i64),
    Bin(Vec<u8>),
    List(UserData),
}

/// An ordered list of key-value pairs; keys may repeat.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct UserData {
    /// `n`, then the index of the `n` top-level entries ([`UserDataRef`]'s: a hash byte of each
    /// key, then each entry's offset as a little-endian `u16` in the list's body, the encoding
    /// after its version byte), then the canonical encoding. `n` is 0 (no index, lookups scan)
    /// past [`MAX_INDEXED`] entries or 64 KiB. Empty, with no allocation, for an empty list.
    /// The index is a function of the encoding, so comparing these bytes compares the values.
    bytes: Box<[u8]>,
}

/// Most top-level entries the index covers (its count is one byte).
const MAX_INDEXED: usize = 255;

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

impl Value {
    /// A borrowed view, as [`UserData::get`] returns.
    pub fn view(&self) -> ValueRef<'_> {
        match self {
            Value::Str(s) => ValueRef::Str(s),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Bin(b) => ValueRef::Bin(b),
            Value::List(l) => ValueRef::List(l.view()),
        }
    }
}

impl UserData {
    pub fn new() -> Self {
        UserData::default()
    }

    /// A borrowed view of the whole list.
    #[inline]
    pub fn view(&self) -> UserDataRef<'_> {
        let (index, encoded) = self.split();
        UserDataRef {
            body: encoded.get(1..).unwrap_or(EMPTY_BODY),
            index,
        }
    }

    pub fn len(&self) -> usize {
        self.view().len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, ValueRef<'_>)> {
        self.view().iter()
    }

    /// The first value stored under `key`.
    #[inline]
    pub fn get(&self, key: &str) -> Option<ValueRef<'_>> {
        self.view().get(key)
    }

    #[inline]
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.view().get_str(key)
    }

    /// An integer, or a string that parses as one once trimmed.
    #[inline]
    pub fn get_int(&self, key: &str) -> Option<i64> {
        self.view().get_int(key)
    }

    #[inline]
    pub fn contains_key(&self, key: &str) -> bool {
        self.view().contains_key(key)
    }

    /// Depth of nesting (a flat list is 1).
    pub fn depth(&self) -> usize {
        self.view().depth()
    }

    /// Appends a pair, keeping any earlier pair with the same key.
    pub fn push(&mut self, key: impl AsRef<str>, value: Value) {
        self.push_raw(key.as_ref().as_bytes(), &value_bytes(value.view()));
    }

    /// Replaces the first value under `key`, or appends when there is none.
    pub fn set(&mut self, key: impl AsRef<str>, value: Value) {
        self.set_raw(key.as_ref().as_bytes(), &value_bytes(value.view()));
    }

    /// Removes every pair under `key`; returns whether any was there.
    pub fn remove(&mut self, key: &str) -> bool {
        if !self.contains_key(key) {
            return false;
        }
        let key = key.as_bytes();
        let mut entries = Vec::with_capacity(self.as_bytes().len());
        let mut count = 0;
        for (k, v) in self.view().raw().filter(|(k, _)| *k != key) {
            put_bytes(k, &mut entries);
            entries.extend_from_slice(v);
            count += 1;
        }
        *self = UserData::assemble(count, &entries);
        true
    }

    /// Applies every pair of `other` with [`UserData::set`].
    pub fn merge(&mut self, other: &UserData) {
        for (k, v) in other.view().raw() {
            self.set_raw(k, v);
        }
    }

    /// The stable binary form (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    /// The stable binary form, borrowed: what [`UserData::encode`] returns.
    pub fn as_bytes(&self) -> &[u8] {
        self.split().1
    }

    /// The index and the encoding.
    #[inline]
    fn split(&self) -> (&[u8], &[u8]) {
        let Some((&n, rest)) = self.bytes.split_first() else {
            return (&[], EMPTY_ENCODED);
        };
        rest.split_at((3 * usize::from(n)).min(rest.len()))
    }

    /// Parses the binary form; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<UserData, DecodeError> {
        if bytes.is_empty() {
            return Ok(UserData::new());
        }
        if bytes[0] != VERSION {
            return Err(DecodeError::Version(bytes[0]));
        }
        let mut out = Vec::with_capacity(bytes.len());
        out.push(VERSION);
        let mut r = Reader { b: bytes, pos: 1 };
        r.list(0, &mut out)?;
        if r.pos != bytes.len() {
            return Err(DecodeError::Trailing(bytes.len() - r.pos));
        }
        Ok(UserData::from_canonical(out))
    }

    /// Wraps a canonical encoding, indexing it, and keeping the empty list allocation-free.
    fn from_canonical(encoded: Vec<u8>) -> UserData {
        if encoded == EMPTY_ENCODED {
            return UserData::new();
        }
        let body = UserDataRef {
            body: encoded.get(1..).unwrap_or(EMPTY_BODY),
            index: &[],
        };
        let mut raw = body.raw();
        let (mut hashes, mut offsets) = (Vec::new(), Vec::new());
        let mut start = raw.pos;
        while let Some((key, _)) = raw.next() {
            hashes.push(view::key_hash(key));
            offsets.extend_from_slice(&(start as u16).to_le_bytes());
            start = raw.pos;
        }
        let indexed = hashes.len() <= MAX_INDEXED && encoded.len() <= usize::from(u16::MAX);
        let n = if indexed { hashes.len() } else { 0 };
        let mut bytes = Vec::with_capacity(1 + 3 * n + encoded.len());
        bytes.push(n as u8);
        if indexed {
            bytes.extend_from_slice(&hashes);
            bytes.extend_from_slice(&offsets);
        }
        bytes.extend_from_slice(&encoded);
        UserData {
            bytes: bytes.into_boxed_slice(),
        }
    }

    /// The list of `count` already encoded entries.
    fn assemble(count: u64, entries: &[u8]) -> UserData {
        if count == 0 {
            return UserData::new();
        }
        let mut bytes = Vec::with_capacity(1 + 10 + entries.len());
        bytes.push(VERSION);
        put_uvar(count, &mut bytes);
        bytes.extend_from_slice(entries);
        UserData::from_canonical(bytes)
    }

    /// Bytes of the entries, after the version and the count.
    fn entries(&self) -> &[u8] {
        self.view().raw().rest()
    }

    /// Appends an entry whose value is already encoded (tag first).
    fn push_raw(&mut self, key: &[u8], value: &[u8]) {
        let mut entries = Vec::with_capacity(self.as_bytes().len() + key.len() + value.len() + 2);
        entries.extend_from_slice(self.entries());
        put_bytes(key, &mut entries);
        entries.extend_from_slice(value);
        *self = UserData::assemble(self.len() as u64 + 1, &entries);
    }

    /// Replaces the first value under `key` with one already encoded, or appends it.
    fn set_raw(&mut self, key: &[u8], value: &[u8]) {
        let mut raw = self.view().raw();
        while let Some((k, v)) = raw.next() {
            if k == key {
                // The view's body starts after the version byte.
                let end = 1 + raw.pos;
                let start = end - v.len();
                let old = self.as_bytes();
                let mut encoded = Vec::with_capacity(old.len() - v.len() + value.len());
                encoded.extend_from_slice(&old[..start]);
                encoded.extend_from_slice(value);
                encoded.extend_from_slice(&old[end..]);
                *self = UserData::from_canonical(encoded);
                return;
            }
        }
        self.push_raw(key, value);
    }
}

/// One value's encoding, tag first.
fn value_bytes(v: ValueRef<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode_into(&mut out);
    out
}

impl FromIterator<(String, Value)> for UserData {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        let mut entries = Vec::new();
        let mut count = 0;
        for (k, v) in iter {
            put_bytes(k.as_bytes(), &mut entries);
            v.view().encode_into(&mut entries);
            count += 1;
        }
        UserData::assemble(count, &entries)
    }
}

impl fmt::Debug for UserData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.view().fmt(f)
    }
}

/// Validates the binary form and copies it out in canonical form (shortest LEB128), so that
/// equal values have equal bytes whatever produced them.
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
        let mut rest = self.b.get(self.pos..).unwrap_or_default();
        let before = rest.len();
        let v = uvar(&mut rest);
        self.pos += before - rest.len();
        v.ok_or(DecodeError::Truncated(self.pos))
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

    /// A length-prefixed UTF-8 string, copied to `out` with its length.
    fn string(&mut self, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        let at = self.pos;
        let raw = self.bytes()?;
        std::str::from_utf8(raw).map_err(|_| DecodeError::Utf8(at))?;
        put_bytes(raw, out);
        Ok(())
    }

    fn list(&mut self, depth: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::TooDeep);
        }
        let count = self.uvar()?;
        // Each entry takes at least 3 bytes; refuse counts the input cannot hold.
        if count > (self.b.len() - self.pos) as u64 / 3 + 1 {
            return Err(DecodeError::Truncated(self.pos));
        }
        put_uvar(count, out);
        for _ in 0..count {
            self.string(out)?;
            let at = self.pos;
            let tag = self.byte()?;
            out.push(tag);
            match tag {
                1 => self.string(out)?,
                2 => put_uvar(self.uvar()?, out),
                3 => put_bytes(self.bytes()?, out),
                4 => self.list(depth + 1, out)?,
                tag => return Err(DecodeError::Tag { tag, at }),
            }
        }
        Ok(())
    }
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

    /// The obvious representation, to check the encoded one against.
    type Model = Vec<(String, Value)>;

    fn model() -> impl Strategy<Value = Model> {
        // Few distinct keys, so duplicates and hits are common.
        proptest::collection::vec(("[a-c]{1,2}", value()), 0..8)
    }

    fn model_set(m: &mut Model, k: &str, v: Value) {
        match m.iter_mut().find(|(mk, _)| mk == k) {
            Some(slot) => slot.1 = v,
            None => m.push((k.to_owned(), v)),
        }
    }

    fn check_against(ud: &UserData, m: &Model) -> Result<(), TestCaseError> {
        prop_assert_eq!(ud.len(), m.len());
        prop_assert_eq!(ud.is_empty(), m.is_empty());
        let pairs: Vec<(String, Value)> = ud.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        prop_assert_eq!(&pairs, m);
        for key in ["a", "b", "c", "aa", "zz"] {
            let first = m.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            prop_assert_eq!(ud.get(key), first.map(Value::view));
            prop_assert_eq!(ud.contains_key(key), first.is_some());
        }
        prop_assert_eq!(ud, &m.iter().cloned().collect::<UserData>());
        Ok(())
    }

    proptest! {
        #[test]
        fn mutations_match_the_model(
            start in model(),
            ops in proptest::collection::vec((0..4u8, "[a-c]{1,2}", value()), 0..8),
        ) {
            let mut m = start.clone();
            let mut ud: UserData = start.into_iter().collect();
            check_against(&ud, &m)?;
            for (op, k, v) in ops {
                match op {
                    0 => {
                        m.push((k.clone(), v.clone()));
                        ud.push(&k, v);
                    }
                    1 => {
                        model_set(&mut m, &k, v.clone());
                        ud.set(&k, v);
                    }
                    2 => {
                        let had = m.iter().any(|(mk, _)| *mk == k);
                        m.retain(|(mk, _)| *mk != k);
                        prop_assert_eq!(ud.remove(&k), had);
                    }
                    _ => {
                        let Value::List(other) = v else { continue };
                        for (ok, ov) in other.iter() {
                            model_set(&mut m, ok, ov.to_owned());
                        }
                        ud.merge(&other);
                    }
                }
                check_against(&ud, &m)?;
            }
        }

        #[test]
        fn decoded_bytes_are_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(ud) = UserData::decode(&bytes) {
                let again = UserData::decode(&ud.encode());
                prop_assert_eq!(again.as_ref(), Ok(&ud));
                prop_assert_eq!(again.map(|a| a.encode()), Ok(ud.encode()));
            }
        }

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
        assert_eq!(ud.get("bin"), Some(ValueRef::Bin(&[0, 1, 2])));
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
    fn non_canonical_integers_decode_to_canonical_bytes() {
        // Count 1 written in two bytes, key length 1, then zig-zag 1 (-1) written in three.
        let long = [1, 0x81, 0x00, 1, b'n', 2, 0x81, 0x80, 0x00];
        let ud = UserData::decode(&long).unwrap();
        assert_eq!(ud.get("n"), Some(ValueRef::Int(-1)));
        assert_eq!(ud.encode(), [1, 1, 1, b'n', 2, 1]);
        let mut built = UserData::new();
        built.push("n", Value::Int(-1));
        assert_eq!(ud, built);
    }

    #[test]
    fn empty_encodes_as_a_zero_count() {
        assert_eq!(UserData::new().encode(), [1, 0]);
        assert_eq!(UserData::decode(&[1, 0]), Ok(UserData::new()));
        assert_eq!(UserData::decode(&[]), Ok(UserData::new()));
        let mut ud = UserData::new();
        ud.push("k", Value::Int(1));
        assert!(ud.remove("k"));
        assert_eq!(ud, UserData::new());
        assert_eq!(ud.encode(), [1, 0]);
    }

    #[test]
    fn nested_lists_are_read_in_place() {
        let ud: UserData = serde_json::from_str(r#"{"a":{"x":1,"y":{"z":"deep"}},"b":"after"}"#).unwrap();
        let Some(ValueRef::List(a)) = ud.get("a") else {
            panic!("a is a list: {ud:?}");
        };
        assert_eq!(a.len(), 2);
        assert_eq!(a.get_int("x"), Some(1));
        let Some(ValueRef::List(y)) = a.get("y") else {
            panic!("y is a list: {a:?}");
        };
        assert_eq!(y.iter().collect::<Vec<_>>(), [("z", ValueRef::Str("deep"))]);
        assert_eq!(ud.get_str("b"), Some("after"));
        assert_eq!(ud.depth(), 3);
        let owned: UserData = serde_json::from_str(r#"{"x":1,"y":{"z":"deep"}}"#).unwrap();
        assert_eq!(a.to_owned(), owned);
        assert_eq!(ValueRef::List(a).to_owned(), Value::List(owned));
    }

    #[test]
    fn lookups_without_the_index_agree() {
        // Past MAX_INDEXED entries there is no index; a 200-byte key has a two-byte length.
        let long_key = "k".repeat(200);
        let mut ud: UserData = (0..300).map(|i| (format!("k{i}"), Value::Int(i))).collect();
        ud.push(&long_key, Value::Str("long".into()));
        for (i, ud) in [(0, &ud), (1, &ud.view().to_owned())] {
            assert_eq!(ud.get_int("k0"), Some(0), "{i}");
            assert_eq!(ud.get_int("k299"), Some(299), "{i}");
            assert_eq!(ud.get_str(&long_key), Some("long"), "{i}");
            assert!(!ud.contains_key("k300"), "{i}");
        }
        let mut small = UserData::new();
        small.push(&long_key, Value::Int(1));
        small.push("short", Value::Int(2));
        assert_eq!(small.get_int(&long_key), Some(1));
        assert_eq!(small.get_int("short"), Some(2));
        assert_eq!(small.get_int(&long_key[1..]), None);
    }

    #[test]
    fn keys_sharing_an_index_hash_are_told_apart() {
        // Same length, first and last byte: the same hash byte.
        assert_eq!(view::key_hash(b"axb"), view::key_hash(b"ayb"));
        let mut ud = UserData::new();
        ud.push("axb", Value::Int(1));
        ud.push("ayb", Value::Int(2));
        assert_eq!(ud.get("ayb"), Some(ValueRef::Int(2)));
        assert_eq!(ud.get("axb"), Some(ValueRef::Int(1)));
        assert_eq!(ud.get("azb"), None);
    }

    #[test]
    fn debug_reads_like_a_map() {
        let ud: UserData = serde_json::from_str(r#"{"s":"v","n":2,"l":{"b":{"$binary":"AQI="}}}"#).unwrap();
        assert_eq!(
            format!("{ud:?}"),
            r#"{"s": Str("v"), "n": Int(2), "l": List({"b": Bin([1, 2])})}"#
        );
    }

    #[test]
    fn set_replaces_first_and_remove_removes_all() {
        let mut ud = UserData::new();
        ud.push("k", Value::Int(1));
        ud.push("k", Value::Int(2));
        ud.set("k", Value::Int(3));
        assert_eq!(ud.get("k"), Some(ValueRef::Int(3)));
        assert!(ud.remove("k"));
        assert!(ud.is_empty());
    }
}
