//! The worker of one server connection: owns every interaction the router holds from that server
//! and runs each through its strategy — a small state machine per interaction (current step,
//! timers for the step's wait, overflow and priority raise, excluded agents). Every request about
//! an interaction goes through this worker's link, so it reaches the server the interaction came
//! from. One task owns all of it; answers, pulls, scripts and pushed events arrive as messages.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ixn_config::FinalAction;
use ixn_model::{UserData, Value};
use ixn_protocol::{
    ChangeProperties, ErrorCode, FindInteractions, InteractionView, InviteOutcome, PlaceInQueue,
    PlaceInWorkbin, Pull, Reason, Request, RouteInteraction, ServerMessage, StopProcessing, WorkbinTarget,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use crate::link::Link;
use crate::memory::Memory;
use crate::plan::{Plan, PlanStep, resume_point};
use crate::pull::Pulled;
use crate::script::{Decision, NODE_KEY, ORCHESTRATION_QUEUE, ScriptEnv, ScriptOutcome};

/// What a request was for, to handle its answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Route,
    /// Place in queue or workbin, or stop: the interaction leaves the router.
    Finish,
    /// Priority raise or script `set`: nothing to do with the answer.
    Change,
    /// Leftovers of this node in `orchestration_system`.
    CleanupFind,
    CleanupPull,
    CleanupStop,
}

#[derive(Debug)]
enum Input {
    Answer {
        id: String,
        op: Op,
        /// `None` when the connection went before the answer.
        msg: Option<ServerMessage>,
    },
    Scripted {
        id: String,
        outcome: Result<ScriptOutcome, String>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Timer {
    StepEnd(usize),
    Overflow,
    Priority,
}

/// One interaction the router holds.
#[derive(Debug)]
struct Work {
    ix: InteractionView,
    /// Tells this holding apart from an earlier one of the same interaction (stale timers).
    generation: u64,
    plan: Arc<Plan>,
    steps: Arc<Vec<PlanStep>>,
    step: usize,
    started: Instant,
    /// A route request or script run is in flight.
    busy: bool,
    /// The last route attempt found no agent: retry when one becomes available.
    waiting: bool,
    /// Something asked for another attempt while busy.
    retry: bool,
    /// Timers that fired while busy, handled when the answer comes.
    deferred: Vec<Timer>,
    /// A final request (place, stop) is in flight: nothing else happens to it.
    finishing: bool,
}

/// Error codes meaning "no agent of the target can take it now; try later".
fn is_no_agent(code: u32) -> bool {
    [
        ErrorCode::NoAgentAvailable,
        ErrorCode::AgentNotAvailable,
        ErrorCode::UnknownAgent,
        ErrorCode::AgentNotLoggedIn,
    ]
    .iter()
    .any(|c| c.code() == code)
}

/// The worker of one live connection.
#[derive(Debug)]
pub struct Worker {
    link: Arc<dyn Link>,
    node: String,
    plans: HashMap<String, Arc<Plan>>,
    slots: HashMap<String, Arc<Semaphore>>,
    works: HashMap<String, Work>,
    timers: BTreeMap<(Instant, u64), (String, u64, Timer)>,
    timer_seq: u64,
    memory: Memory,
    inputs: mpsc::UnboundedSender<Input>,
    inputs_rx: mpsc::UnboundedReceiver<Input>,
}

impl Worker {
    pub fn new(
        link: Arc<dyn Link>,
        node: String,
        plans: &[Arc<Plan>],
        slots: HashMap<String, Arc<Semaphore>>,
        memory: Memory,
    ) -> Worker {
        let (inputs, inputs_rx) = mpsc::unbounded_channel();
        Worker {
            link,
            node,
            plans: plans.iter().map(|p| (p.name().to_owned(), p.clone())).collect(),
            slots,
            works: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            memory,
            inputs,
            inputs_rx,
        }
    }

    /// Runs until the connection goes; returns what it remembers for the next connection.
    pub async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<ServerMessage>,
        mut pulled: mpsc::UnboundedReceiver<Pulled>,
    ) -> Memory {
        self.cleanup_orchestration_system();
        loop {
            let next_timer = self.timers.first_key_value().map(|((at, _), _)| *at);
            tokio::select! {
                biased;
                Some(input) = self.inputs_rx.recv() => self.on_input(input),
                event = events.recv() => match event {
                    Some(e) => self.on_event(e),
                    None => return self.memory,
                },
                Some(p) = pulled.recv() => self.on_pulled(p),
                () = sleep_until(next_timer) => self.fire_due_timers(),
            }
        }
    }

    fn request(&self, id: &str, op: Op, request: Request) {
        let (tx, id) = (self.inputs.clone(), id.to_owned());
        match self.link.send(request) {
            Ok(rx) => {
                tokio::spawn(async move {
                    let msg = rx.await.ok();
                    let _ = tx.send(Input::Answer { id, op, msg });
                });
            }
            Err(_) => {
                let _ = tx.send(Input::Answer { id, op, msg: None });
            }
        }
    }

    fn schedule(&mut self, at: Instant, id: &str, timer: Timer) {
        let Some(generation) = self.works.get(id).map(|w| w.generation) else {
            return;
        };
        self.timer_seq += 1;
        self.timers
            .insert((at, self.timer_seq), (id.to_owned(), generation, timer));
    }

    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (id, generation, timer) = entry.remove();
            if self.works.get(&id).is_some_and(|w| w.generation == generation) {
                self.on_timer(&id, timer);
            }
        }
    }

    /// The interaction leaves the router: its strategy may take another.
    fn drop_work(&mut self, id: &str) {
        if let Some(w) = self.works.remove(id)
            && let Some(slots) = self.slots.get(w.plan.name())
        {
            slots.add_permits(1);
        }
    }

    fn on_pulled(&mut self, p: Pulled) {
        let now = Instant::now();
        let Some(plan) = self.plans.get(&p.strategy).cloned() else {
            return;
        };
        for ix in p.interactions {
            let id = ix.id.clone();
            let started = self.memory.entry(&id, now).started;
            tracing::debug!(interaction = %id, strategy = plan.name(), "routing");
            self.timer_seq += 1;
            let work = Work {
                ix,
                generation: self.timer_seq,
                steps: plan.steps.clone(),
                plan: plan.clone(),
                step: 0,
                started,
                busy: false,
                waiting: false,
                retry: false,
                deferred: Vec::new(),
                finishing: false,
            };
            let script = plan.script.clone();
            self.works.insert(id.clone(), work);
            if let Some(o) = &plan.strategy.overflow {
                self.schedule(started + secs(o.after_s), &id, Timer::Overflow);
            }
            if let Some(p) = &plan.strategy.priority_raise {
                self.schedule(now + secs(p.interval_s), &id, Timer::Priority);
            }
            match script {
                Some(script) => self.run_script(&id, script),
                None => self.begin_steps(&id, None),
            }
        }
    }

    fn run_script(&mut self, id: &str, script: Arc<crate::script::CompiledScript>) {
        let Some(w) = self.works.get_mut(id) else { return };
        w.busy = true;
        let ix = w.ix.clone();
        let env = ScriptEnv {
            link: self.link.clone(),
            runtime: tokio::runtime::Handle::current(),
            node: self.node.clone(),
        };
        let (tx, id) = (self.inputs.clone(), id.to_owned());
        tokio::spawn(async move {
            let outcome = tokio::task::spawn_blocking(move || script.run(&ix, &env))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
            let _ = tx.send(Input::Scripted { id, outcome });
        });
    }

    /// Starts (or resumes) the steps at the point the interaction's time in the strategy gives.
    fn begin_steps(&mut self, id: &str, steps: Option<Vec<PlanStep>>) {
        let now = Instant::now();
        let Some(w) = self.works.get_mut(id) else { return };
        if let Some(steps) = steps.filter(|s| !s.is_empty()) {
            w.steps = Arc::new(steps);
        }
        let (step, into) = resume_point(&w.steps, now.saturating_duration_since(w.started));
        w.step = step;
        let wait = w.steps[step].wait;
        if let Some(wait) = wait {
            let at = now + wait.saturating_sub(into);
            self.schedule(at, id, Timer::StepEnd(step));
        }
        self.attempt(id);
    }

    /// Offers the interaction to the current step's target.
    fn attempt(&mut self, id: &str) {
        let Some(w) = self.works.get_mut(id) else { return };
        if w.finishing {
            return;
        }
        if w.busy {
            w.retry = true;
            return;
        }
        w.busy = true;
        let step = &w.steps[w.step];
        let mut target = step.target.clone();
        if let Some(m) = self.memory.get(id) {
            target.exclude.extend(m.excluded.iter().cloned());
        }
        let added_properties = w.plan.reporting_keys(step);
        let request = Request::RouteInteraction(RouteInteraction {
            interaction_id: id.to_owned(),
            target,
            added_properties,
        });
        self.request(id, Op::Route, request);
    }

    fn finish(&mut self, id: &str, action: &FinalAction) {
        let Some(w) = self.works.get_mut(id) else { return };
        let interaction_id = id.to_owned();
        let request = match action {
            FinalAction::KeepWaiting => return,
            FinalAction::PlaceInQueue(queue) => Request::PlaceInQueue(PlaceInQueue {
                interaction_id,
                queue: queue.clone(),
                added_properties: UserData::new(),
            }),
            FinalAction::PlaceInWorkbin { workbin, owner } => Request::PlaceInWorkbin(PlaceInWorkbin {
                interaction_id,
                workbin: WorkbinTarget {
                    name: workbin.clone(),
                    owner: owner.clone(),
                },
            }),
            FinalAction::Stop { reason } => Request::StopProcessing(StopProcessing {
                interaction_id,
                reason: Some(Reason {
                    code: None,
                    description: Some(
                        reason
                            .clone()
                            .unwrap_or_else(|| format!("strategy {}", w.plan.name())),
                    ),
                }),
            }),
        };
        tracing::debug!(interaction = %id, action = ?action, "finishing");
        w.finishing = true;
        w.busy = true;
        self.request(id, Op::Finish, request);
    }

    fn on_timer(&mut self, id: &str, timer: Timer) {
        let Some(w) = self.works.get_mut(id) else { return };
        if w.finishing {
            return;
        }
        if w.busy && timer != Timer::Priority {
            w.deferred.push(timer);
            return;
        }
        match timer {
            Timer::StepEnd(i) if i == w.step => {
                if i + 1 < w.steps.len() {
                    w.step = i + 1;
                    w.waiting = false;
                    if let Some(wait) = w.steps[i + 1].wait {
                        self.schedule(Instant::now() + wait, id, Timer::StepEnd(i + 1));
                    }
                    self.attempt(id);
                } else {
                    let action = w.plan.on_exhausted().clone();
                    self.finish(id, &action);
                }
            }
            Timer::StepEnd(_) => {}
            Timer::Overflow => {
                if let Some(o) = w.plan.strategy.overflow.clone() {
                    self.finish(id, &FinalAction::PlaceInQueue(o.queue));
                }
            }
            Timer::Priority => self.raise_priority(id),
        }
    }

    fn raise_priority(&mut self, id: &str) {
        let Some(w) = self.works.get_mut(id) else { return };
        let Some(raise) = w.plan.strategy.priority_raise.clone() else {
            return;
        };
        let mut next = w.ix.priority.saturating_add(raise.increment);
        if let Some(max) = raise.max {
            next = next.min(max.max(w.ix.priority));
        }
        if next != w.ix.priority {
            w.ix.priority = next;
            let mut changed = UserData::new();
            changed.set("priority", Value::Int(next));
            let request = Request::ChangeProperties(ChangeProperties {
                interaction_id: id.to_owned(),
                changed_properties: changed,
                added_properties: UserData::new(),
                deleted_properties: Vec::new(),
            });
            self.request(id, Op::Change, request);
        }
        self.schedule(Instant::now() + secs(raise.interval_s), id, Timer::Priority);
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Answer { id, op, msg } => self.on_answer(&id, op, msg),
            Input::Scripted { id, outcome } => self.on_scripted(&id, outcome),
        }
    }

    fn on_answer(&mut self, id: &str, op: Op, msg: Option<ServerMessage>) {
        match op {
            Op::Route => self.on_route_answer(id, msg),
            Op::Finish => {
                if let Some(ServerMessage::EventError { error, .. }) = &msg {
                    tracing::warn!(interaction = %id, code = error.code, error = %error.message, "final action failed");
                }
                self.drop_work(id);
            }
            Op::Change => {
                if let Some(ServerMessage::EventError { error, .. }) = &msg {
                    tracing::debug!(interaction = %id, code = error.code, error = %error.message, "change refused");
                }
            }
            Op::CleanupFind => self.on_cleanup_found(msg),
            Op::CleanupPull => {
                if let Some(ServerMessage::EventPulledInteractions { interactions, .. }) = msg {
                    for ix in interactions {
                        let reason = Reason {
                            code: None,
                            description: Some(format!("cleanup by router node {}", self.node)),
                        };
                        let request = Request::StopProcessing(StopProcessing {
                            interaction_id: ix.id.clone(),
                            reason: Some(reason),
                        });
                        self.request(&ix.id, Op::CleanupStop, request);
                    }
                }
            }
            Op::CleanupStop => tracing::debug!(interaction = %id, "cleaned up"),
        }
    }

    fn on_route_answer(&mut self, id: &str, msg: Option<ServerMessage>) {
        let Some(w) = self.works.get_mut(id) else { return };
        w.busy = false;
        match msg {
            Some(ServerMessage::EventAck { interaction, .. }) => {
                let agent = interaction.and_then(|i| i.assigned_to);
                tracing::debug!(interaction = %id, agent = ?agent, "offered");
                self.drop_work(id);
            }
            Some(ServerMessage::EventError { error, .. }) if is_no_agent(error.code) => {
                w.waiting = true;
                let deferred = std::mem::take(&mut w.deferred);
                let retry = std::mem::replace(&mut w.retry, false);
                for t in deferred {
                    self.on_timer(id, t);
                }
                if retry {
                    self.attempt(id);
                }
            }
            other => {
                tracing::info!(interaction = %id, answer = ?other, "interaction is no longer routable here");
                self.drop_work(id);
            }
        }
    }

    fn on_scripted(&mut self, id: &str, outcome: Result<ScriptOutcome, String>) {
        let Some(w) = self.works.get_mut(id) else { return };
        w.busy = false;
        let outcome = outcome.unwrap_or_else(|e| {
            tracing::warn!(interaction = %id, strategy = w.plan.name(), error = %e, "script failed; using the steps");
            ScriptOutcome::default()
        });
        if !outcome.changes.is_empty() {
            let request = Request::ChangeProperties(ChangeProperties {
                interaction_id: id.to_owned(),
                changed_properties: UserData::new(),
                added_properties: outcome.changes.clone(),
                deleted_properties: Vec::new(),
            });
            self.request(id, Op::Change, request);
        }
        self.clean_up(&outcome.created);
        match outcome.decision {
            Decision::Steps => self.begin_steps(id, None),
            Decision::Route(steps) => self.begin_steps(id, Some(steps)),
            Decision::Final(action) => self.finish(id, &action),
        }
    }

    /// Pulls this node's interactions out of `orchestration_system` by id, then stops them.
    fn clean_up(&self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        let request = Request::Pull(Pull {
            view: None,
            count: u32::try_from(ids.len()).unwrap_or(u32::MAX),
            interaction_ids: ids.to_vec(),
            strategy: None,
            max_wait_ms: None,
        });
        self.request("", Op::CleanupPull, request);
    }

    /// At connect: finds what this node left in `orchestration_system` (e.g. before a crash).
    fn cleanup_orchestration_system(&self) {
        let request = Request::FindInteractions(FindInteractions {
            condition: format!("queue = '{ORCHESTRATION_QUEUE}'"),
            order: None,
            limit: Some(1000),
            offset: 0,
            include_stopped: false,
        });
        self.request("", Op::CleanupFind, request);
    }

    fn on_cleanup_found(&self, msg: Option<ServerMessage>) {
        let Some(ServerMessage::EventFoundInteractions { interactions, .. }) = msg else {
            return;
        };
        let mine: Vec<String> = interactions
            .into_iter()
            .filter(|ix| ix.user_data.get_str(NODE_KEY) == Some(self.node.as_str()))
            .map(|ix| ix.id)
            .collect();
        if !mine.is_empty() {
            tracing::info!(count = mine.len(), "cleaning up orchestration_system");
        }
        self.clean_up(&mine);
    }

    fn on_event(&mut self, event: ServerMessage) {
        let now = Instant::now();
        match event {
            ServerMessage::EventAgentAvailable { media_types, .. } => self.on_agent_available(&media_types),
            ServerMessage::EventInviteOutcome {
                interaction_id,
                agent,
                outcome,
                ..
            } => match outcome {
                InviteOutcome::Rejected | InviteOutcome::TimedOut => {
                    self.memory.exclude(&interaction_id, &agent, now);
                }
                InviteOutcome::Accepted => self.memory.forget(&interaction_id),
                InviteOutcome::Revoked => {}
            },
            ServerMessage::EventRevoked { interaction_id, .. } => self.drop_work(&interaction_id),
            ServerMessage::EventProcessingStopped { interaction_id, .. } => {
                self.drop_work(&interaction_id);
                self.memory.forget(&interaction_id);
            }
            _ => {}
        }
    }

    /// An agent can take more: retry the waiting interactions of those media, highest priority
    /// and longest waiting first (the server picks agents in the order requests arrive).
    fn on_agent_available(&mut self, media_types: &[String]) {
        let mut ready: Vec<(i64, Instant, String)> = self
            .works
            .iter()
            // A route in flight may be answered "no agent" after this event was sent: mark it for a
            // retry too (the answer and the event travel separately).
            .filter(|(_, w)| (w.waiting || w.busy) && !w.finishing)
            .filter(|(_, w)| media_types.is_empty() || media_types.contains(&w.ix.media_type))
            .map(|(id, w)| (w.ix.priority, w.started, id.clone()))
            .collect();
        ready.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (_, _, id) in ready {
            self.attempt(&id);
        }
    }
}

fn secs(s: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(s))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
