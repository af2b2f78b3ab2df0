//! Crash safety of the real binary (DESIGN §5): under concurrent load the server is killed with
//! SIGKILL at random moments, restarted on the same store, and checked through the public API
//! against what its clients were told. Every acknowledged request must have taken effect; a
//! request in flight when the process died may or may not have; nothing else may have happened.
//! The same test runs on SQLite (`ixn serve`) and PostgreSQL (`ixn server --config`).
//!
//! Each worker owns its interactions, so the order of requests on one interaction is known and
//! the expected state after a restart is exactly "the last acknowledged state, or that state
//! with the one request in flight applied". A failure prints its seed; rerun with
//! `IXN_CRASH_SEED=<seed>` to replay the same choices (thread timing still varies).

mod support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ixn_client::{ClientError, RestClient, TlsOptions};
use ixn_model::InteractionState;
use ixn_protocol::{
    ChangeProperties, FindInteractions, GetSnapshotInteractions, InteractionView, PlaceInQueue,
    ReleaseSnapshot, Request, ServerMessage, Submit, TakeSnapshot,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::process::{Child, Command};

/// Queues of the test's business process.
const QUEUES: [&str; 4] = ["q0", "q1", "q2", "q3"];
/// Kill/restart cycles per test.
const ROUNDS: u64 = 5;
/// Most concurrent workers (each round runs 8 to this many).
const MAX_WORKERS: usize = 16;
/// A worker submits only while it owns fewer live interactions than this.
const MAX_LIVE_PER_WORKER: usize = 25;
/// Bounds one worker's requests in one round, whatever the timing.
const MAX_REQUESTS_PER_ROUND: usize = 3_000;
/// Load runs this long (random in the range) before the kill.
const KILL_AFTER_MS: std::ops::Range<u64> = 250..1_500;
/// From spawn to `/health/ready`.
const STARTUP_DEADLINE: Duration = Duration::from_secs(30);
/// A request without an answer for this long counts as in flight (outcome unknown).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest find page and snapshot (the server's caps with the settings below).
const PAGE: u32 = 10_000;
/// Whole-test bound, checked between rounds.
const TEST_BUDGET: Duration = Duration::from_secs(50);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_survives_sigkill_under_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    // `ixn serve` uses DATA_DIR/ixn.toml when present; the admin key it generates is added.
    std::fs::write(data_dir.join("ixn.toml"), process_toml()).expect("writing ixn.toml");
    let backend = Backend::Sqlite { data_dir };
    run_crash_test("sqlite", &backend, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_survives_sigkill_under_load() {
    const PG: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=5";
    if let Err(e) = pg_execute(PG, "SELECT 1").await {
        let msg = format!("PostgreSQL on 127.0.0.1:5432 (user postgres, database test) is unreachable: {e}");
        if std::env::var("IXN_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
            panic!("{msg} (IXN_REQUIRE_SERVICES=1)");
        }
        eprintln!("notice: skipping the PostgreSQL crash test: {msg}");
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let schema = format!("ixn_crash_{}_{nanos}", std::process::id());
    let _drop_schema = SchemaGuard {
        conn: PG,
        schema: schema.clone(),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let api_key = format!("{:032x}", rand::random::<u128>());
    let config = dir.path().join("ixn.toml");
    let text = format!(
        "[server]\nstore = \"postgres://postgres@127.0.0.1:5432/test?schema={schema}\"\ndata-dir = {:?}\n\n{}\n\
         [[applications]]\nname = \"crash-admin\"\nkind = \"admin\"\ntenant = \"default\"\napi-key = \"{api_key}\"\n",
        dir.path().join("data").display().to_string(),
        process_toml(),
    );
    std::fs::write(&config, text).expect("writing ixn.toml");
    let backend = Backend::Postgres { config, api_key };
    run_crash_test("postgres", &backend, dir.path()).await;
}

/// The business process both engines run: one tenant, one media type, a few queues, and
/// snapshots large enough to list every interaction the test creates.
fn process_toml() -> String {
    let mut s = String::from(
        "[settings]\nmax-interactions-per-snapshot = 10000\n\n\
         [[tenants]]\nname = \"default\"\n\n[[media-types]]\nname = \"chat\"\n",
    );
    for q in QUEUES {
        s.push_str(&format!("\n[[queues]]\nname = \"{q}\"\ntenant = \"default\"\n"));
    }
    s
}

async fn run_crash_test(engine: &str, backend: &Backend, dir: &Path) {
    let seed = std::env::var("IXN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let log = dir.join("server.log");
    eprintln!(
        "crash test ({engine}): seed {seed} (IXN_CRASH_SEED={seed} replays it); server log {}",
        log.display()
    );
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut model: Vec<Slot> = (0..MAX_WORKERS).map(|_| Slot::default()).collect();
    let mut server = Server::start(backend, &log).await;
    let ctx = Ctx {
        engine: engine.to_owned(),
        seed,
        log: log.clone(),
    };
    verify(&ctx, &server.client, &mut model, 0).await;
    for round in 1..=ROUNDS {
        if started.elapsed() > TEST_BUDGET {
            eprintln!("({engine}) time budget used after {} rounds", round - 1);
            break;
        }
        let workers = rng.random_range(8..=MAX_WORKERS);
        let kill_after = Duration::from_millis(rng.random_range(KILL_AFTER_MS));
        let mut tasks = tokio::task::JoinSet::new();
        for (i, slot) in model.iter_mut().enumerate().take(workers) {
            let worker = Worker {
                index: i,
                round,
                rest: server.client.clone(),
                rng: StdRng::seed_from_u64(seed ^ (round << 32) ^ i as u64),
                slot: std::mem::take(slot),
                stats: Stats::default(),
            };
            tasks.spawn(worker.run());
        }
        tokio::time::sleep(kill_after).await; // the random moment of the crash, not a wait
        server.kill().await;
        let mut stats = Stats::default();
        while let Some(done) = tasks.join_next().await {
            let w = done.expect("worker panicked");
            stats.add(&w.stats);
            model[w.index] = w.slot;
        }
        eprintln!(
            "({engine}) round {round}: {workers} workers, killed after {} ms: {} acked, {} refused, {} in flight",
            kill_after.as_millis(),
            stats.acked,
            stats.refused,
            stats.in_flight,
        );
        server = Server::start(backend, &log).await;
        verify(&ctx, &server.client, &mut model, round).await;
    }
    server.kill().await;
    eprintln!("({engine}) done in {:.1} s", started.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// The server process.

#[derive(Debug)]
enum Backend {
    /// `ixn serve --data-dir DIR` (SQLite in DIR/ixn.db, admin key in DIR/admin.key).
    Sqlite { data_dir: PathBuf },
    /// `ixn server --config FILE`, whose store is a PostgreSQL schema of its own.
    Postgres { config: PathBuf, api_key: String },
}

#[derive(Debug)]
struct Server {
    child: Child,
    client: RestClient,
}

impl Server {
    /// Spawns the binary on a free port and waits until `/health/ready` answers 200.
    async fn start(backend: &Backend, log: &Path) -> Server {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("server log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ixn"));
        match backend {
            Backend::Sqlite { data_dir } => cmd.arg("serve").arg("--data-dir").arg(data_dir),
            Backend::Postgres { config, .. } => cmd.arg("server").arg("--config").arg(config),
        };
        cmd.args(["--listen", "127.0.0.1:0"])
            .env_remove("IXN_STORE")
            .env_remove("IXN_DATA_DIR")
            .env("IXN_LOG", "info")
            .env("NO_COLOR", "1") // plain log lines, for reading and parsing
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true);
        let deadline = Instant::now() + STARTUP_DEADLINE;
        let mut child = cmd.spawn().expect("spawning ixn");
        let base = support::listening_address(&mut child, STARTUP_DEADLINE)
            .await
            .unwrap_or_else(|| panic!("ixn did not print its address; log:\n{}", log_tail(log)));
        let key = match backend {
            Backend::Sqlite { data_dir } => std::fs::read_to_string(data_dir.join("admin.key"))
                .expect("admin.key")
                .trim()
                .to_owned(),
            Backend::Postgres { api_key, .. } => api_key.clone(),
        };
        let client = RestClient::new(&base, &key, &TlsOptions::default()).expect("REST client");
        while !client.ready().await {
            assert!(
                Instant::now() < deadline,
                "ixn at {base} not ready in time; log:\n{}",
                log_tail(log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await; // polling interval
        }
        Server { child, client }
    }

    /// SIGKILL: no shutdown path runs.
    async fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reaping the killed server");
    }
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// The model: what clients were told.

/// The state the test put an interaction in.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Expected {
    queue: &'static str,
    /// User-data key `v`, and also the priority (both set by each property change).
    version: i64,
    stopped: bool,
}

/// One interaction a worker submitted (or tried to).
#[derive(Clone, Debug)]
struct Tracked {
    /// Unique `external_id`, to find the interaction even when its submit was never answered.
    tag: String,
    /// Known once the submit was answered, or from the start when the worker chose the id.
    id: Option<String>,
    /// State after the last acknowledged request; `None` while the submit is unacknowledged.
    acked: Option<Expected>,
    /// State if the request in flight at the kill took effect.
    in_flight: Option<Expected>,
    /// Every request on it and what became of it, printed when it is found wrong.
    history: Vec<String>,
}

impl Tracked {
    fn is_live(&self) -> bool {
        self.acked.as_ref().is_some_and(|e| !e.stopped)
    }
}

/// A worker's interactions, kept between rounds.
#[derive(Debug, Default)]
struct Slot {
    tracked: Vec<Tracked>,
    submits: u64,
    /// Requests the server refused although the model says they were valid.
    refusals: Vec<String>,
}

#[derive(Debug, Default)]
struct Stats {
    acked: u64,
    refused: u64,
    in_flight: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.acked += o.acked;
        self.refused += o.refused;
        self.in_flight += o.in_flight;
    }
}

// ---------------------------------------------------------------------------------------------
// Load.

struct Worker {
    index: usize,
    round: u64,
    rest: RestClient,
    rng: StdRng,
    slot: Slot,
    stats: Stats,
}

/// What became of one request.
enum Outcome {
    Acked(InteractionView),
    /// The server answered with an error: nothing changed.
    Refused(String),
    /// No answer (the server died): it may or may not have happened.
    Unknown,
}

impl Worker {
    /// Sends requests one at a time until one goes unanswered (the kill).
    async fn run(mut self) -> Worker {
        for _ in 0..MAX_REQUESTS_PER_ROUND {
            let live: Vec<usize> = (0..self.slot.tracked.len())
                .filter(|&i| self.slot.tracked[i].is_live())
                .collect();
            let submit = live.is_empty() || (live.len() < MAX_LIVE_PER_WORKER && self.rng.random_bool(0.3));
            let answered = if submit {
                self.submit().await
            } else {
                let i = live[self.rng.random_range(0..live.len())];
                self.act_on(i).await
            };
            if !answered {
                break;
            }
        }
        self
    }

    /// Submits a new interaction; half the time with an id chosen here. False when unanswered.
    async fn submit(&mut self) -> bool {
        let n = self.slot.submits;
        self.slot.submits += 1;
        let tag = format!("w{}-{n}", self.index);
        let id = self.rng.random_bool(0.5).then(|| format!("crash-{tag}"));
        let queue = QUEUES[self.rng.random_range(0..QUEUES.len())];
        let expected = Expected {
            queue,
            version: 0,
            stopped: false,
        };
        let submit: Submit = serde_json::from_value(serde_json::json!({
            "interaction_id": id,
            "queue": queue,
            "media_type": "chat",
            "external_id": tag,
            "priority": 0,
            "user_data": { "v": 0, "worker": self.index as i64 },
        }))
        .expect("a valid RequestSubmit");
        let outcome = classify(self.rest.submit(&submit)).await;
        let mut t = Tracked {
            tag,
            id,
            acked: None,
            in_flight: None,
            history: Vec::new(),
        };
        t.history.push(format!(
            "round {}: submit to {queue}: {}",
            self.round,
            outcome.describe()
        ));
        let answered = match outcome {
            Outcome::Acked(view) => {
                if t.id.as_ref().is_some_and(|id| *id != view.id) {
                    self.slot
                        .refusals
                        .push(format!("submit {} acknowledged with id {}", t.tag, view.id));
                }
                t.id = Some(view.id);
                t.acked = Some(expected);
                self.stats.acked += 1;
                true
            }
            Outcome::Refused(e) => {
                self.slot.refusals.push(format!("submit {}: {e}", t.tag));
                self.stats.refused += 1;
                true
            }
            Outcome::Unknown => {
                t.in_flight = Some(expected);
                self.stats.in_flight += 1;
                false
            }
        };
        self.slot.tracked.push(t);
        answered
    }

    /// Changes properties of, moves or stops a live interaction. False when unanswered.
    async fn act_on(&mut self, i: usize) -> bool {
        let t = &self.slot.tracked[i];
        let (Some(id), Some(before)) = (t.id.clone(), t.acked.clone()) else {
            return true;
        };
        let mut after = before.clone();
        let (what, outcome) = match self.rng.random_range(0..10) {
            0..4 => {
                after.version += 1;
                let changed = serde_json::json!({ "v": after.version, "priority": after.version });
                let r = ChangeProperties {
                    interaction_id: id.clone(),
                    changed_properties: serde_json::from_value(changed).expect("user data"),
                    added_properties: Default::default(),
                    deleted_properties: Vec::new(),
                };
                (
                    "change properties",
                    classify(ack_view(&self.rest, Request::ChangeProperties(r))).await,
                )
            }
            4..8 => {
                after.queue = QUEUES[self.rng.random_range(0..QUEUES.len())];
                let r = PlaceInQueue {
                    interaction_id: id.clone(),
                    queue: after.queue.to_owned(),
                    added_properties: Default::default(),
                };
                (
                    "place in queue",
                    classify(ack_view(&self.rest, Request::PlaceInQueue(r))).await,
                )
            }
            _ => {
                after.stopped = true;
                ("stop", classify(self.rest.stop(&id, None)).await)
            }
        };
        let t = &mut self.slot.tracked[i];
        t.history.push(format!(
            "round {}: {what} (to {after:?}): {}",
            self.round,
            outcome.describe()
        ));
        match outcome {
            Outcome::Acked(view) => {
                if !matches(&view, &after) {
                    self.slot
                        .refusals
                        .push(format!("{what} {id}: acknowledged with {}", seen(Some(&view))));
                }
                t.acked = Some(after);
                self.stats.acked += 1;
                true
            }
            Outcome::Refused(e) => {
                self.slot.refusals.push(format!("{what} {id}: {e}"));
                self.stats.refused += 1;
                true
            }
            Outcome::Unknown => {
                t.in_flight = Some(after);
                self.stats.in_flight += 1;
                false
            }
        }
    }
}

impl Outcome {
    fn describe(&self) -> String {
        match self {
            Outcome::Acked(view) => format!("acknowledged with {}", seen(Some(view))),
            Outcome::Refused(e) => format!("refused: {e}"),
            Outcome::Unknown => "unanswered".to_owned(),
        }
    }
}

async fn classify(call: impl Future<Output = Result<InteractionView, ClientError>>) -> Outcome {
    match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
        Ok(Ok(view)) => Outcome::Acked(view),
        Ok(Err(ClientError::Server(e))) => {
            Outcome::Refused(format!("{} ({}): {}", e.name, e.code, e.message))
        }
        Ok(Err(_)) | Err(_) => Outcome::Unknown,
    }
}

/// Sends a request answered by EventAck carrying the interaction.
async fn ack_view(rest: &RestClient, request: Request) -> Result<InteractionView, ClientError> {
    match rest.request(request).await? {
        ServerMessage::EventAck {
            interaction: Some(view),
            ..
        } => Ok(*view),
        other => Err(ClientError::Unexpected(format!("{other:?}"))),
    }
}

fn matches(v: &InteractionView, e: &Expected) -> bool {
    let state = if e.stopped {
        InteractionState::Stopped
    } else {
        InteractionState::Queued
    };
    v.state == state
        && v.queue.as_deref() == Some(e.queue)
        && v.user_data.get_int("v") == Some(e.version)
        && v.priority == e.version
        && v.workbin.is_none()
        && v.assigned_to.is_none()
        && !v.is_locked
        && !v.is_held
}

fn seen(v: Option<&InteractionView>) -> String {
    match v {
        None => "absent".to_owned(),
        Some(v) => format!(
            "{} {} in {:?}, v={:?}, priority {}",
            v.id,
            v.state,
            v.queue,
            v.user_data.get_int("v"),
            v.priority
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Verification through the public API.

struct Ctx {
    engine: String,
    seed: u64,
    log: PathBuf,
}

/// Checks the restarted server against the model, then settles every in-flight request to
/// what actually happened.
async fn verify(ctx: &Ctx, rest: &RestClient, model: &mut [Slot], round: u64) {
    // Answers that were wrong when given: refusals of valid requests, acks of another state.
    let mut problems: Vec<String> = model
        .iter()
        .flat_map(|s| &s.refusals)
        .map(|r| format!("answered wrongly although valid in the model: {r}"))
        .collect();
    let all = find_all(rest, "", true).await;
    let live = find_all(rest, "", false).await;
    let mut by_tag: HashMap<&str, Vec<&InteractionView>> = HashMap::new();
    let (mut ids, mut seqs) = (HashSet::new(), HashSet::new());
    for v in &all {
        by_tag
            .entry(v.external_id.as_deref().unwrap_or(""))
            .or_default()
            .push(v);
        if !ids.insert(v.id.as_str()) || !seqs.insert(v.submit_seq) {
            problems.push(format!(
                "id or submit_seq {} given twice: {}",
                v.submit_seq,
                seen(Some(v))
            ));
        }
    }
    let got = get_each(rest, model).await;

    // Every tracked interaction: exactly once, in its acknowledged state or the in-flight one.
    let (mut acked_submits, mut open_submits) = (0, 0);
    let mut happened = 0;
    for slot in model.iter_mut() {
        slot.tracked.retain_mut(|t| {
            if t.acked.is_some() {
                acked_submits += 1;
            } else if t.in_flight.is_some() {
                open_submits += 1;
            }
            let stored = by_tag.get(t.tag.as_str()).map(Vec::as_slice).unwrap_or_default();
            if stored.len() > 1 {
                problems.push(format!(
                    "{} is stored {} times: {:?}",
                    t.tag,
                    stored.len(),
                    stored
                ));
            }
            let v = stored.first().copied();
            if let (Some(id), Some(v)) = (&t.id, v)
                && *id != v.id
            {
                problems.push(format!("{} has id {} but was acknowledged as {id}", t.tag, v.id));
            }
            if let Some(id) = &t.id {
                let by_get = got.get(id).and_then(Option::as_ref);
                let same = match (by_get, v) {
                    (None, None) => true,
                    (Some(a), Some(b)) => {
                        a.state == b.state && a.queue == b.queue && a.user_data == b.user_data
                    }
                    _ => false,
                };
                if !same {
                    problems.push(format!("{id}: GET says {}, find says {}", seen(by_get), seen(v)));
                }
            }
            let keep = match (&t.acked, &t.in_flight, v) {
                (Some(a), _, Some(v)) if matches(v, a) => true,
                (_, Some(p), Some(v)) if matches(v, p) => {
                    happened += 1;
                    t.acked = Some(p.clone());
                    true
                }
                (None, _, None) => false,
                (a, p, v) => {
                    problems.push(format!(
                        "{} ({:?}): expected {a:?} or in flight {p:?}, found {}; its requests: {:#?}",
                        t.tag,
                        t.id,
                        seen(v),
                        t.history
                    ));
                    a.is_some()
                }
            };
            if t.id.is_none() {
                t.id = v.map(|v| v.id.clone());
            }
            t.in_flight = None;
            keep
        });
    }
    let total = all.len() as u64;
    if total < acked_submits || total > acked_submits + open_submits {
        problems.push(format!(
            "{total} interactions stored; expected {acked_submits} acknowledged submits plus at most {open_submits} in flight"
        ));
    }
    let known: HashSet<&str> = model
        .iter()
        .flat_map(|s| &s.tracked)
        .map(|t| t.tag.as_str())
        .collect();
    for v in all
        .iter()
        .filter(|v| !known.contains(v.external_id.as_deref().unwrap_or("")))
    {
        problems.push(format!(
            "unexpected interaction (never acknowledged, or refused): {}",
            seen(Some(v))
        ));
    }

    // Live interactions: exactly the model's, each in one queue, counted once in its depth.
    let expected_live: HashSet<&str> = model
        .iter()
        .flat_map(|s| &s.tracked)
        .filter(|t| t.is_live())
        .filter_map(|t| t.id.as_deref())
        .collect();
    let found_live: HashSet<&str> = live.iter().map(|v| v.id.as_str()).collect();
    if expected_live != found_live || live.len() != found_live.len() {
        problems.push(format!(
            "live set differs: {} expected, {} found ({} distinct); missing {:?}, extra {:?}",
            expected_live.len(),
            live.len(),
            found_live.len(),
            expected_live.difference(&found_live).take(10).collect::<Vec<_>>(),
            found_live.difference(&expected_live).take(10).collect::<Vec<_>>(),
        ));
    }
    problems.extend(check_queues(rest, model, live.len() as u64).await);

    let total_tracked: usize = model.iter().map(|s| s.tracked.len()).sum();
    eprintln!(
        "({}) verified after round {round}: {total} stored, {} live, {total_tracked} tracked, {happened} in-flight requests took effect",
        ctx.engine,
        live.len(),
    );
    if !problems.is_empty() {
        let shown: Vec<&String> = problems.iter().take(25).collect();
        panic!(
            "{} crash test, seed {}, after round {round}: {} problems:\n{shown:#?}\nserver log tail:\n{}",
            ctx.engine,
            ctx.seed,
            problems.len(),
            log_tail(&ctx.log),
        );
    }
}

/// Depth of each queue = live interactions found in it by find = a snapshot of it = the model.
async fn check_queues(rest: &RestClient, model: &[Slot], live: u64) -> Vec<String> {
    let mut problems = Vec::new();
    let infos = rest.queues().await.expect("GET /v1/queues");
    let mut depth_sum = 0;
    for q in QUEUES {
        let Some(info) = infos.iter().find(|i| i.name == q) else {
            problems.push(format!("queue {q} missing from GET /v1/queues"));
            continue;
        };
        depth_sum += info.depth;
        let found = find_all(rest, &format!("queue = '{q}'"), false).await;
        for v in found
            .iter()
            .filter(|v| v.queue.as_deref() != Some(q) || v.state != InteractionState::Queued)
        {
            problems.push(format!("find in {q} returned {}", seen(Some(v))));
        }
        let snapshot = snapshot_of(rest, q).await;
        let in_model = model
            .iter()
            .flat_map(|s| &s.tracked)
            .filter(|t| t.acked.as_ref().is_some_and(|e| !e.stopped && e.queue == q))
            .count() as u64;
        let counts = [info.depth, found.len() as u64, snapshot.len() as u64, in_model];
        if counts.iter().any(|&c| c != info.depth) || info.in_progress != 0 {
            problems.push(format!(
                "queue {q}: depth {} (in progress {}), find {}, snapshot {}, model {in_model}",
                info.depth,
                info.in_progress,
                found.len(),
                snapshot.len(),
            ));
        }
        let found_ids: HashSet<&str> = found.iter().map(|v| v.id.as_str()).collect();
        if snapshot.iter().any(|v| !found_ids.contains(v.id.as_str())) {
            problems.push(format!(
                "queue {q}: snapshot and find list different interactions"
            ));
        }
    }
    if depth_sum != live {
        problems.push(format!(
            "queue depths add up to {depth_sum}, but {live} interactions are live"
        ));
    }
    problems
}

/// Every interaction matching `condition`, page by page.
async fn find_all(rest: &RestClient, condition: &str, include_stopped: bool) -> Vec<InteractionView> {
    let mut all = Vec::new();
    loop {
        let r = FindInteractions {
            condition: condition.to_owned(),
            order: None,
            limit: Some(PAGE),
            offset: all.len() as u32,
            include_stopped,
        };
        let page = match rest.request(Request::FindInteractions(r)).await {
            Ok(ServerMessage::EventFoundInteractions { interactions, .. }) => interactions,
            other => panic!("find {condition:?} (include_stopped {include_stopped}): {other:?}"),
        };
        let last = page.len() < PAGE as usize;
        all.extend(page);
        if last {
            return all;
        }
    }
}

/// The interactions of one queue through a snapshot.
async fn snapshot_of(rest: &RestClient, queue: &str) -> Vec<InteractionView> {
    let take = TakeSnapshot {
        condition: None,
        order: None,
        queue: Some(queue.to_owned()),
        max: Some(PAGE),
    };
    let snapshot_id = match rest.request(Request::TakeSnapshot(take)).await {
        Ok(ServerMessage::EventSnapshotTaken { snapshot_id, .. }) => snapshot_id,
        other => panic!("snapshot of {queue}: {other:?}"),
    };
    let page = GetSnapshotInteractions {
        snapshot_id,
        offset: 0,
        count: PAGE,
    };
    let interactions = match rest.request(Request::GetSnapshotInteractions(page)).await {
        Ok(ServerMessage::EventSnapshotInteractions { interactions, .. }) => interactions,
        other => panic!("snapshot page of {queue}: {other:?}"),
    };
    rest.request(Request::ReleaseSnapshot(ReleaseSnapshot { snapshot_id }))
        .await
        .expect("release snapshot");
    interactions
}

/// GET /v1/interactions/{id} for every known id (`None`: unknown to the server).
async fn get_each(rest: &RestClient, model: &[Slot]) -> HashMap<String, Option<InteractionView>> {
    let ids: Vec<String> = model
        .iter()
        .flat_map(|s| &s.tracked)
        .filter_map(|t| t.id.clone())
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for part in ids.chunks(ids.len().div_ceil(8).max(1)) {
        let (rest, part) = (rest.clone(), part.to_vec());
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(part.len());
            for id in part {
                let v = match rest.get(&id).await {
                    Ok(v) => Some(v),
                    Err(ClientError::Server(e)) if e.name == "unknown_interaction" => None,
                    Err(e) => panic!("GET {id}: {e}"),
                };
                out.push((id, v));
            }
            out
        });
    }
    let mut got = HashMap::new();
    while let Some(part) = tasks.join_next().await {
        got.extend(part.expect("GET task"));
    }
    got
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL helpers.

async fn pg_execute(conn: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    let driver = tokio::spawn(connection);
    let result = client.batch_execute(sql).await;
    drop(client);
    let _ = driver.await;
    result
}

/// Drops the test's schema at the end, even when the test fails (after the server is killed,
/// since it is declared before the server).
struct SchemaGuard {
    conn: &'static str,
    schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        let conn = self.conn;
        // A runtime of its own on a thread of its own: drop may run inside the test's runtime.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(pg_execute(conn, &sql)).ok()
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("warning: could not drop schema {}", self.schema);
        }
    }
}
