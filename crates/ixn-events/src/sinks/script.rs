//! `script`: a Rhai script whose `deliver(events)` function is called once per batch with the
//! events as an array of maps (the JSON envelope). A thrown error fails the batch (it is retried).
//!
//! The script runs sandboxed: at most `max-operations` operations and `time-limit` milliseconds
//! per call, no module imports. Besides Rhai's standard library it may call `log(text)`
//! (tracing at info), `to_json(value)` and `append_line(path, text)` (append one line to a file,
//! for simple exports).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ixn_config::{ScriptOptions, ScriptSource};
use ixn_protocol::ReportingEvent;
use rhai::{AST, Dynamic, Engine, EvalAltResult, Scope};

use crate::sink::{Sink, SinkError};

#[derive(Debug)]
pub struct ScriptSink {
    opts: ScriptOptions,
    compiled: Option<Arc<(Engine, AST)>>,
    /// Start of the current call, read by the engine's progress callback (time limit).
    started: Arc<std::sync::Mutex<Instant>>,
}

fn append_line(path: &str, line: &str) -> Result<(), Box<EvalAltResult>> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("append_line {path}: {e}"))?;
    writeln!(f, "{line}").map_err(|e| format!("append_line {path}: {e}").into())
}

fn engine(opts: &ScriptOptions, started: Arc<std::sync::Mutex<Instant>>) -> Engine {
    let mut engine = Engine::new();
    engine.set_max_operations(opts.max_operations);
    engine.set_max_call_levels(64);
    engine.set_max_expr_depths(128, 64);
    engine.set_max_string_size(16 << 20);
    engine.set_max_array_size(1 << 20);
    engine.set_max_map_size(1 << 16);
    engine.set_max_modules(0);
    let limit = Duration::from_millis(u64::from(opts.time_limit_ms));
    engine.on_progress(move |_ops| {
        let elapsed = started.lock().map_or(Duration::ZERO, |s| s.elapsed());
        (elapsed > limit).then(|| Dynamic::from("time limit exceeded"))
    });
    engine.on_print(|text| tracing::info!(target: "ixn_events::script", "{text}"));
    engine.on_debug(|text, _, _| tracing::debug!(target: "ixn_events::script", "{text}"));
    engine.register_fn(
        "log",
        |text: &str| tracing::info!(target: "ixn_events::script", "{text}"),
    );
    engine.register_fn("to_json", |v: Dynamic| {
        serde_json::to_string(&v).unwrap_or_default()
    });
    engine.register_fn("append_line", append_line);
    engine
}

impl ScriptSink {
    pub fn new(opts: &ScriptOptions) -> ScriptSink {
        ScriptSink {
            opts: opts.clone(),
            compiled: None,
            started: Arc::new(std::sync::Mutex::new(Instant::now())),
        }
    }

    fn compile(&self, started: Arc<std::sync::Mutex<Instant>>) -> Result<(Engine, AST), SinkError> {
        let engine = engine(&self.opts, started);
        let ast = match &self.opts.source {
            ScriptSource::Inline(text) => engine.compile(text).map_err(|e| e.to_string()),
            ScriptSource::File(path) => engine.compile_file(path.clone()).map_err(|e| e.to_string()),
        }
        .map_err(|e| SinkError::new(format!("compiling the script: {e}")))?;
        if !ast
            .iter_functions()
            .any(|f| f.name == "deliver" && f.params.len() == 1)
        {
            return Err(SinkError::new("the script defines no function deliver(events)"));
        }
        Ok((engine, ast))
    }
}

#[async_trait::async_trait]
impl Sink for ScriptSink {
    async fn deliver(&mut self, events: &[ReportingEvent]) -> Result<(), SinkError> {
        let started = self.started.clone();
        let compiled = match &self.compiled {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(self.compile(started.clone())?);
                self.compiled = Some(c.clone());
                c
            }
        };
        let batch: rhai::Array = events
            .iter()
            .map(rhai::serde::to_dynamic)
            .collect::<Result<_, _>>()
            .map_err(|e| SinkError::new(format!("converting events: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let (engine, ast) = &*compiled;
            if let Ok(mut s) = started.lock() {
                *s = Instant::now();
            }
            let mut scope = Scope::new();
            engine
                .call_fn::<Dynamic>(&mut scope, ast, "deliver", (batch,))
                .map(|_| ())
                .map_err(|e| SinkError::new(format!("script: {e}")))
        })
        .await
        .map_err(|e| SinkError::new(format!("script task failed: {e}")))?
    }

    async fn reset(&mut self) {
        self.compiled = None;
    }
}
