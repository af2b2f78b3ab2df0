//! Resident memory of the engine holding N queued interactions (DESIGN P4: at most 1 GiB for
//! 1,000,000 with 256 bytes of user data each). Loads them with `Engine::load` into the built-in
//! process's `inbound` queue (indexed by the view `inbound-all`) and prints VmRSS before and
//! after, bytes per interaction and the load time. Not a test: it prints figures.
//!
//! `cargo run --release -p ixn-engine --example memory -- [N] [QUEUE]` (defaults 1000000 and
//! `inbound`; `orchestration_system` has no view, to see the cost of the index alone).

use std::io::Write;
use std::time::Instant;

use ixn_config::Config;
use ixn_engine::Engine;
use ixn_model::{Interaction, InteractionId, Name, Timestamp, UserData, Value, ValueRef};

const T0: Timestamp = Timestamp(1_767_225_600_000);

/// VmRSS of this process in bytes, from /proc/self/status.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// 8 keys, 256 bytes of keys and values.
fn user_data(n: u64) -> UserData {
    let mut ud = UserData::new();
    for k in 0..8 {
        ud.push(
            format!("Key{k}"),
            Value::Str(format!("value {n:012} key {k}....")),
        );
    }
    ud
}

fn interaction(n: u64, queue: &Name, tenant: &Name, media: &Name, by: &Name) -> Interaction {
    let at = T0.plus_millis(-10_000_000 + n as i64 / 16);
    let id = InteractionId::parse(&format!("mem{n:013}")).expect("valid id");
    Interaction {
        priority: (n % 3) as i64,
        user_data: user_data(n),
        ..Interaction::queued(
            id,
            tenant.clone(),
            media.clone(),
            queue.clone(),
            by.clone(),
            n + 1,
            at,
        )
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let queue = Name::from(args.next().unwrap_or_else(|| "inbound".to_owned()));
    let mut out = std::io::stdout().lock();

    let config = Config::builtin_default();
    let mut eng = Engine::new(&config.process, config.settings, 0, 0);
    let before = resident();
    let (tenant, media, by) = (Name::new("default"), Name::new("chat"), Name::new("chat-server"));
    // Interactions are made in batches outside the timed part, so the load time is the
    // engine's alone (the batch buffer is freed before the measurement).
    let mut took = std::time::Duration::ZERO;
    let mut batch = Vec::with_capacity(10_000);
    let mut next = 0;
    while next < n {
        batch.extend((next..n.min(next + 10_000)).map(|i| interaction(i, &queue, &tenant, &media, &by)));
        next += batch.len() as u64;
        let started = Instant::now();
        for ix in batch.drain(..) {
            eng.load(ix, T0);
        }
        took += started.elapsed();
    }
    drop(batch);
    let after = resident();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    writeln!(out, "interactions loaded: {} into {queue:?}", eng.live_count())?;
    writeln!(
        out,
        "user data per interaction: 8 keys, {} bytes of keys and values",
        ud_bytes(&user_data(0))
    )?;
    writeln!(
        out,
        "load time (Engine::load alone): {took:.2?} ({:.0} interactions/s)",
        n as f64 / took.as_secs_f64().max(1e-9)
    )?;
    writeln!(out, "VmRSS before: {:.1} MiB", mib(before))?;
    writeln!(out, "VmRSS after:  {:.1} MiB", mib(after))?;
    writeln!(
        out,
        "bytes per interaction: {:.0}",
        after.saturating_sub(before) as f64 / n.max(1) as f64
    )?;
    // Keep the engine alive until after the measurement.
    drop(eng);
    Ok(())
}

fn ud_bytes(ud: &UserData) -> usize {
    ud.iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    ValueRef::Str(s) => s.len(),
                    _ => 0,
                }
        })
        .sum()
}
