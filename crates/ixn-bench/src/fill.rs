//! Preloading: writes queued interactions straight into a store before the server starts (the
//! fast way to get a million of them; the server then loads them as at any restart), and the
//! padded user data every benchmark interaction carries.

use std::time::Instant;

use anyhow::Context;
use ixn_model::{IdGenerator, Interaction, Name, Timestamp, UserData, Value};
use ixn_store::{Store, WriteBatch};

/// Rows per commit while filling.
const BATCH_ROWS: usize = 10_000;
/// Application recorded as the submitter of preloaded interactions.
pub const PRELOAD_SUBMITTER: &str = "bench-media";

/// Interactions to preload into one queue.
#[derive(Clone, Debug)]
pub struct Backlog {
    pub queue: String,
    pub media_type: String,
    pub count: u64,
    pub priority: i64,
}

/// User data whose stable encoding is `bytes` long (or the smallest above it): a subject, a
/// segment and a padding value.
pub fn padded_user_data(bytes: usize) -> UserData {
    let with = |pad: usize| {
        let mut ud = UserData::new();
        ud.push("Subject", Value::Str("benchmark interaction".into()));
        ud.push("CustomerSegment", Value::Str("gold".into()));
        ud.push("Pad", Value::Str("x".repeat(pad)));
        ud
    };
    let pad = (0..bytes.max(1))
        .find(|&p| with(p).encode().len() >= bytes)
        .unwrap_or(0);
    with(pad)
}

/// Writes every backlog into the store at `url`, in submit order, and returns how long it took.
pub async fn fill(url: &str, backlogs: &[Backlog], user_data_bytes: usize) -> anyhow::Result<f64> {
    let started = Instant::now();
    let store = ixn_store::open(url)
        .await
        .context("opening the store to preload it")?;
    let user_data = padded_user_data(user_data_bytes);
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64,
    );
    let mut ids = IdGenerator::new(0);
    let mut seq = 1u64;
    for b in backlogs {
        let (queue, media) = (Name::new(&b.queue), Name::new(&b.media_type));
        let (tenant, by) = (Name::new("default"), Name::new(PRELOAD_SUBMITTER));
        let mut left = b.count;
        while left > 0 {
            let n = left.min(BATCH_ROWS as u64);
            let interactions = (0..n)
                .map(|i| {
                    // Submitted in the past, oldest first, so the load's interactions come after.
                    let at = now.plus_millis(-((b.count - (b.count - left + i)) as i64));
                    Interaction {
                        priority: b.priority,
                        user_data: user_data.clone(),
                        ..Interaction::queued(
                            ids.next(now),
                            tenant.clone(),
                            media.clone(),
                            queue.clone(),
                            by.clone(),
                            seq + i,
                            at,
                        )
                    }
                })
                .collect();
            seq += n;
            left -= n;
            let batch = WriteBatch {
                interactions,
                events: Vec::new(),
                meta: vec![("next_submit_seq".into(), seq.to_string())],
            };
            commit(store.as_ref(), &batch).await?;
        }
    }
    // The server opens the store next: everything in the tables, nothing left to replay.
    store
        .checkpoint()
        .await
        .context("writing preloaded interactions")?;
    Ok(started.elapsed().as_secs_f64())
}

async fn commit(store: &dyn Store, batch: &WriteBatch) -> anyhow::Result<()> {
    store
        .commit(batch)
        .await
        .context("writing preloaded interactions")
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_data_has_the_asked_size() {
        for bytes in [64, 256, 1000] {
            let len = super::padded_user_data(bytes).encode().len();
            assert!((bytes..bytes + 4).contains(&len), "{bytes} → {len}");
        }
    }
}
