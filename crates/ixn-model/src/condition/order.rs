//! View orders (`priority desc, submitted_at asc`) and their memcomparable sort keys: comparing
//! two keys bytewise gives the order of the clause, with `submit_seq` as the final tie-breaker, so
//! an ordered index over interactions is a plain `BTreeMap<SortKey, _>`. NULLs sort last in
//! ascending and first in descending terms, as PostgreSQL does by default.
//!
//! Encoding of one term: a tag byte (`1` integer or timestamp, `2` string, `3` NULL), then for
//! numbers 8 bytes big-endian with the sign bit flipped, for strings the bytes with `0x00` written
//! as `0x00 0xFF` and a `0x00 0x00` terminator (so no encoding is a prefix of another). A
//! descending term is the same bytes inverted. User-data terms order integers before strings.

use super::ast::Prop;
use super::eval::{Val, prop_value};
use crate::{Interaction, Timestamp};

/// One term of an order clause.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct OrderTerm {
    pub prop: Prop,
    pub desc: bool,
}

/// A memcomparable sort key (see the module docs).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SortKey(pub Box<[u8]>);

const TAG_NUM: u8 = 1;
const TAG_STR: u8 = 2;
const TAG_NULL: u8 = 3;

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.push(TAG_NUM);
    out.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
}

fn encode_val(out: &mut Vec<u8>, v: Val<'_>) {
    match v {
        Val::Int(i) => put_i64(out, i),
        Val::Ts(t) => put_i64(out, t.millis()),
        // Properties never yield decimals; order them by their integer part rather than panic.
        Val::Num(d) => put_i64(out, d as i64),
        Val::Str(s) => {
            out.push(TAG_STR);
            for &b in s.as_bytes() {
                out.push(b);
                if b == 0 {
                    out.push(0xFF);
                }
            }
            out.extend_from_slice(&[0, 0]);
        }
        Val::Null | Val::Opaque => out.push(TAG_NULL),
    }
}

/// Builds the key of `ix` for `terms` at time `now`.
pub(crate) fn sort_key(terms: &[OrderTerm], ix: &Interaction, now: Timestamp) -> SortKey {
    let mut out = Vec::with_capacity(terms.len() * 16 + 8);
    for term in terms {
        let start = out.len();
        encode_val(&mut out, prop_value(&term.prop, ix, now));
        if term.desc {
            out[start..].iter_mut().for_each(|b| *b = !*b);
        }
    }
    out.extend_from_slice(&ix.submit_seq.to_be_bytes());
    SortKey(out.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: Val<'_>, desc: bool) -> Vec<u8> {
        let mut out = Vec::new();
        encode_val(&mut out, v);
        if desc {
            out.iter_mut().for_each(|b| *b = !*b);
        }
        out
    }

    #[test]
    fn encodings_order_like_values() {
        let ascending = [
            Val::Int(i64::MIN),
            Val::Int(-1),
            Val::Int(0),
            Val::Int(i64::MAX),
            Val::Str(""),
            Val::Str("\0"),
            Val::Str("\0\0"),
            Val::Str("\0a"),
            Val::Str("a"),
            Val::Str("a\0"),
            Val::Str("ab"),
            Val::Str("b"),
            Val::Null,
        ];
        for w in ascending.windows(2) {
            assert!(key(w[0], false) < key(w[1], false), "{:?} < {:?}", w[0], w[1]);
            assert!(key(w[0], true) > key(w[1], true), "desc {:?} > {:?}", w[0], w[1]);
        }
    }
}
