//! Property tests: random request sequences from a few clients of both tenants, with the
//! invariants checked after every step (see [`Engine::check_invariants`]), plus what only the
//! sequence shows: event numbers gap-free across batches, stopped interactions written exactly
//! once, pulls taking exactly the first interactions of the view's order, and failed requests
//! changing nothing.

use std::collections::HashMap;

use ixn_model::condition::SortKey;
use ixn_model::{InteractionId, Timestamp};
use ixn_protocol::{
    ChangeProperties, Hold, LockInteraction, PlaceInQueue, PlaceInWorkbin, Pull, Resume, StopProcessing,
    UnlockInteraction, WorkbinTarget,
};
use proptest::prelude::*;

use super::clients::*;
use super::invariants::pullable;
use super::*;
use crate::views::ORDER_REFERENCE;

const QUEUES: &[&str] = &["inbound", "parking", "empty", "nope"];
const VIEWS: &[&str] = &["all", "gold", "eu", "waited", "parking-all", "acme-all", "nope"];
const WORKBINS: &[(&str, Option<&str>)] = &[
    ("drafts", None),
    ("drafts", Some("ann")),
    ("team", Some("sales")),
    ("nope", None),
];

fn client(i: u8) -> ClientCtx {
    match i % 7 {
        0 => chat(),
        1 => router(),
        2 => ann(),
        3 => bob(),
        4 => admin(),
        5 => acme_chat(),
        _ => acme_agent(),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Submit {
        client: u8,
        queue: u8,
        priority: i8,
        gold: bool,
        eu: bool,
        scheduled_in: Option<u16>,
    },
    PullView {
        client: u8,
        view: u8,
        count: u8,
    },
    PullIds {
        client: u8,
        pick: u16,
    },
    PlaceInQueue {
        client: u8,
        pick: u16,
        queue: u8,
    },
    PlaceInWorkbin {
        client: u8,
        pick: u16,
        workbin: u8,
    },
    Stop {
        client: u8,
        pick: u16,
    },
    /// Hold when not held, resume when held (or the wrong one, 1 time in 8).
    Hold {
        client: u8,
        pick: u16,
        wrong: bool,
    },
    /// Lock when not locked, unlock when locked (or the wrong one).
    Lock {
        client: u8,
        pick: u16,
        wrong: bool,
    },
    Priority {
        client: u8,
        pick: u16,
        priority: i8,
    },
    Tick {
        advance_ms: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let c = any::<u8>();
    let pick = any::<u16>();
    prop_oneof![
        4 => (c, 0..4u8, -2..3i8, any::<bool>(), any::<bool>(), proptest::option::weighted(0.2, 0..6_000u16))
            .prop_map(|(client, queue, priority, gold, eu, scheduled_in)| Op::Submit {
                client, queue, priority, gold, eu, scheduled_in
            }),
        3 => (c, 0..VIEWS.len() as u8, 0..5u8).prop_map(|(client, view, count)| Op::PullView { client, view, count }),
        1 => (c, pick).prop_map(|(client, pick)| Op::PullIds { client, pick }),
        2 => (c, pick, 0..4u8).prop_map(|(client, pick, queue)| Op::PlaceInQueue { client, pick, queue }),
        1 => (c, pick, 0..4u8).prop_map(|(client, pick, workbin)| Op::PlaceInWorkbin { client, pick, workbin }),
        2 => (c, pick).prop_map(|(client, pick)| Op::Stop { client, pick }),
        2 => (c, pick, proptest::bool::weighted(0.125)).prop_map(|(client, pick, wrong)| Op::Hold { client, pick, wrong }),
        2 => (c, pick, proptest::bool::weighted(0.125)).prop_map(|(client, pick, wrong)| Op::Lock { client, pick, wrong }),
        1 => (c, pick, -2..3i8).prop_map(|(client, pick, priority)| Op::Priority { client, pick, priority }),
        2 => (0..3_000u16).prop_map(|advance_ms| Op::Tick { advance_ms }),
    ]
}

/// The interactions a pull through `view` must take, in order: every pullable interaction of
/// the view's queue matching its condition at `now`, by the view's key, capped by `count` and
/// by the room left under the view's limit.
fn expected_pull(eng: &Engine, tenant: &Name, view: &str, count: u32, now: Timestamp) -> Option<Vec<String>> {
    let v = eng.process.view_id(tenant, view)?;
    let def = &eng.process.views[v as usize];
    let mut hits: Vec<(SortKey, String)> = eng
        .live
        .iter()
        .map(|(_, ix)| ix)
        .filter(|ix| ix.tenant == def.tenant && ix.queue.as_ref() == Some(&def.queue) && pullable(ix, now))
        .filter(|ix| def.condition.eval(ix, now))
        .map(|ix| (def.order.sort_key(ix, ORDER_REFERENCE), ix.id.to_string()))
        .collect();
    hits.sort();
    let mut room = count as usize;
    if def.limit > 0 {
        room = room.min(def.limit.saturating_sub(eng.views.views[v as usize].in_flight) as usize);
    }
    Some(hits.into_iter().take(room).map(|(_, id)| id).collect())
}

struct Run {
    f: Fixture,
    ids: Vec<String>,
    last_seq: u64,
    stopped_rows: HashMap<String, usize>,
}

impl Run {
    /// Mostly a live interaction (of either tenant); sometimes any id ever given, or an
    /// unknown one.
    fn pick(&self, pick: u16) -> String {
        let live: Vec<String> = self.f.eng.live.iter().map(|(_, ix)| ix.id.to_string()).collect();
        if !pick.is_multiple_of(8) && !live.is_empty() {
            return live[pick as usize / 8 % live.len()].clone();
        }
        let i = pick as usize / 8 % (self.ids.len() + 1);
        self.ids.get(i).cloned().unwrap_or_else(|| "nope".to_owned())
    }

    fn flag(&self, id: &str, flag: fn(&ixn_model::Interaction) -> bool) -> bool {
        InteractionId::parse(id)
            .ok()
            .and_then(|id| self.f.eng.live.get_by_id(&id))
            .is_some_and(flag)
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let before = self.f.eng.fingerprint();
        let mut expected_pull = None;
        let mut stopping = None;
        let (who, request) = match op.clone() {
            Op::Tick { advance_ms } => {
                self.f.now = self.f.now.plus_millis(i64::from(advance_ms));
                self.f.eng.tick(self.f.now, &mut self.f.out);
                self.after_success()?;
                return Ok(());
            }
            Op::Submit {
                client: c,
                queue,
                priority,
                gold,
                eu,
                scheduled_in,
            } => {
                let mut s = submit_req(Some(QUEUES[queue as usize % QUEUES.len()]));
                s.priority = Some(i64::from(priority));
                let mut ud = Vec::new();
                if gold {
                    ud.push(("Segment", "gold"));
                }
                if eu {
                    ud.push(("Region", "eu"));
                }
                s.user_data = Some(user_data(&ud));
                s.scheduled_at = scheduled_in.map(|ms| self.f.now.plus_millis(i64::from(ms)));
                (client(c), Request::Submit(s))
            }
            Op::PullView {
                client: c,
                view,
                count,
            } => {
                let who = client(c);
                let view = VIEWS[view as usize % VIEWS.len()];
                expected_pull =
                    expected_pull_of(&self.f.eng, &who.tenant, view, u32::from(count), self.f.now);
                (
                    who,
                    Request::Pull(Pull {
                        view: Some(view.into()),
                        count: count.into(),
                        interaction_ids: vec![],
                        strategy: None,
                        max_wait_ms: None,
                    }),
                )
            }
            Op::PullIds { client: c, pick } => (
                client(c),
                Request::Pull(Pull {
                    view: None,
                    count: 1,
                    interaction_ids: vec![self.pick(pick)],
                    strategy: None,
                    max_wait_ms: None,
                }),
            ),
            Op::PlaceInQueue {
                client: c,
                pick,
                queue,
            } => (
                client(c),
                Request::PlaceInQueue(PlaceInQueue {
                    interaction_id: self.pick(pick),
                    queue: QUEUES[queue as usize % QUEUES.len()].into(),
                    added_properties: UserData::new(),
                }),
            ),
            Op::PlaceInWorkbin {
                client: c,
                pick,
                workbin,
            } => {
                let (name, owner) = WORKBINS[workbin as usize % WORKBINS.len()];
                let workbin = WorkbinTarget {
                    name: name.into(),
                    owner: owner.map(str::to_owned),
                };
                (
                    client(c),
                    Request::PlaceInWorkbin(PlaceInWorkbin {
                        interaction_id: self.pick(pick),
                        workbin,
                    }),
                )
            }
            Op::Stop { client: c, pick } => {
                let id = self.pick(pick);
                stopping = Some(id.clone());
                (
                    client(c),
                    Request::StopProcessing(StopProcessing {
                        interaction_id: id,
                        reason: None,
                    }),
                )
            }
            Op::Hold {
                client: c,
                pick,
                wrong,
            } => {
                let interaction_id = self.pick(pick);
                let r = if self.flag(&interaction_id, |ix| ix.is_held) == wrong {
                    Request::Hold(Hold {
                        interaction_id,
                        reason: None,
                    })
                } else {
                    Request::Resume(Resume {
                        interaction_id,
                        reason: None,
                    })
                };
                (client(c), r)
            }
            Op::Lock {
                client: c,
                pick,
                wrong,
            } => {
                let interaction_id = self.pick(pick);
                let r = if self.flag(&interaction_id, |ix| ix.is_locked) == wrong {
                    Request::LockInteraction(LockInteraction {
                        interaction_id,
                        reason: None,
                    })
                } else {
                    Request::UnlockInteraction(UnlockInteraction { interaction_id })
                };
                (client(c), r)
            }
            Op::Priority {
                client: c,
                pick,
                priority,
            } => (
                client(c),
                Request::ChangeProperties(ChangeProperties {
                    interaction_id: self.pick(pick),
                    changed_properties: user_data(&[("priority", &priority.to_string())]),
                    added_properties: UserData::new(),
                    deleted_properties: vec![],
                }),
            ),
        };
        match self.f.req(&who, request) {
            Err(e) => {
                prop_assert!(
                    self.f.eng.fingerprint() == before,
                    "failed with {e} but changed the engine"
                );
                prop_assert!(
                    self.f.out.notifications.is_empty(),
                    "failed with {e} but notified"
                );
                let batch = self.f.eng.take_batch();
                prop_assert!(
                    batch.events.is_empty() && batch.interactions.is_empty(),
                    "failed with {e} but wrote"
                );
            }
            Ok(answer) => {
                if let ServerMessage::EventAck {
                    interaction_id: Some(id),
                    ..
                } = &answer
                    && matches!(op, Op::Submit { .. })
                {
                    self.ids.push(id.clone());
                }
                if let Some(expected) = expected_pull {
                    prop_assert_eq!(
                        pulled_ids(&answer),
                        expected,
                        "a pull takes the head of the view's order"
                    );
                }
                let rows = self.after_success()?;
                if let Some(id) = stopping {
                    let parsed = InteractionId::parse(&id).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(
                        self.f.eng.live.get_by_id(&parsed).is_none(),
                        "{} stopped but live",
                        id
                    );
                    prop_assert_eq!(rows.get(&id).copied(), Some(1), "{} stopped: one stopped row", id);
                }
            }
        }
        Ok(())
    }

    /// Checks the invariants and takes the batch: gap-free events, stopped rows recorded.
    fn after_success(&mut self) -> Result<HashMap<String, usize>, TestCaseError> {
        self.f.eng.check_invariants(self.f.now);
        let batch = self.f.eng.take_batch();
        for e in &batch.events {
            prop_assert_eq!(
                e.seq,
                self.last_seq + 1,
                "event numbers are gap-free and increasing"
            );
            self.last_seq = e.seq;
        }
        let mut stopped = HashMap::new();
        for row in &batch.interactions {
            if row.state.is_terminal() {
                *stopped.entry(row.id.to_string()).or_insert(0) += 1;
                *self.stopped_rows.entry(row.id.to_string()).or_insert(0) += 1;
            }
        }
        let mut ids: Vec<_> = batch.interactions.iter().map(|r| r.id.clone()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), n, "one row per interaction per batch");
        Ok(stopped)
    }
}

fn expected_pull_of(
    eng: &Engine,
    tenant: &Name,
    view: &str,
    count: u32,
    now: Timestamp,
) -> Option<Vec<String>> {
    if count == 0 {
        return None;
    }
    expected_pull(eng, tenant, view, count, now)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_request_sequences_keep_every_invariant(ops in proptest::collection::vec(op(), 1..150)) {
        let mut run = Run { f: Fixture::new(), ids: Vec::new(), last_seq: 0, stopped_rows: HashMap::new() };
        for op in &ops {
            run.step(op)?;
        }
        for (id, n) in &run.stopped_rows {
            prop_assert_eq!(*n, 1, "{} written as stopped {} times", id, n);
            let parsed = InteractionId::parse(id).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(run.f.eng.live.get_by_id(&parsed).is_none());
        }
    }
}
