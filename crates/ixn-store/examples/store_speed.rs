//! Measures the store engines: commit throughput (interactions/s in batches of 1000, fresh
//! inserts then updates of the same rows) on SQLite and PostgreSQL, and `load_live` of many rows.
//! Not a test: it asserts nothing and prints figures.
//!
//! `cargo run -p ixn-store --release --example store_speed -- [ROWS] [LOAD_ROWS]`
//! (defaults 100000 and 1000000). PostgreSQL is measured when reachable at
//! `IXN_PG_URL` (default `postgres://postgres@127.0.0.1:5432/test`), in a schema dropped after.
#![allow(clippy::print_stdout, reason = "a measurement tool reports on stdout")]

use std::time::Instant;

use ixn_model::{
    CustomProperty, CustomType, Interaction, InteractionId, InteractionState, Name, Timestamp, UserData,
    Value,
};
use ixn_store::{Store, WriteBatch};

const BATCH: usize = 1000;

fn interaction(n: u64, tenant: &Name, queues: &[Name]) -> Interaction {
    let mut ud = UserData::new();
    ud.push("Subject", Value::Str(format!("Order {n} has not arrived")));
    ud.push("CustomerId", Value::Str(format!("C{:08}", n % 50_000)));
    ud.push(
        "Segment",
        Value::Str(if n.is_multiple_of(3) { "gold" } else { "silver" }.into()),
    );
    ud.push("Score", Value::Int((n % 100) as i64));
    ud.push("Lang", Value::Str("en".into()));
    Interaction {
        id: InteractionId::parse(&format!("bench{n:011}")).expect("valid id"),
        tenant: tenant.clone(),
        media_type: Name::new("email"),
        interaction_type: Some(Name::new("Inbound")),
        subtype: Some(Name::new("InboundNew")),
        queue: Some(queues[(n % queues.len() as u64) as usize].clone()),
        workbin: None,
        state: if n.is_multiple_of(10) {
            InteractionState::Stopped
        } else {
            InteractionState::Queued
        },
        is_online: false,
        is_locked: false,
        is_held: false,
        parent_id: None,
        external_id: Some(format!("ext-{n}")),
        priority: (n % 7) as i64,
        service_objective: Some(3600),
        submitted_by: Name::new("email-server"),
        assigned_to: None,
        submit_seq: n,
        received_at: Some(Timestamp(1_795_000_000_000 + n as i64)),
        submitted_at: Timestamp(1_795_000_000_000 + n as i64),
        placed_in_queue_at: Some(Timestamp(1_795_000_000_000 + n as i64)),
        moved_to_queue_at: None,
        delivered_at: None,
        assigned_at: None,
        held_at: None,
        scheduled_at: None,
        completed_at: n
            .is_multiple_of(10)
            .then_some(Timestamp(1_795_000_001_000 + n as i64)),
        abandoned_at: None,
        user_data: ud,
    }
}

fn custom() -> Vec<CustomProperty> {
    vec![
        CustomProperty {
            name: "segment".into(),
            key: "Segment".into(),
            ty: CustomType::String,
        },
        CustomProperty {
            name: "score".into(),
            key: "Score".into(),
            ty: CustomType::Integer,
        },
    ]
}

/// Commits rows `from..to` in batches; returns interactions per second.
async fn commit_rows(store: &dyn Store, from: u64, to: u64, bump: i64) -> f64 {
    let tenant = Name::new("bench");
    let queues: Vec<Name> = (0..20).map(|q| Name::new(&format!("queue-{q}"))).collect();
    let start = Instant::now();
    let mut n = from;
    while n < to {
        let end = (n + BATCH as u64).min(to);
        let interactions = (n..end)
            .map(|i| {
                let mut it = interaction(i, &tenant, &queues);
                it.priority += bump;
                it
            })
            .collect();
        store
            .commit(&WriteBatch {
                interactions,
                ..WriteBatch::default()
            })
            .await
            .expect("commit");
        n = end;
    }
    (to - from) as f64 / start.elapsed().as_secs_f64()
}

async fn measure(label: &str, store: &dyn Store, rows: u64, load_rows: u64) {
    store
        .ensure_custom_properties(&custom())
        .await
        .expect("custom properties");
    let insert = commit_rows(store, 0, rows, 0).await;
    println!("{label}: insert {rows} interactions in batches of {BATCH}: {insert:.0}/s");
    let update = commit_rows(store, 0, rows, 1).await;
    println!("{label}: update {rows} interactions in batches of {BATCH}: {update:.0}/s");
    if load_rows > rows {
        commit_rows(store, rows, load_rows, 0).await;
    }
    let start = Instant::now();
    let mut loaded = 0u64;
    let count = store.load_live(&mut |_| loaded += 1).await.expect("load_live");
    let secs = start.elapsed().as_secs_f64();
    let total = rows.max(load_rows);
    println!(
        "{label}: load_live {count} live of {total} rows: {secs:.2} s ({:.0} rows/s)",
        count as f64 / secs
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<u64>().expect("numbers of rows"));
    let rows = args.next().unwrap_or(100_000);
    let load_rows = args.next().unwrap_or(1_000_000);

    // IXN_BENCH_DIR keeps the SQLite file for inspection; by default it lives in a temp dir.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = std::env::var_os("IXN_BENCH_DIR").map_or_else(|| dir.path().to_path_buf(), Into::into);
    let sqlite = ixn_store::sqlite::SqliteStore::open(&path.join("bench.db"))
        .await
        .expect("sqlite");
    measure("sqlite", &sqlite, rows, load_rows).await;

    let base =
        std::env::var("IXN_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("ixn_bench_{}", std::process::id());
    match ixn_store::postgres::PgStore::connect(&format!("{base}?schema={schema}")).await {
        Ok(pg) => {
            measure("postgres", &pg, rows, load_rows.min(rows * 2)).await;
            drop(pg);
            let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(conn);
            client
                .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .await
                .expect("drop schema");
        }
        Err(e) => println!("postgres: skipped ({e})"),
    }
}
