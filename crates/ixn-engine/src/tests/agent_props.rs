//! Property tests of agents and delivery: random sequences of logins, state changes, pulls,
//! routes, accepts, rejects, transfers, conferences, leaves, stops, disconnects and the passing
//! of time. After every step the engine's invariants hold (no agent over capacity, every
//! interaction in one state with exactly its state timer, every held interaction counted in its
//! holder's load), failed requests change nothing, and an agent who rejected an interaction or
//! let its offer time out is never offered it again.

use std::collections::{HashMap, HashSet};

use ixn_protocol::{
    CancelNotReadyForMedia, Conference, InviteOutcome, LeaveInteraction, NotReadyForMedia, Pull, RouteTarget,
    SelectionPolicy, StopProcessing, Transfer,
};
use proptest::prelude::*;

use super::agents::{AGENTS_PROCESS, accept, desk, login, reject, route};
use super::clients::*;
use super::*;

const AGENTS: &[&str] = &["ann", "bob", "cid"];
const MEDIA: &[&str] = &["chat", "email", "voice"];

#[derive(Clone, Debug)]
enum Op {
    Submit(u8),
    Pull(u8),
    Route { pick: u16, policy: u8, only: Option<u8> },
    Accept { agent: u8, pick: u16 },
    Reject { agent: u8, pick: u16 },
    Login { agent: u8, media: u8 },
    Logout(u8),
    Ready { agent: u8, media: u8, ready: bool },
    Disconnect(u8),
    Transfer { agent: u8, pick: u16, to: u8 },
    Conference { agent: u8, pick: u16, to: u8 },
    Leave { agent: u8, pick: u16 },
    Stop(u16),
    Advance(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u8>().prop_map(Op::Submit),
        2 => any::<u8>().prop_map(Op::Pull),
        4 => (any::<u16>(), any::<u8>(), proptest::option::of(any::<u8>()))
            .prop_map(|(pick, policy, only)| Op::Route { pick, policy, only }),
        3 => (any::<u8>(), any::<u16>()).prop_map(|(agent, pick)| Op::Accept { agent, pick }),
        2 => (any::<u8>(), any::<u16>()).prop_map(|(agent, pick)| Op::Reject { agent, pick }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(agent, media)| Op::Login { agent, media }),
        1 => any::<u8>().prop_map(Op::Logout),
        1 => (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(agent, media, ready)| Op::Ready { agent, media, ready }),
        1 => any::<u8>().prop_map(Op::Disconnect),
        1 => (any::<u8>(), any::<u16>(), any::<u8>()).prop_map(|(agent, pick, to)| Op::Transfer { agent, pick, to }),
        1 => (any::<u8>(), any::<u16>(), any::<u8>()).prop_map(|(agent, pick, to)| Op::Conference { agent, pick, to }),
        1 => (any::<u8>(), any::<u16>()).prop_map(|(agent, pick)| Op::Leave { agent, pick }),
        1 => any::<u16>().prop_map(Op::Stop),
        2 => (0u32..40_000).prop_map(Op::Advance),
    ]
}

struct Run {
    f: Fixture,
    ids: Vec<String>,
    /// Connection id of each agent's desktop (a new one after a disconnect).
    conn: HashMap<&'static str, u64>,
    next_conn: u64,
    declined: HashMap<String, HashSet<String>>,
    /// Rows as the store would hold them: every batch applied in order.
    stored: HashMap<String, ixn_model::Interaction>,
}

impl Run {
    fn desk(&self, agent: u8) -> ClientCtx {
        let name = AGENTS[agent as usize % AGENTS.len()];
        desk(self.conn.get(name).copied().unwrap_or(100), name)
    }

    fn pick(&self, pick: u16) -> String {
        if self.ids.is_empty() {
            return "0V70MWDg01999999".into();
        }
        self.ids[pick as usize % self.ids.len()].clone()
    }

    /// Applies the batch collected so far to `stored`.
    fn commit(&mut self) {
        for ix in self.f.eng.take_batch().interactions {
            self.stored.insert(ix.id.to_string(), ix);
        }
    }

    /// What the store holds is every live interaction as it is, except where the only changes
    /// since its last write took it into routing or offered it (volatile, see
    /// `Engine::release_after`): those are found at an earlier state after a crash.
    fn check_stored(&mut self) {
        self.commit();
        for slot in self.f.eng.live.slots().collect::<Vec<_>>() {
            let ix = self.f.eng.ix(slot);
            let stored = self.stored.get(ix.id.as_str());
            assert!(stored.is_some(), "{} is live but was never written", ix.id);
            if !matches!(
                ix.state,
                ixn_model::InteractionState::Routing | ixn_model::InteractionState::Delivering
            ) {
                assert_eq!(stored, Some(ix), "the store is behind on {}", ix.id);
            }
        }
    }

    /// Runs one request; a failure must change nothing.
    fn run(&mut self, client: &ClientCtx, request: Request) -> bool {
        self.commit();
        let before = self.f.eng.fingerprint();
        let agents_before = format!("{:?}", self.f.eng.agent_views(None));
        match self.f.req(client, request) {
            Ok(_) => true,
            Err(_) => {
                assert_eq!(
                    self.f.eng.fingerprint(),
                    before,
                    "a failed request changed interactions"
                );
                assert_eq!(
                    format!("{:?}", self.f.eng.agent_views(None)),
                    agents_before,
                    "a failed request changed agents"
                );
                assert!(self.f.out.notifications.is_empty(), "a failed request notified");
                false
            }
        }
    }

    fn observe(&mut self) {
        for (_, m) in &self.f.out.notifications {
            if let ServerMessage::EventInviteOutcome {
                interaction_id,
                agent,
                outcome: InviteOutcome::Rejected | InviteOutcome::TimedOut,
                ..
            } = m
            {
                self.declined
                    .entry(interaction_id.clone())
                    .or_default()
                    .insert(agent.clone());
            }
            if let ServerMessage::EventInvite { interaction, .. } = m {
                let agent = interaction.assigned_to.clone().unwrap_or_default();
                let declined = self.declined.get(&interaction.id);
                assert!(
                    !declined.is_some_and(|d| d.contains(&agent)
                        && interaction.state == ixn_model::InteractionState::Delivering),
                    "{agent} declined {} before and was offered it again",
                    interaction.id
                );
            }
        }
    }

    fn step(&mut self, op: &Op) {
        let now = self.f.now;
        match op {
            Op::Submit(m) => {
                let media = MEDIA[*m as usize % MEDIA.len()];
                let id = self
                    .f
                    .submit_with(&chat(), Some("inbound"), |s| s.media_type = media.into());
                self.ids.push(id);
            }
            Op::Pull(n) => {
                let count = u32::from(*n % 4) + 1;
                self.run(&router(), Request::Pull(Pull::for_strategy("main", count, None)));
            }
            Op::Route { pick, policy, only } => {
                let target = RouteTarget {
                    agents: only
                        .map(|a| vec![AGENTS[a as usize % AGENTS.len()].to_owned()])
                        .unwrap_or_default(),
                    policy: SelectionPolicy::ALL[*policy as usize % 4],
                    skills: (*policy % 5 == 4).then(|| "english >= 4".to_owned()),
                    ..Default::default()
                };
                let id = self.pick(*pick);
                self.run(&router(), route(&id, target));
            }
            Op::Accept { agent, pick } => {
                let (c, id) = (self.desk(*agent), self.pick(*pick));
                self.run(&c, accept(&id));
            }
            Op::Reject { agent, pick } => {
                let (c, id) = (self.desk(*agent), self.pick(*pick));
                let rejected = self.run(&c, reject(&id));
                if rejected {
                    let name = c.agent.map(|a| a.to_string()).unwrap_or_default();
                    self.declined.entry(id).or_default().insert(name);
                }
            }
            Op::Login { agent, media } => {
                let c = self.desk(*agent);
                let list: Vec<&str> = MEDIA
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| media & (1 << i) != 0)
                    .map(|(_, m)| *m)
                    .collect();
                self.run(&c, login(&list));
            }
            Op::Logout(agent) => {
                let c = self.desk(*agent);
                self.run(
                    &c,
                    Request::AgentLogout(ixn_protocol::AgentLogout { reason: None }),
                );
            }
            Op::Ready { agent, media, ready } => {
                let c = self.desk(*agent);
                let media_type = MEDIA[*media as usize % MEDIA.len()].to_owned();
                let r = if *ready {
                    Request::CancelNotReadyForMedia(CancelNotReadyForMedia {
                        media_type,
                        reason: None,
                    })
                } else {
                    Request::NotReadyForMedia(NotReadyForMedia {
                        media_type,
                        reason: None,
                    })
                };
                self.run(&c, r);
            }
            Op::Disconnect(agent) => {
                let name = AGENTS[*agent as usize % AGENTS.len()];
                let old = self.conn.get(name).copied().unwrap_or(100);
                self.f.out = Output::default();
                self.f.eng.client_gone(old, now, &mut self.f.out);
                self.next_conn += 1;
                self.conn.insert(name, self.next_conn);
            }
            Op::Transfer { agent, pick, to } => {
                let (c, id) = (self.desk(*agent), self.pick(*pick));
                let to = AGENTS[*to as usize % AGENTS.len()].to_owned();
                self.run(
                    &c,
                    Request::Transfer(Transfer {
                        interaction_id: id,
                        agent: Some(to),
                        place: None,
                        queue: None,
                        reason: None,
                    }),
                );
            }
            Op::Conference { agent, pick, to } => {
                let (c, id) = (self.desk(*agent), self.pick(*pick));
                let to = AGENTS[*to as usize % AGENTS.len()].to_owned();
                self.run(
                    &c,
                    Request::Conference(Conference {
                        interaction_id: id,
                        agent: Some(to),
                        place: None,
                        reason: None,
                    }),
                );
            }
            Op::Leave { agent, pick } => {
                let (c, id) = (self.desk(*agent), self.pick(*pick));
                self.run(
                    &c,
                    Request::LeaveInteraction(LeaveInteraction {
                        interaction_id: id,
                        reason: None,
                    }),
                );
            }
            Op::Stop(pick) => {
                let id = self.pick(*pick);
                self.run(
                    &chat(),
                    Request::StopProcessing(StopProcessing {
                        interaction_id: id,
                        reason: None,
                    }),
                );
            }
            Op::Advance(ms) => {
                self.f.now = now.plus_millis(i64::from(*ms));
                self.f.out = Output::default();
                let at = self.f.now;
                self.f.eng.tick(at, &mut self.f.out);
            }
        }
        self.observe();
        self.f.eng.check_invariants(self.f.now);
        self.check_stored();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_agent_sequences_keep_every_invariant(ops in proptest::collection::vec(op(), 1..120)) {
        let mut run = Run {
            f: Fixture::with_process(AGENTS_PROCESS),
            ids: Vec::new(),
            conn: HashMap::new(),
            next_conn: 100,
            declined: HashMap::new(),
            stored: HashMap::new(),
        };
        for (i, name) in AGENTS.iter().enumerate() {
            run.conn.insert(name, 200 + i as u64);
        }
        for op in &ops {
            run.step(op);
        }
    }
}
