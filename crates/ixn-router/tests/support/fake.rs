//! An in-memory interaction server for router tests on a paused clock: strategy queues, held
//! pulls (answered empty after 10 s), agents with free slots that accept or reject, and a log of
//! every request with the (virtual) time it arrived. No sockets, so tokio's paused time advances
//! only when the router and the fake wait on timers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ixn_model::{InteractionState, Timestamp, UserData, Value};
use ixn_protocol::{
    ErrorBody, ErrorCode, InteractionView, InviteKind, InviteOutcome, ProtocolError, Request, RouteTarget,
    ServerMessage,
};
use ixn_router::{BoxFuture, Connected, Connector, Link, LinkClosed};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

/// Upper bound of every wait in these tests (virtual time: reached only when something is broken).
pub const DEADLINE: Duration = Duration::from_secs(3600);

/// Held pulls are answered empty after this long, like the server's max-pull-wait.
const MAX_PULL_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct FakeAgent {
    pub name: String,
    pub groups: Vec<String>,
    pub free: u32,
    pub rejects: bool,
}

#[derive(Debug, Default)]
struct State {
    queues: HashMap<String, VecDeque<InteractionView>>,
    /// Strategy → error code its pulls are answered with.
    errors: HashMap<String, u32>,
    routing: HashMap<String, (String, InteractionView)>,
    agents: Vec<FakeAgent>,
    held: Vec<(u64, String, u32, oneshot::Sender<ServerMessage>)>,
    next_hold: u64,
    log: Vec<(Instant, Request)>,
    /// Where each interaction ended: `agent:NAME`, `queue:NAME`, `workbin:NAME`, `stopped`.
    outcomes: HashMap<String, String>,
    events: Option<mpsc::UnboundedSender<ServerMessage>>,
    esp_result: serde_json::Map<String, serde_json::Value>,
    next_id: u64,
    connections: u32,
}

#[derive(Debug, Clone, Default)]
pub struct FakeServer {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

pub fn interaction(id: &str, media: &str, priority: i64) -> InteractionView {
    InteractionView {
        id: id.to_owned(),
        tenant: "default".into(),
        media_type: media.to_owned(),
        interaction_type: None,
        subtype: None,
        queue: Some("inbound".into()),
        workbin: None,
        workbin_owner: None,
        state: InteractionState::Queued,
        is_online: true,
        is_locked: false,
        is_held: false,
        parent_id: None,
        external_id: None,
        priority,
        service_objective: None,
        submitted_by: "media".into(),
        assigned_to: None,
        submit_seq: 1,
        received_at: None,
        submitted_at: Timestamp(0),
        placed_in_queue_at: None,
        moved_to_queue_at: None,
        delivered_at: None,
        assigned_at: None,
        held_at: None,
        scheduled_at: None,
        completed_at: None,
        abandoned_at: None,
        user_data: UserData::new(),
    }
}

fn error(code: ErrorCode) -> ServerMessage {
    ServerMessage::EventError {
        reference_id: None,
        error: ErrorBody::from(&ProtocolError::of(code)),
    }
}

fn matches(agent: &FakeAgent, t: &RouteTarget) -> bool {
    if t.exclude.contains(&agent.name) {
        return false;
    }
    let open = t.agents.is_empty() && t.groups.is_empty() && t.places.is_empty();
    open || t.agents.contains(&agent.name) || t.groups.iter().any(|g| agent.groups.contains(g))
}

impl FakeServer {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake server state")
    }

    /// Queues an interaction for `strategy` (waking a held pull).
    pub fn submit(&self, strategy: &str, ix: InteractionView) {
        self.lock()
            .queues
            .entry(strategy.to_owned())
            .or_default()
            .push_back(ix);
        self.serve_held();
    }

    pub fn add_agent(&self, name: &str, groups: &[&str], free: u32, rejects: bool) {
        self.lock().agents.push(FakeAgent {
            name: name.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            free,
            rejects,
        });
    }

    /// Gives an agent room for one more, and tells the routers.
    pub fn free_agent(&self, name: &str) {
        let events = {
            let mut s = self.lock();
            if let Some(a) = s.agents.iter_mut().find(|a| a.name == name) {
                a.free += 1;
            }
            s.events.clone()
        };
        if let Some(tx) = events {
            let _ = tx.send(ServerMessage::EventAgentAvailable {
                agent: name.to_owned(),
                media_types: vec!["chat".into()],
            });
        }
    }

    pub fn fail_pulls(&self, strategy: &str, code: u32) {
        self.lock().errors.insert(strategy.to_owned(), code);
    }

    pub fn clear_errors(&self) {
        self.lock().errors.clear();
    }

    pub fn set_esp_result(&self, result: serde_json::Value) {
        if let serde_json::Value::Object(m) = result {
            self.lock().esp_result = m;
        }
    }

    pub fn log(&self) -> Vec<(Instant, Request)> {
        self.lock().log.clone()
    }

    pub fn outcome(&self, id: &str) -> Option<String> {
        self.lock().outcomes.get(id).cloned()
    }

    pub fn connections(&self) -> u32 {
        self.lock().connections
    }

    /// Waits (virtual time passing) until `cond` holds on the request log.
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&FakeServer) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let notified = self.changed.notified();
            if cond(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {what}; log: {:#?}", self.log());
            }
        }
    }

    fn serve_held(&self) {
        let mut answers = Vec::new();
        {
            let mut s = self.lock();
            let held = std::mem::take(&mut s.held);
            for (hold, strategy, count, tx) in held {
                let items = Self::take(&mut s, &strategy, count);
                if items.is_empty() {
                    s.held.push((hold, strategy, count, tx));
                } else {
                    answers.push((tx, items));
                }
            }
        }
        for (tx, interactions) in answers {
            let _ = tx.send(ServerMessage::EventPulledInteractions {
                reference_id: 0,
                interactions,
            });
        }
        self.changed.notify_waiters();
    }

    fn take(s: &mut State, strategy: &str, count: u32) -> Vec<InteractionView> {
        let mut out = Vec::new();
        while out.len() < count as usize {
            let Some(mut ix) = s.queues.get_mut(strategy).and_then(VecDeque::pop_front) else {
                break;
            };
            ix.state = InteractionState::Routing;
            s.routing.insert(ix.id.clone(), (strategy.to_owned(), ix.clone()));
            out.push(ix);
        }
        out
    }

    fn handle(&self, request: Request, tx: oneshot::Sender<ServerMessage>) {
        let answer = {
            let mut s = self.lock();
            s.log.push((Instant::now(), request.clone()));
            match request {
                Request::Pull(p) => match p.strategy {
                    Some(strategy) => {
                        if let Some(code) = s.errors.get(&strategy) {
                            let code = ErrorCode::from_code(*code).unwrap_or(ErrorCode::StrategyDoesNotExist);
                            Some(error(code))
                        } else {
                            let items = Self::take(&mut s, &strategy, p.count);
                            if items.is_empty() {
                                s.next_hold += 1;
                                let hold = s.next_hold;
                                s.held.push((hold, strategy, p.count, tx));
                                drop(s);
                                self.expire_hold(hold);
                                self.changed.notify_waiters();
                                return;
                            }
                            Some(ServerMessage::EventPulledInteractions {
                                reference_id: 0,
                                interactions: items,
                            })
                        }
                    }
                    None => Some(ServerMessage::EventPulledInteractions {
                        reference_id: 0,
                        interactions: p
                            .interaction_ids
                            .iter()
                            .map(|id| interaction(id, "email", 0))
                            .collect(),
                    }),
                },
                Request::RouteInteraction(r) => Some(Self::route(&mut s, r.interaction_id, &r.target)),
                Request::PlaceInQueue(p) => {
                    s.routing.remove(&p.interaction_id);
                    s.outcomes.insert(p.interaction_id, format!("queue:{}", p.queue));
                    Some(ServerMessage::ack(0))
                }
                Request::PlaceInWorkbin(p) => {
                    s.routing.remove(&p.interaction_id);
                    s.outcomes
                        .insert(p.interaction_id, format!("workbin:{}", p.workbin.name));
                    Some(ServerMessage::ack(0))
                }
                Request::StopProcessing(p) => {
                    s.routing.remove(&p.interaction_id);
                    s.outcomes.insert(p.interaction_id, "stopped".into());
                    Some(ServerMessage::ack(0))
                }
                Request::ThirdServer(_) => Some(ServerMessage::Event3rdServerResult {
                    reference_id: 0,
                    app_name: "esp-1".into(),
                    result: s.esp_result.clone(),
                }),
                Request::Submit(_) => {
                    s.next_id += 1;
                    Some(ServerMessage::EventAck {
                        reference_id: 0,
                        interaction_id: Some(format!("created-{}", s.next_id)),
                        interaction: None,
                    })
                }
                Request::FindInteractions(_) => Some(ServerMessage::EventFoundInteractions {
                    reference_id: 0,
                    interactions: Vec::new(),
                }),
                _ => Some(ServerMessage::ack(0)),
            }
        };
        if let Some(a) = answer {
            let _ = tx.send(a);
        }
        self.changed.notify_waiters();
    }

    fn route(s: &mut State, id: String, target: &RouteTarget) -> ServerMessage {
        let Some(agent) = s.agents.iter_mut().find(|a| a.free > 0 && matches(a, target)) else {
            return error(ErrorCode::NoAgentAvailable);
        };
        let Some((strategy, mut ix)) = s.routing.remove(&id) else {
            return error(ErrorCode::UnknownInteraction);
        };
        let name = agent.name.clone();
        ix.assigned_to = Some(name.clone());
        let outcome = if agent.rejects {
            // Back to its queue at once (freeze intervals are the real server's business).
            ix.state = InteractionState::Queued;
            s.queues.entry(strategy).or_default().push_back(ix.clone());
            InviteOutcome::Rejected
        } else {
            agent.free -= 1;
            s.outcomes.insert(id.clone(), format!("agent:{name}"));
            InviteOutcome::Accepted
        };
        if let Some(events) = &s.events {
            let _ = events.send(ServerMessage::EventInviteOutcome {
                interaction_id: id,
                agent: name,
                invite: InviteKind::Route,
                outcome,
                reason: None,
            });
        }
        ServerMessage::EventAck {
            reference_id: 0,
            interaction_id: Some(ix.id.clone()),
            interaction: Some(Box::new(ix)),
        }
    }

    fn expire_hold(&self, hold: u64) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(MAX_PULL_WAIT).await;
            let tx = {
                let mut s = this.lock();
                let pos = s.held.iter().position(|(h, ..)| *h == hold);
                pos.map(|p| s.held.remove(p).3)
            };
            if let Some(tx) = tx {
                let _ = tx.send(ServerMessage::EventPulledInteractions {
                    reference_id: 0,
                    interactions: Vec::new(),
                });
            }
        });
    }

    /// A rejected interaction went back to its queue: serve waiting pulls (as the server's
    /// "view became non-empty" wake-up does).
    pub fn wake(&self) {
        self.serve_held();
    }
}

#[derive(Debug)]
struct FakeLink(FakeServer);

impl Link for FakeLink {
    fn send(&self, request: Request) -> Result<oneshot::Receiver<ServerMessage>, LinkClosed> {
        let (tx, rx) = oneshot::channel();
        self.0.handle(request, tx);
        // A reject puts the interaction back: let held pulls see it.
        self.0.serve_held();
        Ok(rx)
    }
}

impl Connector for FakeServer {
    fn describe(&self) -> String {
        "fake".into()
    }

    fn connect(&self) -> BoxFuture<Result<Connected, String>> {
        let this = self.clone();
        Box::pin(async move {
            let (tx, events) = mpsc::unbounded_channel();
            {
                let mut s = this.lock();
                s.events = Some(tx);
                s.connections += 1;
            }
            Ok(Connected {
                link: Arc::new(FakeLink(this.clone())),
                events,
            })
        })
    }
}

/// The user data key's string value in a route request's added properties.
pub fn added(request: &Request, key: &str) -> Option<String> {
    match request {
        Request::RouteInteraction(r) => r.added_properties.get_str(key).map(str::to_owned),
        _ => None,
    }
}

/// Route targets sent for `id`, in order.
pub fn route_targets(log: &[(Instant, Request)], id: &str) -> Vec<(Instant, RouteTarget)> {
    log.iter()
        .filter_map(|(at, r)| match r {
            Request::RouteInteraction(r) if r.interaction_id == id => Some((*at, r.target.clone())),
            _ => None,
        })
        .collect()
}

/// Priorities set by ChangeProperties for `id`, in order.
pub fn priorities(log: &[(Instant, Request)], id: &str) -> Vec<i64> {
    log.iter()
        .filter_map(|(_, r)| match r {
            Request::ChangeProperties(c) if c.interaction_id == id => {
                c.changed_properties.get_int("priority")
            }
            _ => None,
        })
        .collect()
}

/// Strategy pulls, with their time.
pub fn pulls(log: &[(Instant, Request)], strategy: &str) -> Vec<Instant> {
    log.iter()
        .filter_map(|(at, r)| match r {
            Request::Pull(p) if p.strategy.as_deref() == Some(strategy) => Some(*at),
            _ => None,
        })
        .collect()
}

pub fn value_str(v: &str) -> Value {
    Value::Str(v.to_owned())
}
