//! Script strategies: a Rhai script decides what happens to one interaction.
//!
//! The script sees `ix` (the interaction's properties, with `ix.user_data` as a map) and calls
//! `route(#{...})` (once per step, widening in call order), `queue(name)`, `workbin(name, owner)`,
//! `stop(reason)`, `set(key, value)` (user data, or an updatable property such as `Priority`),
//! `esp(app_type, service, method, params)` / `esp_app(app_name, …)` (a blocking ESP call relayed
//! by the interaction's server) and `create(media_type, user_data)` (a helper interaction parked
//! in `orchestration_system`, cleaned up after the run). It runs on a blocking thread, never on
//! the async workers, sandboxed: an operation budget, a wall-clock limit checked as it runs (ESP
//! calls included), and caps on strings, arrays, maps and call depth; no file or module access.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ixn_config::{FinalAction, Policy, StrategyStep};
use ixn_model::{UserData, Value};
use ixn_protocol::{InteractionView, Request, ServerMessage, Submit, ThirdServer};
use rhai::{AST, Dynamic, Engine, EvalAltResult, Map, Scope};
use serde_json::Value as Json;

use crate::link::Link;
use crate::plan::PlanStep;

/// User-data key naming the router node that created an interaction in `orchestration_system`.
pub const NODE_KEY: &str = "ixn-router-node";
/// Queue where interactions a router creates without a queue land.
pub const ORCHESTRATION_QUEUE: &str = "orchestration_system";

/// A compiled script and its limits.
#[derive(Debug)]
pub struct CompiledScript {
    ast: AST,
    max_operations: u64,
    time_limit: Duration,
}

/// What a run decided.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct ScriptOutcome {
    /// `set(...)` calls, in order.
    pub changes: UserData,
    pub decision: Decision,
    /// Interactions `create(...)` submitted (to clean up).
    pub created: Vec<String>,
}

#[derive(Clone, PartialEq, Debug, Default)]
pub enum Decision {
    /// The script decided nothing: the strategy's steps apply.
    #[default]
    Steps,
    Route(Vec<PlanStep>),
    Final(FinalAction),
}

/// What a run may reach outside itself.
#[derive(Clone, Debug)]
pub struct ScriptEnv {
    /// The interaction's server (ESP calls and `create` go there).
    pub link: Arc<dyn Link>,
    pub runtime: tokio::runtime::Handle,
    pub node: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("script does not compile: {0}")]
    Compile(String),
    #[error("script failed: {0}")]
    Run(String),
}

impl CompiledScript {
    pub fn compile(source: &str, max_operations: u64, time_limit: Duration) -> Result<Self, ScriptError> {
        let ast = sandbox(max_operations)
            .compile(source)
            .map_err(|e| ScriptError::Compile(e.to_string()))?;
        Ok(CompiledScript {
            ast,
            max_operations,
            time_limit,
        })
    }

    /// Runs the script for one interaction. Blocking: call it from a blocking thread.
    pub fn run(&self, ix: &InteractionView, env: &ScriptEnv) -> Result<ScriptOutcome, ScriptError> {
        let state = Arc::new(Mutex::new(ScriptOutcome::default()));
        let deadline = Instant::now() + self.time_limit;
        let mut engine = sandbox(self.max_operations);
        engine
            .on_progress(move |_| (Instant::now() > deadline).then(|| Dynamic::from("time limit exceeded")));
        register_actions(&mut engine, &state);
        register_outside(&mut engine, &state, env, ix.id.clone(), deadline);
        let mut scope = Scope::new();
        scope.push_constant("ix", interaction_map(ix));
        engine
            .run_ast_with_scope(&mut scope, &self.ast)
            .map_err(|e| ScriptError::Run(e.to_string()))?;
        let outcome = match state.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        Ok(outcome)
    }
}

/// An engine with the limits every run shares.
fn sandbox(max_operations: u64) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(max_operations);
    engine.set_max_call_levels(32);
    engine.set_max_expr_depths(64, 32);
    engine.set_max_string_size(64 * 1024);
    engine.set_max_array_size(10_000);
    engine.set_max_map_size(10_000);
    // No `import`: a script reaches nothing but the functions registered here.
    engine.set_max_modules(0);
    engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    engine.on_print(|s| tracing::info!(target: "ixn_router::script", "{s}"));
    engine.on_debug(|s, _, pos| tracing::debug!(target: "ixn_router::script", %pos, "{s}"));
    engine
}

type Shared = Arc<Mutex<ScriptOutcome>>;

fn with_state(state: &Shared, f: impl FnOnce(&mut ScriptOutcome)) {
    match state.lock() {
        Ok(mut s) => f(&mut s),
        Err(p) => f(&mut p.into_inner()),
    }
}

fn fail<T>(message: impl Into<String>) -> Result<T, Box<EvalAltResult>> {
    Err(message.into().into())
}

fn register_actions(engine: &mut Engine, state: &Shared) {
    let s = state.clone();
    engine.register_fn("route", move |target: Map| -> Result<(), Box<EvalAltResult>> {
        let step = step_from_map(&target)?;
        with_state(&s, |o| match &mut o.decision {
            Decision::Route(steps) => steps.push(step),
            d => *d = Decision::Route(vec![step]),
        });
        Ok(())
    });
    let s = state.clone();
    engine.register_fn("queue", move |name: &str| {
        with_state(&s, |o| {
            o.decision = Decision::Final(FinalAction::PlaceInQueue(name.to_owned()))
        });
    });
    let s = state.clone();
    engine.register_fn("workbin", move |name: &str, owner: &str| {
        let action = FinalAction::PlaceInWorkbin {
            workbin: name.to_owned(),
            owner: Some(owner.to_owned()),
        };
        with_state(&s, |o| o.decision = Decision::Final(action));
    });
    let s = state.clone();
    engine.register_fn("stop", move |reason: &str| {
        let action = FinalAction::Stop {
            reason: Some(reason.to_owned()),
        };
        with_state(&s, |o| o.decision = Decision::Final(action));
    });
    let s = state.clone();
    engine.register_fn(
        "set",
        move |key: &str, value: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let value = to_value(&value)
                .ok_or_else(|| format!("set({key:?}): value must be a string, integer or map"))?;
            with_state(&s, |o| o.changes.set(key, value));
            Ok(())
        },
    );
}

fn register_outside(engine: &mut Engine, state: &Shared, env: &ScriptEnv, ix_id: String, deadline: Instant) {
    for (name, by_type) in [("esp", true), ("esp_app", false)] {
        let (env, ix_id) = (env.clone(), ix_id.clone());
        engine.register_fn(
            name,
            move |app: &str, service: &str, method: &str, params: Map| {
                let parameters = match to_json(&Dynamic::from_map(params)) {
                    Json::Object(m) => m,
                    _ => serde_json::Map::new(),
                };
                let remaining = deadline.saturating_duration_since(Instant::now());
                let request = Request::ThirdServer(ThirdServer {
                    app_name: (!by_type).then(|| app.to_owned()),
                    app_type: by_type.then(|| app.to_owned()),
                    service: service.to_owned(),
                    method: method.to_owned(),
                    parameters,
                    timeout_s: Some(u32::try_from(remaining.as_secs().max(1)).unwrap_or(u32::MAX)),
                    interaction_id: Some(ix_id.clone()),
                });
                esp_answer(call(&env, request, remaining))
            },
        );
    }
    let (env, s) = (env.clone(), state.clone());
    engine.register_fn(
        "create",
        move |media_type: &str, data: Map| -> Result<String, Box<EvalAltResult>> {
            let mut user_data = match to_value(&Dynamic::from_map(data)) {
                Some(Value::List(l)) => l,
                _ => UserData::new(),
            };
            user_data.set(NODE_KEY, Value::Str(env.node.clone()));
            let mut submit = Submit::new(media_type);
            submit.user_data = Some(user_data);
            let remaining = deadline.saturating_duration_since(Instant::now());
            match call(&env, Request::Submit(submit), remaining) {
                Some(ServerMessage::EventAck {
                    interaction_id: Some(id),
                    ..
                }) => {
                    with_state(&s, |o| o.created.push(id.clone()));
                    Ok(id)
                }
                Some(ServerMessage::EventError { error, .. }) => fail(format!("create: {}", error.message)),
                other => fail(format!("create: no answer ({other:?})")),
            }
        },
    );
}

/// Sends a request from the script's thread and waits at most `wait` for the answer.
fn call(env: &ScriptEnv, request: Request, wait: Duration) -> Option<ServerMessage> {
    let rx = env.link.send(request).ok()?;
    env.runtime
        .block_on(async move { tokio::time::timeout(wait, rx).await.ok()?.ok() })
}

fn esp_answer(answer: Option<ServerMessage>) -> Map {
    let mut m = Map::new();
    match answer {
        Some(ServerMessage::Event3rdServerResult { result, .. }) => {
            return from_json(&Json::Object(result))
                .try_cast::<Map>()
                .unwrap_or_default();
        }
        Some(ServerMessage::Event3rdServerFault {
            fault_code,
            fault_string,
            ..
        }) => {
            m.insert("fault_code".into(), Dynamic::from(fault_code));
            m.insert("fault_string".into(), Dynamic::from(fault_string));
        }
        Some(ServerMessage::EventError { error, .. }) => {
            m.insert("error_code".into(), Dynamic::from(i64::from(error.code)));
            m.insert("error".into(), Dynamic::from(error.message));
        }
        _ => {
            m.insert("error_code".into(), Dynamic::from(1051_i64));
            m.insert("error".into(), Dynamic::from("no answer in time".to_owned()));
        }
    }
    m
}

fn step_from_map(m: &Map) -> Result<PlanStep, Box<EvalAltResult>> {
    let list = |key: &str| -> Result<Vec<String>, Box<EvalAltResult>> {
        match m.get(key) {
            None => Ok(Vec::new()),
            Some(v) if v.is_string() => Ok(vec![v.to_string()]),
            Some(v) => match v.clone().try_cast::<rhai::Array>() {
                Some(items) => Ok(items.iter().map(|i| i.to_string()).collect()),
                None => fail(format!("route: {key} must be a string or an array of strings")),
            },
        }
    };
    let policy = match m.get("policy") {
        None => Policy::default(),
        Some(p) => Policy::parse(&p.to_string()).ok_or_else(|| format!("route: unknown policy {p}"))?,
    };
    let wait_s = match m.get("wait") {
        None => None,
        Some(w) => Some(
            w.as_int()
                .ok()
                .and_then(|w| u32::try_from(w).ok())
                .ok_or("route: wait must be a number of seconds")?,
        ),
    };
    for key in m.keys() {
        if !["agents", "groups", "places", "skills", "policy", "wait"].contains(&key.as_str()) {
            return fail(format!("route: unknown key {key}"));
        }
    }
    Ok(PlanStep::from_config(&StrategyStep {
        agents: list("agents")?,
        groups: list("groups")?,
        places: list("places")?,
        skills: m.get("skills").map(|s| s.to_string()),
        policy,
        wait_s,
    }))
}

/// The interaction as a script sees it: its JSON form as a map.
fn interaction_map(ix: &InteractionView) -> Dynamic {
    from_json(&serde_json::to_value(ix).unwrap_or(Json::Null))
}

fn from_json(v: &Json) -> Dynamic {
    match v {
        Json::Null => Dynamic::UNIT,
        Json::Bool(b) => (*b).into(),
        Json::Number(n) => n.as_i64().map_or_else(|| n.to_string().into(), Dynamic::from),
        Json::String(s) => s.clone().into(),
        Json::Array(a) => Dynamic::from_array(a.iter().map(from_json).collect()),
        Json::Object(o) => {
            Dynamic::from_map(o.iter().map(|(k, v)| (k.as_str().into(), from_json(v))).collect())
        }
    }
}

fn to_json(v: &Dynamic) -> Json {
    if let Some(m) = v.read_lock::<Map>() {
        return Json::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect());
    }
    if let Some(a) = v.read_lock::<rhai::Array>() {
        return Json::Array(a.iter().map(to_json).collect());
    }
    if let Ok(i) = v.as_int() {
        return Json::from(i);
    }
    if let Ok(b) = v.as_bool() {
        return Json::Bool(b);
    }
    if v.is_unit() {
        return Json::Null;
    }
    Json::String(v.to_string())
}

/// A user-data value from a script value: strings, integers, booleans (as 0/1) and maps.
fn to_value(v: &Dynamic) -> Option<Value> {
    if let Some(m) = v.read_lock::<Map>() {
        let mut list = UserData::new();
        for (k, v) in m.iter() {
            list.push(k.as_str(), to_value(v)?);
        }
        return Some(Value::List(list));
    }
    if let Ok(i) = v.as_int() {
        return Some(Value::Int(i));
    }
    if let Ok(b) = v.as_bool() {
        return Some(Value::Int(i64::from(b)));
    }
    if v.is_string() {
        return Some(Value::Str(v.to_string()));
    }
    None
}
