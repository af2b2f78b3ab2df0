//! One interaction lifecycle through `Engine::handle` (media server submits to `inbound`, a
//! router pulls one through `inbound-all`, the router stops it, the batch is taken) with empty
//! queues, with 1,000,000 interactions parked in another queue, with 100,000 waiting in the
//! routed queue itself, and with both (DESIGN P3: the cost must not depend on the backlog).
//! Backlogs are built with `Engine::load`, as at a restart; each carries 256 bytes of user data.
//!
//! Run: `cargo bench -p ixn-engine --bench pull -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ixn_config::Config;
use ixn_engine::{ClientCtx, Engine, Output};
use ixn_model::{ClientKind, Interaction, InteractionId, Name, Timestamp, UserData, Value};
use ixn_protocol::{Pull, Request, ServerMessage, StopProcessing, Submit};

const T0: Timestamp = Timestamp(1_767_225_600_000);
const ROUTED: &str = "inbound";
const VIEW: &str = "inbound-all";
const PARKING: &str = "orchestration_system";

fn client(id: u64, application: &str, kind: ClientKind) -> ClientCtx {
    ClientCtx {
        client_id: id,
        application: Name::new(application),
        kind,
        tenant: Name::new("default"),
        agent: None,
    }
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

/// A queued chat as the store would load it, submitted before `T0`.
fn backlog_item(n: u64, queue: &Name, tenant: &Name, media: &Name, by: &Name) -> Interaction {
    let at = T0.plus_millis(-10_000_000 + n as i64 / 16);
    let id = InteractionId::parse(&format!("bk{n:010}")).expect("valid id");
    Interaction {
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

/// An engine with the built-in process, `parked` interactions in `orchestration_system` and
/// `waiting` in `inbound`.
fn engine(parked: u64, waiting: u64) -> Engine {
    let config = Config::builtin_default();
    let mut eng = Engine::new(&config.process, config.settings, 0, 0);
    let started = Instant::now();
    let (tenant, media, by) = (Name::new("default"), Name::new("chat"), Name::new("chat-server"));
    let (parking, routed) = (Name::new(PARKING), Name::new(ROUTED));
    for n in 0..parked + waiting {
        let queue = if n < parked { &parking } else { &routed };
        eng.load(backlog_item(n, queue, &tenant, &media, &by), T0);
    }
    if parked + waiting > 0 {
        eprintln!(
            "loaded {} interactions in {:.2?}",
            parked + waiting,
            started.elapsed()
        );
    }
    eng
}

/// Submit → pull one → stop it → take the batch.
struct Lifecycle {
    eng: Engine,
    media: ClientCtx,
    router: ClientCtx,
    now: Timestamp,
    rid: u64,
    out: Output,
    /// What each new interaction carries (cloned, as if deserialized from a request).
    user_data: UserData,
}

impl Lifecycle {
    fn new(eng: Engine) -> Lifecycle {
        Lifecycle {
            eng,
            media: client(1, "chat-server", ClientKind::MediaServer),
            router: client(2, "router", ClientKind::Router),
            now: T0,
            rid: 0,
            out: Output::default(),
            user_data: user_data(0),
        }
    }

    fn handle(&mut self, who: bool, request: Request) -> ServerMessage {
        self.rid += 1;
        let client = if who { &self.media } else { &self.router };
        match self
            .eng
            .handle(client, self.rid, request, self.now, &mut self.out)
        {
            Ok(m) => m,
            Err(e) => panic!("benchmark request failed: {e}"),
        }
    }

    fn once(&mut self) {
        self.now = self.now.plus_millis(1);
        let submit = Submit {
            user_data: Some(self.user_data.clone()),
            ..Submit::to_queue(ROUTED, "chat")
        };
        self.handle(true, Request::Submit(submit));
        let pulled = self.handle(false, Request::Pull(Pull::from_view(VIEW, 1)));
        let ServerMessage::EventPulledInteractions { interactions, .. } = pulled else {
            panic!("not a pull answer")
        };
        let Some(ix) = interactions.into_iter().next() else {
            panic!("nothing to pull")
        };
        self.handle(
            false,
            Request::StopProcessing(StopProcessing {
                interaction_id: ix.id,
                reason: None,
            }),
        );
        black_box(self.eng.take_batch());
        self.out.notifications.clear();
    }
}

fn lifecycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("submit_pull_stop");
    let cases: [(&str, u64, u64); 4] = [
        ("empty", 0, 0),
        ("1M_parked_elsewhere", 1_000_000, 0),
        ("100k_waiting_in_routed_queue", 0, 100_000),
        ("1M_parked_and_100k_waiting", 1_000_000, 100_000),
    ];
    for (name, parked, waiting) in cases {
        // Built on first use (criterion calls the closure once per sample), and only for the
        // benchmarks a filter selects.
        let mut run: Option<Lifecycle> = None;
        group.bench_function(name, |b| {
            let run = run.get_or_insert_with(|| Lifecycle::new(engine(parked, waiting)));
            b.iter(|| run.once());
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = lifecycle
}
criterion_main!(benches);
