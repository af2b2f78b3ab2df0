//! Borrowed, zero-copy views over encoded user data: [`UserDataRef`] and [`ValueRef`] read the
//! stable binary form in place, so a lookup scans bytes instead of chasing one allocation per key
//! and value. Views are only made over bytes [`super::UserData`] has validated (or encoded
//! itself); they never panic, and should the bytes somehow be malformed they stop early.

use std::fmt;

use super::{UserData, VERSION, Value};

/// A borrowed user-data value, read in place from the encoded bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ValueRef<'a> {
    Str(&'a str),
    Int(i64),
    Bin(&'a [u8]),
    List(UserDataRef<'a>),
}

/// A borrowed view of one (possibly nested) list: its entry count then its entries, exactly as
/// the binary encoding lays them out. Bytes are canonical, so byte equality is value equality.
#[derive(Clone, Copy)]
pub struct UserDataRef<'a> {
    /// `count` then the entries, no version byte, nothing after the last entry.
    pub(super) body: &'a [u8],
    /// For `n` entries, `n` one-byte [`key_hash`]es then where each entry starts in `body` as
    /// `n` little-endian `u16`s. Empty when there is no index (nested lists, very long lists),
    /// and then lookups scan.
    pub(super) index: &'a [u8],
}

/// The body of an empty list: a count of zero.
pub(super) const EMPTY_BODY: &[u8] = &[0];

impl PartialEq for UserDataRef<'_> {
    /// The index is derived from the body (and absent from nested lists), so it is left out.
    fn eq(&self, other: &Self) -> bool {
        self.body == other.body
    }
}

impl Eq for UserDataRef<'_> {}

impl<'a> UserDataRef<'a> {
    /// Number of pairs (duplicates counted).
    pub fn len(self) -> usize {
        let mut b = self.body;
        uvar(&mut b).map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn iter(self) -> impl Iterator<Item = (&'a str, ValueRef<'a>)> {
        self.raw()
            .map_while(|(k, v)| Some((std::str::from_utf8(k).ok()?, ValueRef::parse(v)?)))
    }

    /// The first value stored under `key`.
    #[inline]
    pub fn get(self, key: &str) -> Option<ValueRef<'a>> {
        self.find_raw(key.as_bytes()).and_then(ValueRef::parse)
    }

    pub fn get_str(self, key: &str) -> Option<&'a str> {
        match self.get(key) {
            Some(ValueRef::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer, or a string that parses as one once trimmed.
    pub fn get_int(self, key: &str) -> Option<i64> {
        match self.get(key) {
            Some(ValueRef::Int(i)) => Some(i),
            Some(ValueRef::Str(s)) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn contains_key(self, key: &str) -> bool {
        self.find_raw(key.as_bytes()).is_some()
    }

    /// The raw value (tag first) of the first entry under `key`.
    #[inline]
    fn find_raw(self, key: &[u8]) -> Option<&'a [u8]> {
        if self.index.is_empty() {
            self.scan(key)
        } else {
            self.find_indexed(key)
        }
    }

    /// Lookup through the index: a pass over one hash byte per entry, then only entries whose
    /// hash matches are read (their start is known, no walking the entries before them).
    #[inline]
    fn find_indexed(self, key: &[u8]) -> Option<&'a [u8]> {
        let b = self.body;
        let n = self.index.len() / 3;
        let (hashes, starts) = self.index.split_at(n);
        let hash = key_hash(key);
        for (i, _) in hashes.iter().enumerate().filter(|(_, h)| **h == hash) {
            let start = starts.get(2 * i..2 * i + 2)?;
            let start = usize::from(u16::from_le_bytes([start[0], start[1]]));
            let (key_start, key_end, end) = entry_at(b, start)?;
            if b.get(key_start..key_end) == Some(key) {
                return b.get(key_end..end);
            }
        }
        None
    }

    /// Lookup by scanning: a tight loop rather than `raw().find(..)`, since each entry's position
    /// depends on the lengths in the one before and the scan is bound by that chain of loads.
    #[inline]
    fn scan(self, key: &[u8]) -> Option<&'a [u8]> {
        let b = self.body;
        let mut pos = 0;
        let count = len_at(b, &mut pos)?;
        for _ in 0..count {
            let (key_start, key_end, end) = entry_at(b, pos)?;
            if key_end - key_start == key.len() && b.get(key_start..key_end)? == key {
                return b.get(key_end..end);
            }
            pos = end;
        }
        None
    }

    /// Depth of nesting (a flat list is 1).
    pub fn depth(self) -> usize {
        1 + self
            .iter()
            .map(|(_, v)| if let ValueRef::List(l) = v { l.depth() } else { 0 })
            .max()
            .unwrap_or(0)
    }

    /// An owned copy.
    pub fn to_owned(self) -> UserData {
        let mut encoded = Vec::with_capacity(1 + self.body.len());
        encoded.push(VERSION);
        encoded.extend_from_slice(self.body);
        UserData::from_canonical(encoded)
    }

    /// Entries as raw `(key, value)` slices, the value from its tag byte to its end.
    pub(super) fn raw(self) -> RawEntries<'a> {
        let mut rest = self.body;
        let left = uvar(&mut rest).unwrap_or(0);
        RawEntries {
            body: self.body,
            pos: self.body.len() - rest.len(),
            left,
        }
    }
}

impl<'a> ValueRef<'a> {
    /// An owned copy.
    pub fn to_owned(self) -> Value {
        match self {
            ValueRef::Str(s) => Value::Str(s.to_owned()),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Bin(b) => Value::Bin(b.to_vec()),
            ValueRef::List(l) => Value::List(l.to_owned()),
        }
    }

    /// Reads one value from its tag byte; `raw` must end where the value ends.
    #[inline]
    pub(super) fn parse(raw: &'a [u8]) -> Option<Self> {
        let (&tag, mut b) = raw.split_first()?;
        Some(match tag {
            1 => {
                let n = uvar(&mut b)?;
                ValueRef::Str(std::str::from_utf8(take(&mut b, n)?).ok()?)
            }
            2 => ValueRef::Int(unzigzag(uvar(&mut b)?)),
            3 => {
                let n = uvar(&mut b)?;
                ValueRef::Bin(take(&mut b, n)?)
            }
            4 => ValueRef::List(UserDataRef { body: b, index: &[] }),
            _ => return None,
        })
    }

    /// Appends the tag and payload, as the binary encoding lays out a value.
    pub(super) fn encode_into(self, out: &mut Vec<u8>) {
        match self {
            ValueRef::Str(s) => {
                out.push(1);
                put_bytes(s.as_bytes(), out);
            }
            ValueRef::Int(i) => {
                out.push(2);
                put_uvar(zigzag(i), out);
            }
            ValueRef::Bin(b) => {
                out.push(3);
                put_bytes(b, out);
            }
            ValueRef::List(l) => {
                out.push(4);
                out.extend_from_slice(l.body);
            }
        }
    }
}

impl From<ValueRef<'_>> for Value {
    fn from(v: ValueRef<'_>) -> Self {
        v.to_owned()
    }
}

impl fmt::Debug for UserDataRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The entries of a list as raw slices; stops at the count or at the first malformed byte.
/// Written with indexes and a one-byte fast path for lengths: it is the scan behind every
/// user-data lookup in a view condition.
#[derive(Debug)]
pub(super) struct RawEntries<'a> {
    body: &'a [u8],
    /// Where the next entry starts in `body`.
    pub pos: usize,
    /// Entries not yet read.
    left: u64,
}

impl<'a> RawEntries<'a> {
    /// Bytes from the next entry to the end of the list.
    pub fn rest(&self) -> &'a [u8] {
        self.body.get(self.pos..).unwrap_or_default()
    }
}

impl<'a> Iterator for RawEntries<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let entry = entry_at(self.body, self.pos).and_then(|(key_start, key_end, end)| {
            Some((
                self.body.get(key_start..key_end)?,
                self.body.get(key_end..end)?,
                end,
            ))
        });
        match entry {
            Some((key, value, end)) => {
                self.left -= 1;
                self.pos = end;
                Some((key, value))
            }
            None => {
                self.left = 0;
                None
            }
        }
    }
}

/// Reads the entry at `pos`: where its key starts and ends, and where its value (which starts
/// with the tag, right after the key) ends.
#[inline(always)]
fn entry_at(b: &[u8], mut pos: usize) -> Option<(usize, usize, usize)> {
    let key_len = len_at(b, &mut pos)?;
    let key_start = pos;
    let key_end = pos.checked_add(key_len)?;
    let tag = *b.get(key_end)?;
    pos = key_end + 1;
    // Strings first: they are the common case (an if-chain predicts better than a jump table).
    if tag == 1 || tag == 3 {
        let len = len_at(b, &mut pos)?;
        pos = pos.checked_add(len)?;
    } else if tag == 2 {
        while *b.get(pos)? >= 0x80 {
            pos += 1;
        }
        pos += 1;
    } else if tag == 4 {
        let mut rest = b.get(pos..)?;
        let before = rest.len();
        skip_list(&mut rest)?;
        pos += before - rest.len();
    } else {
        return None;
    }
    (pos <= b.len()).then_some((key_start, key_end, pos))
}

/// Reads a length at `pos`, most often a single byte.
#[inline(always)]
fn len_at(b: &[u8], pos: &mut usize) -> Option<usize> {
    let first = *b.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(usize::from(first));
    }
    let mut rest = b.get(*pos..)?;
    let before = rest.len();
    let v = uvar(&mut rest)?;
    *pos += before - rest.len();
    usize::try_from(v).ok()
}

fn skip_list(b: &mut &[u8]) -> Option<()> {
    let count = uvar(b)?;
    for _ in 0..count {
        let klen = uvar(b)?;
        take(b, klen)?;
        skip_value(b)?;
    }
    Some(())
}

fn skip_value(b: &mut &[u8]) -> Option<()> {
    let (&tag, rest) = b.split_first()?;
    *b = rest;
    match tag {
        1 | 3 => {
            let n = uvar(b)?;
            take(b, n)?;
        }
        2 => {
            uvar(b)?;
        }
        4 => skip_list(b)?,
        _ => return None,
    }
    Some(())
}

/// One byte from a key's length, first and last byte, for the index: constant time, and keys of
/// one list rarely share it (`Key1`, `Key2` differ in their last byte; `Subject`, `Segment` in
/// their last). A shared byte only costs reading that entry.
#[inline]
pub(super) fn key_hash(key: &[u8]) -> u8 {
    let (first, last) = (
        key.first().copied().unwrap_or(0),
        key.last().copied().unwrap_or(0),
    );
    (key.len() as u8).wrapping_mul(0x9d) ^ first.rotate_left(3) ^ last
}

/// Reads an unsigned LEB128 from the front of `b`.
#[inline]
pub(super) fn uvar(b: &mut &[u8]) -> Option<u64> {
    if let Some((&byte, rest)) = b.split_first()
        && byte < 0x80
    {
        *b = rest;
        return Some(u64::from(byte));
    }
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = b.split_first()?;
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Takes `n` bytes from the front of `b`.
fn take<'a>(b: &mut &'a [u8], n: u64) -> Option<&'a [u8]> {
    let n = usize::try_from(n).ok().filter(|&n| n <= b.len())?;
    let (head, rest) = b.split_at(n);
    *b = rest;
    Some(head)
}

pub(super) fn put_uvar(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length then the bytes: how keys, strings and binary values are laid out.
pub(super) fn put_bytes(b: &[u8], out: &mut Vec<u8>) {
    put_uvar(b.len() as u64, out);
    out.extend_from_slice(b);
}

pub(super) fn zigzag(i: i64) -> u64 {
    ((i << 1) ^ (i >> 63)) as u64
}

pub(super) fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}
