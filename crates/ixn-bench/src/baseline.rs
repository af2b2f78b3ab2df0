//! The SQL baseline: what a team would build without ixn. One PostgreSQL table (id, queue,
//! state, priority, media type, timestamps, assigned_to, a property blob) with an index on
//! (queue, state, priority desc, submitted_at), and one lifecycle as four autocommitted
//! statements — INSERT (submit); `UPDATE … WHERE id = (SELECT … ORDER BY priority DESC,
//! submitted_at LIMIT 1 FOR UPDATE SKIP LOCKED)` (pull); UPDATE state and assigned_to
//! (deliver); DELETE (stop) — driven by the same number of clients in a closed loop. The bench
//! creates its own table in the given database and drops it at the end.

use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio_postgres::{Client, NoTls, Statement};

use crate::tracker::histogram;

/// Times a client retries a pull that found nothing (another client took every row) before it
/// counts an error.
const PULL_RETRIES: u32 = 100;

/// What the baseline measured.
#[derive(Debug)]
pub struct BaselineResult {
    pub completed: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// One lifecycle (four statements), µs.
    pub lifecycle: Histogram<u64>,
    pub clients: usize,
}

impl BaselineResult {
    pub fn throughput(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.completed as f64 / s } else { 0.0 }
    }
}

/// Prepared statements of one client.
struct Statements {
    submit: Statement,
    pull: Statement,
    deliver: Statement,
    stop: Statement,
}

/// Runs `clients` clients for `duration` (or `count` lifecycles in all) against `url`.
pub async fn run(
    url: &str,
    clients: usize,
    duration: Duration,
    count: Option<u64>,
    blob_bytes: usize,
    quiet: bool,
) -> anyhow::Result<BaselineResult> {
    let table = format!("ixn_bench_baseline_{}", std::process::id());
    let (admin, driver) = connect(url).await?;
    let created = admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table};
             CREATE TABLE {table} (
                 id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                 queue text NOT NULL,
                 state text NOT NULL,
                 priority integer NOT NULL,
                 media_type text NOT NULL,
                 submitted_at timestamptz NOT NULL DEFAULT now(),
                 updated_at timestamptz NOT NULL DEFAULT now(),
                 assigned_to text,
                 properties bytea NOT NULL);
             CREATE INDEX {table}_pull ON {table} (queue, state, priority DESC, submitted_at);"
        ))
        .await;
    let result = match created {
        Ok(()) => drive(url, &table, clients, duration, count, blob_bytes, quiet).await,
        Err(e) => Err(anyhow::Error::new(e).context("creating the baseline table")),
    };
    let _ = admin
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .await;
    drop(admin);
    let _ = driver.await;
    result
}

async fn connect(url: &str) -> anyhow::Result<(Client, tokio::task::JoinHandle<()>)> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connecting to the baseline's PostgreSQL {}", redact(url)))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((client, driver))
}

async fn drive(
    url: &str,
    table: &str,
    clients: usize,
    duration: Duration,
    count: Option<u64>,
    blob_bytes: usize,
    quiet: bool,
) -> anyhow::Result<BaselineResult> {
    let bar = (!quiet).then(|| {
        let bar = indicatif::ProgressBar::new(duration.as_secs().max(1));
        if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} s") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix("sql baseline");
        bar
    });
    let mut conns = Vec::new();
    for _ in 0..clients.max(1) {
        let (c, d) = connect(url).await?;
        let st = prepare(&c, table).await?;
        conns.push((c, d, st));
    }
    let per_client = count.map(|c| c.div_ceil(clients.max(1) as u64));
    let started = Instant::now();
    let end = started + duration;
    let blob = vec![0x5au8; blob_bytes];
    let mut tasks = Vec::new();
    for (n, (c, d, st)) in conns.into_iter().enumerate() {
        let blob = blob.clone();
        tasks.push(tokio::spawn(async move {
            let r = client_loop(&c, &st, n, end, per_client, &blob).await;
            drop(c);
            let _ = d.await;
            r
        }));
    }
    if let Some(bar) = &bar {
        while Instant::now() < end && !tasks.iter().all(|t| t.is_finished()) {
            bar.set_position(started.elapsed().as_secs());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        bar.finish_and_clear();
    }
    let mut lifecycle = histogram();
    let (mut completed, mut errors, mut last) = (0, 0, started);
    for t in tasks {
        let r = t.await.context("baseline client")?;
        completed += r.completed;
        errors += r.errors;
        last = last.max(r.last);
        lifecycle.add(&r.lifecycle).context("merging histograms")?;
    }
    Ok(BaselineResult {
        completed,
        errors,
        elapsed: last.duration_since(started),
        lifecycle,
        clients: clients.max(1),
    })
}

async fn prepare(c: &Client, table: &str) -> anyhow::Result<Statements> {
    Ok(Statements {
        submit: c
            .prepare(&format!(
                "INSERT INTO {table} (queue, state, priority, media_type, properties) \
                 VALUES ($1, 'queued', $2, $3, $4)"
            ))
            .await?,
        pull: c
            .prepare(&format!(
                "UPDATE {table} SET state = 'routing', updated_at = now() WHERE id = \
                 (SELECT id FROM {table} WHERE queue = $1 AND state = 'queued' \
                  ORDER BY priority DESC, submitted_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id"
            ))
            .await?,
        deliver: c
            .prepare(&format!(
                "UPDATE {table} SET state = 'handling', assigned_to = $2, updated_at = now() WHERE id = $1"
            ))
            .await?,
        stop: c.prepare(&format!("DELETE FROM {table} WHERE id = $1")).await?,
    })
}

struct ClientResult {
    completed: u64,
    errors: u64,
    last: Instant,
    lifecycle: Histogram<u64>,
}

async fn client_loop(
    c: &Client,
    st: &Statements,
    n: usize,
    end: Instant,
    count: Option<u64>,
    blob: &[u8],
) -> ClientResult {
    let agent = format!("agent-{n}");
    let mut r = ClientResult {
        completed: 0,
        errors: 0,
        last: Instant::now(),
        lifecycle: histogram(),
    };
    while Instant::now() < end && count.is_none_or(|c| r.completed < c) {
        let started = Instant::now();
        match lifecycle(c, st, &agent, blob).await {
            Ok(()) => {
                r.completed += 1;
                r.last = Instant::now();
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                r.lifecycle.saturating_record(us.max(1));
            }
            Err(_) => r.errors += 1,
        }
    }
    r
}

/// Submit, pull, deliver, stop: four autocommitted statements.
async fn lifecycle(c: &Client, st: &Statements, agent: &str, blob: &[u8]) -> anyhow::Result<()> {
    c.execute(&st.submit, &[&"inbound", &5i32, &"chat", &blob])
        .await?;
    let mut id: Option<i64> = None;
    for _ in 0..PULL_RETRIES {
        if let Some(row) = c.query_opt(&st.pull, &[&"inbound"]).await? {
            id = Some(row.try_get(0)?);
            break;
        }
        tokio::task::yield_now().await;
    }
    let id = id.context("nothing to pull")?;
    c.execute(&st.deliver, &[&id, &agent]).await?;
    c.execute(&st.stop, &[&id]).await?;
    Ok(())
}

/// A PostgreSQL URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(c) => format!("{}:***{}", &url[..s + 3 + c], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts() {
        assert_eq!(super::redact("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
