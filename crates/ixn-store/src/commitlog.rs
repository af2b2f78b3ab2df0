//! The binary form of a [`WriteBatch`] in the SQLite store's commit log (see `sqlite.rs`): one
//! log row per group commit, written with one append and one fsync, and later applied to the
//! tables. The form is private to the store and versioned by its first byte.
//!
//! ```text
//! batch  := version:u8 rows:u32 row* events:u32 event* meta:u32 (str str)*
//! row    := column* user_data:bytes          (the 29 columns of rows::COLUMNS, in order)
//! column := 0 (NULL) | 1 i64 | 2 str         (timestamps and flags are integers, as in SQL)
//! event  := seq:u64 time:i64 name:str interaction_id:(0 | 1 str) payload:str
//! str    := len:u32 utf-8 bytes; bytes := len:u32 bytes; integers little-endian
//! ```

use ixn_model::{Interaction, InteractionId, Scalar, Timestamp};

use crate::rows::{self, COLUMNS, RowRead};
use crate::{OutboxEvent, StoreError, WriteBatch};

const VERSION: u8 = 1;

/// Appends the binary form of `batch` to `out`.
pub(crate) fn encode(batch: &WriteBatch, out: &mut Vec<u8>) {
    out.push(VERSION);
    put_len(out, batch.interactions.len());
    for ix in &batch.interactions {
        for p in COLUMNS {
            match ix.system(p) {
                Scalar::Null => out.push(0),
                Scalar::Int(n) => {
                    out.push(1);
                    out.extend_from_slice(&n.to_le_bytes());
                }
                Scalar::Ts(t) => {
                    out.push(1);
                    out.extend_from_slice(&t.millis().to_le_bytes());
                }
                Scalar::Str(s) => {
                    out.push(2);
                    put_bytes(out, s.as_bytes());
                }
            }
        }
        put_bytes(out, &ix.user_data.encode());
    }
    put_len(out, batch.events.len());
    for e in &batch.events {
        out.extend_from_slice(&e.seq.to_le_bytes());
        out.extend_from_slice(&e.time.millis().to_le_bytes());
        put_bytes(out, e.name.as_bytes());
        match &e.interaction_id {
            None => out.push(0),
            Some(id) => {
                out.push(1);
                put_bytes(out, id.as_str().as_bytes());
            }
        }
        put_bytes(out, e.payload.as_bytes());
    }
    put_len(out, batch.meta.len());
    for (k, v) in &batch.meta {
        put_bytes(out, k.as_bytes());
        put_bytes(out, v.as_bytes());
    }
}

/// Reads a batch written by [`encode`].
pub(crate) fn decode(bytes: &[u8]) -> Result<WriteBatch, StoreError> {
    let mut r = Reader { bytes, at: 0 };
    let version = r.u8()?;
    if version != VERSION {
        return Err(corrupt(format!("commit log entry of version {version}")));
    }
    let n = r.len()?;
    let mut interactions = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        interactions.push(r.row()?);
    }
    let n = r.len()?;
    let mut events = Vec::with_capacity(n.min(4096));
    for _ in 0..n {
        let seq = r.u64()?;
        let time = Timestamp::from_millis(r.i64()?);
        let name = r.string()?;
        let interaction_id = match r.u8()? {
            0 => None,
            _ => Some(InteractionId::parse(&r.string()?).map_err(|e| corrupt(e.to_string()))?),
        };
        let payload = r.string()?;
        events.push(OutboxEvent {
            seq,
            time,
            name,
            interaction_id,
            payload,
        });
    }
    let n = r.len()?;
    let mut meta = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        meta.push((r.string()?, r.string()?));
    }
    if r.at != bytes.len() {
        return Err(corrupt(format!("{} bytes after the entry", bytes.len() - r.at)));
    }
    Ok(WriteBatch {
        interactions,
        events,
        meta,
    })
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt(format!("commit log: {what}"))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// One decoded column value.
enum Col<'a> {
    Null,
    Int(i64),
    Str(&'a str),
}

/// A decoded row, read back through the same [`rows::decode`] as SQL rows.
struct Row<'a> {
    cols: Vec<Col<'a>>,
    user_data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.bytes.len())
            .ok_or_else(|| corrupt("entry ends early".into()))?;
        let b = &self.bytes[self.at..end];
        self.at = end;
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(
            b.try_into().map_err(|_| corrupt("u64".into()))?,
        ))
    }

    fn i64(&mut self) -> Result<i64, StoreError> {
        Ok(self.u64()? as i64)
    }

    fn len(&mut self) -> Result<usize, StoreError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().map_err(|_| corrupt("length".into()))?) as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.len()?;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'a str, StoreError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| corrupt("text is not UTF-8".into()))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        self.str().map(str::to_owned)
    }

    fn row(&mut self) -> Result<Interaction, StoreError> {
        let mut cols = Vec::with_capacity(COLUMNS.len());
        for _ in 0..COLUMNS.len() {
            cols.push(match self.u8()? {
                0 => Col::Null,
                1 => Col::Int(self.i64()?),
                2 => Col::Str(self.str()?),
                t => return Err(corrupt(format!("column tag {t}"))),
            });
        }
        let user_data = self.bytes()?;
        rows::decode(&Row { cols, user_data })
    }
}

impl RowRead for Row<'_> {
    fn text(&self, i: usize) -> Result<Option<&str>, StoreError> {
        match self.cols.get(i) {
            Some(Col::Str(s)) => Ok(Some(s)),
            Some(Col::Null) => Ok(None),
            _ => Err(corrupt(format!("column {i}: expected text"))),
        }
    }

    fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cols.get(i) {
            Some(Col::Int(n)) => Ok(Some(*n)),
            Some(Col::Null) => Ok(None),
            _ => Err(corrupt(format!("column {i}: expected integer"))),
        }
    }

    fn blob(&self, i: usize) -> Result<Option<&[u8]>, StoreError> {
        if i == rows::USER_DATA {
            Ok(Some(self.user_data))
        } else {
            Err(corrupt(format!("column {i}: expected blob")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{full, minimal};

    #[test]
    fn a_batch_reads_back_as_written() {
        let batch = WriteBatch {
            // Every column set, and most of them NULL.
            interactions: vec![full("t1", "cl-full", 1), minimal("t1", "cl-minimal", 2)],
            events: vec![
                OutboxEvent {
                    seq: 7,
                    time: Timestamp::from_millis(5),
                    name: "EventPlacedInQueue".into(),
                    interaction_id: Some(InteractionId::parse("cl-full").unwrap()),
                    payload: r#"{"v":1,"ü":"x"}"#.into(),
                },
                OutboxEvent {
                    seq: 8,
                    time: Timestamp::from_millis(6),
                    name: "EventAgentLogin".into(),
                    interaction_id: None,
                    payload: "{}".into(),
                },
            ],
            meta: vec![("next_submit_seq".into(), "43".into())],
        };
        let mut bytes = Vec::new();
        encode(&batch, &mut bytes);
        assert_eq!(decode(&bytes).unwrap(), batch);
    }

    #[test]
    fn damaged_entries_are_refused() {
        let batch = WriteBatch {
            interactions: vec![full("t1", "cl-full", 1)],
            events: vec![],
            meta: vec![],
        };
        let mut bytes = Vec::new();
        encode(&batch, &mut bytes);
        for cut in [0, 1, 5, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut} decoded");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        let mut other = bytes;
        other[0] = 9;
        assert!(decode(&other).is_err());
    }
}
