//! Agents, capacity, delivery, timeouts and collaboration, with time passed explicitly (no
//! sleeping: timers fire when the test calls `tick` at a later time).

use ixn_model::{ClientKind, InteractionState as S, Name, Timestamp};
use ixn_protocol::{
    Accept, AgentLogin, ErrorCode, InviteOutcome, LeaveInteraction, Pull, Reject, Request, RouteInteraction,
    RouteTarget, SelectionPolicy, ServerMessage, StopProcessing, Transfer,
};

use super::clients::*;
use super::*;

pub(crate) const AGENTS_PROCESS: &str = r#"
[settings]
delivering-timeout = 30
handling-timeout = 60
routing-timeout = 20
agent-grace-period = 15

[[media-types]]
name = "chat"

[[media-types]]
name = "email"
handling-timeout = 5

[[media-types]]
name = "voice"

[[queues]]
name = "inbound"

[[queues]]
name = "orchestration_system"

[[views]]
name = "all"
queue = "inbound"
order = "priority desc, submitted_at asc"
freeze-interval = 10

[[views]]
name = "closed"
queue = "inbound"
enabled = false

[[submitters]]
name = "s1"
view = "all"
strategy = "main"
max-in-flight = 4

[[submitters]]
name = "s2"
view = "all"
strategy = "off"
enabled = false

[[submitters]]
name = "s3"
view = "closed"
strategy = "novi"

[[capacity-rules]]
name = "default"
alternatives = [{ email = 1 }, { chat = 2 }, { voice = 1 }]

[[capacity-rules]]
name = "solo"
media = { chat = 1, email = 1 }

[[agent-groups]]
name = "sales"

[[agents]]
id = "ann"
groups = ["sales"]
skills = { english = 7, sales = 3 }

[[agents]]
id = "bob"
skills = { english = 4 }
capacity-rule = "solo"
"#;

pub(crate) fn desk(id: u64, agent: &str) -> ClientCtx {
    ClientCtx {
        client_id: id,
        application: Name::new("desktop"),
        kind: ClientKind::AgentDesktop,
        tenant: Name::new("default"),
        agent: Some(Name::new(agent)),
    }
}

pub(crate) fn login(media: &[&str]) -> Request {
    Request::AgentLogin(AgentLogin::ready_for(media.iter().copied()))
}

pub(crate) fn route(id: &str, target: RouteTarget) -> Request {
    Request::RouteInteraction(RouteInteraction {
        interaction_id: id.to_owned(),
        target,
        added_properties: Default::default(),
    })
}

/// A target naming one agent.
pub(crate) fn to_agent(agent: &str) -> RouteTarget {
    RouteTarget {
        agents: vec![agent.to_owned()],
        ..Default::default()
    }
}

pub(crate) fn accept(id: &str) -> Request {
    Request::Accept(Accept {
        interaction_id: id.to_owned(),
    })
}

pub(crate) fn reject(id: &str) -> Request {
    Request::Reject(Reject {
        interaction_id: id.to_owned(),
        reason: None,
    })
}

fn assigned(m: &ServerMessage) -> String {
    match m {
        ServerMessage::EventAck {
            interaction: Some(ix),
            ..
        } => ix.assigned_to.clone().unwrap_or_default(),
        other => panic!("expected an EventAck with the interaction, got {other:?}"),
    }
}

impl Fixture {
    fn agents() -> Fixture {
        Fixture::with_process(AGENTS_PROCESS)
    }

    fn advance(&mut self, ms: i64) {
        self.now = self.now.plus_millis(ms);
        self.out = Output::default();
        self.eng.tick(self.now, &mut self.out);
        self.eng.check_invariants(self.now);
    }

    fn submit_media(&mut self, media: &str) -> String {
        self.submit_with(&chat(), Some("inbound"), |s| s.media_type = media.to_owned())
    }

    /// Submits and pulls one interaction through strategy `main` for the router.
    fn routing(&mut self, media: &str) -> String {
        let id = self.submit_media(media);
        let pulled = pulled_ids(&self.ok(&router(), Request::Pull(Pull::for_strategy("main", 1, None))));
        assert_eq!(pulled, std::slice::from_ref(&id));
        id
    }

    fn invited(&self) -> Vec<(Notify, String)> {
        self.out
            .notifications
            .iter()
            .filter_map(|(to, m)| match m {
                ServerMessage::EventInvite { interaction, .. } => Some((to.clone(), interaction.id.clone())),
                _ => None,
            })
            .collect()
    }

    fn outcomes(&self) -> Vec<(String, InviteOutcome)> {
        self.out
            .notifications
            .iter()
            .filter_map(|(_, m)| match m {
                ServerMessage::EventInviteOutcome { agent, outcome, .. } => Some((agent.clone(), *outcome)),
                _ => None,
            })
            .collect()
    }

    fn load(&mut self, agent: &str, media: &str) -> (u32, u32) {
        let views = self.eng.agent_views(Some("default"));
        let a = views.iter().find(|a| a.agent_id == agent).expect("logged in");
        let m = a.media.iter().find(|m| m.media_type == media).expect("media");
        (m.load, m.free)
    }
}

#[test]
fn login_states_and_errors() {
    let mut f = Fixture::agents();
    let ann = desk(41, "ann");
    assert_eq!(
        f.fails(
            &ann,
            Request::DoNotDisturbOn(ixn_protocol::DoNotDisturbOn { reason: None })
        )
        .code,
        ErrorCode::AgentNotLoggedIn
    );
    assert_eq!(f.fails(&ann, login(&["fax"])).code, ErrorCode::UnknownMediaType);
    let m = f.ok(&ann, login(&["chat", "email"]));
    let ServerMessage::EventAgentStatus { agent, .. } = m else {
        panic!("{m:?}")
    };
    assert_eq!(agent.capacity_rule, "default");
    assert_eq!(agent.media.len(), 2);
    assert!(agent.media.iter().all(|m| m.ready));
    let kinds = f.event_kinds();
    assert_eq!(kinds[0], ReportingEventKind::AgentLogin);
    assert_eq!(f.load("ann", "chat"), (0, 2));
    f.ok(
        &ann,
        Request::NotReadyForMedia(ixn_protocol::NotReadyForMedia {
            media_type: "chat".into(),
            reason: None,
        }),
    );
    assert_eq!(
        f.fails(
            &ann,
            Request::NotReadyForMedia(ixn_protocol::NotReadyForMedia {
                media_type: "voice".into(),
                reason: None
            })
        )
        .code,
        ErrorCode::MediaNotLoggedIn
    );
    // A second connection is allowed by default; bob's rule comes from his own definition.
    f.ok(&desk(42, "ann"), login(&["chat"]));
    let m = f.ok(&desk(43, "bob"), login(&["chat", "email"]));
    let ServerMessage::EventAgentStatus { agent, .. } = m else {
        panic!("{m:?}")
    };
    assert_eq!(agent.capacity_rule, "solo");
    f.ok(
        &ann,
        Request::AgentLogout(ixn_protocol::AgentLogout { reason: None }),
    );
    assert_eq!(f.eng.agent_views(None).len(), 1);
}

#[test]
fn routing_respects_capacity_and_policy() {
    let mut f = Fixture::agents();
    f.ok(&desk(41, "ann"), login(&["chat", "email"]));
    f.advance(1000);
    f.ok(&desk(42, "bob"), login(&["chat", "email"]));
    // Longest idle: ann logged in first.
    let a = f.routing("chat");
    let m = f.ok(&router(), route(&a, RouteTarget::default()));
    assert_eq!(assigned(&m), "ann");
    assert_eq!(f.invited(), [(holder("default", "ann"), a.clone())]);
    assert_eq!(f.state(&a), Some(S::Delivering));
    assert_eq!(f.load("ann", "chat"), (1, 1));
    // ann is busy now, bob is idle: bob next.
    let b = f.routing("chat");
    assert_eq!(
        assigned(&f.ok(&router(), route(&b, RouteTarget::default()))),
        "bob"
    );
    // bob's rule allows one chat: the third chat goes to ann (up to two chats).
    let c = f.routing("chat");
    assert_eq!(
        assigned(&f.ok(&router(), route(&c, RouteTarget::default()))),
        "ann"
    );
    // Nobody can take an e-mail: ann has chats (one e-mail OR two chats), bob is... free for
    // e-mail under "solo" (chat 1 + email 1 at once).
    let d = f.routing("email");
    assert_eq!(
        assigned(&f.ok(&router(), route(&d, RouteTarget::default()))),
        "bob"
    );
    let e = f.submit_media("email");
    let pulled = pulled_ids(&f.ok(&router(), Request::Pull(Pull::for_strategy("main", 1, None))));
    assert!(
        pulled.is_empty(),
        "max-in-flight 4 of submitter s1 reached: {pulled:?}"
    );
    let err = f.fails(&router(), route(&d, RouteTarget::default()));
    assert_eq!(err.code, ErrorCode::InvalidState);
    // Room under max-in-flight is new work for a pull held because of the limit: the stop
    // changes the work epoch (held pulls are retried on it), and the pull now takes the e-mail.
    f.ok(
        &desk(41, "ann"),
        Request::Accept(Accept {
            interaction_id: a.clone(),
        }),
    );
    let before = f.eng.work_epoch();
    f.ok(
        &desk(41, "ann"),
        Request::StopProcessing(StopProcessing {
            interaction_id: a,
            reason: None,
        }),
    );
    assert!(
        f.eng.work_epoch() > before,
        "a stop freeing max-in-flight room wakes held pulls"
    );
    let pulled = pulled_ids(&f.ok(&router(), Request::Pull(Pull::for_strategy("main", 1, None))));
    assert_eq!(pulled, [e]);
    f.eng.check_invariants(f.now);
}

#[test]
fn targets_skills_and_best_skill() {
    let mut f = Fixture::agents();
    f.ok(&desk(41, "ann"), login(&["chat"]));
    f.ok(&desk(42, "bob"), login(&["chat"]));
    let a = f.routing("chat");
    let by_skill = RouteTarget {
        skills: Some("english >= 5".into()),
        ..Default::default()
    };
    assert_eq!(assigned(&f.ok(&router(), route(&a, by_skill))), "ann");
    let b = f.routing("chat");
    let group = RouteTarget {
        groups: vec!["sales".into()],
        ..Default::default()
    };
    assert_eq!(assigned(&f.ok(&router(), route(&b, group.clone()))), "ann");
    let c = f.routing("chat");
    // ann is at capacity (two chats) and is the only one in the group.
    assert_eq!(
        f.fails(&router(), route(&c, group)).code,
        ErrorCode::NoAgentAvailable
    );
    let best = RouteTarget {
        skills: Some("english".into()),
        policy: SelectionPolicy::BestSkill,
        ..Default::default()
    };
    assert_eq!(assigned(&f.ok(&router(), route(&c, best))), "bob");
    let bad = RouteTarget {
        skills: Some("english >=".into()),
        ..Default::default()
    };
    let d = f.routing("chat");
    assert_eq!(f.fails(&router(), route(&d, bad)).code, ErrorCode::InvalidValue);
}

#[test]
fn accept_reject_and_never_reoffer() {
    let mut f = Fixture::agents();
    f.ok(&desk(41, "ann"), login(&["chat"]));
    f.ok(&desk(42, "bob"), login(&["chat"]));
    let a = f.routing("chat");
    assert_eq!(
        assigned(&f.ok(&router(), route(&a, RouteTarget::default()))),
        "ann"
    );
    assert_eq!(f.fails(&desk(42, "bob"), accept(&a)).code, ErrorCode::NoInvite);
    f.ok(&desk(41, "ann"), reject(&a));
    assert_eq!(f.outcomes(), [("ann".to_owned(), InviteOutcome::Rejected)]);
    assert_eq!(f.state(&a), Some(S::Queued));
    assert_eq!(f.load("ann", "chat"), (0, 2));
    // Frozen for the view's freeze-interval (10 s), then pullable again.
    assert!(pulled_ids(&f.ok(&router(), Request::Pull(Pull::for_strategy("main", 5, None)))).is_empty());
    f.advance(10_000);
    assert_eq!(
        pulled_ids(&f.ok(&router(), Request::Pull(Pull::for_strategy("main", 5, None)))),
        std::slice::from_ref(&a)
    );
    // ann rejected it: never offered it again, even by name.
    let ann_only = to_agent("ann");
    assert_eq!(
        f.fails(&router(), route(&a, ann_only)).code,
        ErrorCode::NoAgentAvailable
    );
    assert_eq!(
        assigned(&f.ok(&router(), route(&a, RouteTarget::default()))),
        "bob"
    );
    f.ok(&desk(42, "bob"), accept(&a));
    assert_eq!(f.outcomes(), [("bob".to_owned(), InviteOutcome::Accepted)]);
    assert_eq!(f.state(&a), Some(S::Handling));
    assert_eq!(
        f.load("bob", "chat"),
        (1, 0),
        "bob's rule allows one chat at a time"
    );
    f.ok(
        &desk(42, "bob"),
        Request::StopProcessing(StopProcessing {
            interaction_id: a.clone(),
            reason: None,
        }),
    );
    assert_eq!(f.load("bob", "chat"), (0, 1));
    let available: Vec<_> = f
        .out
        .notifications
        .iter()
        .filter(|(to, m)| {
            matches!(to, Notify::Routers { .. }) && matches!(m, ServerMessage::EventAgentAvailable { .. })
        })
        .collect();
    assert_eq!(available.len(), 1, "routers hear that bob is free again");
}

#[test]
fn timeouts_fire_on_time() {
    let mut f = Fixture::agents();
    f.ok(&desk(41, "ann"), login(&["chat", "email"]));
    let a = f.routing("chat");
    f.ok(&router(), route(&a, RouteTarget::default()));
    // delivering-timeout 30 s: not at 29.999 s, at 30 s.
    f.advance(29_999);
    assert_eq!(f.state(&a), Some(S::Delivering));
    f.advance(1);
    assert_eq!(f.state(&a), Some(S::Queued));
    assert_eq!(f.outcomes(), [("ann".to_owned(), InviteOutcome::TimedOut)]);
    assert!(f.out.notifications.iter().any(|(to, m)| *to == holder("default", "ann")
        && matches!(m, ServerMessage::EventRevoked { .. })));
    // handling-timeout: the media type's 5 minutes for e-mail, reset by a request.
    let e = f.routing("email");
    f.ok(&router(), route(&e, RouteTarget::default()));
    f.ok(&desk(41, "ann"), accept(&e));
    f.advance(4 * 60_000);
    f.ok(
        &desk(41, "ann"),
        Request::ChangeProperties(ixn_protocol::ChangeProperties {
            interaction_id: e.clone(),
            changed_properties: Default::default(),
            added_properties: user_data(&[("Note", "still here")]),
            deleted_properties: vec![],
        }),
    );
    f.advance(4 * 60_000);
    assert_eq!(
        f.state(&e),
        Some(S::Handling),
        "the request restarted the handling timer"
    );
    f.advance(60_000);
    assert_eq!(f.state(&e), Some(S::Queued));
    // routing-timeout 20 minutes.
    f.advance(10_000);
    let r = pulled_ids(&f.ok(&router(), Request::Pull(Pull::for_strategy("main", 5, None))));
    assert_eq!(r.len(), 2);
    f.advance(20 * 60_000);
    assert!(r.iter().all(|id| f.state(id) == Some(S::Queued)));
}

#[test]
fn handling_timeout_from_user_data() {
    let mut f = Fixture::agents();
    f.ok(&desk(41, "ann"), login(&["chat"]));
    let id = f.submit_with(&chat(), Some("inbound"), |s| {
        s.user_data = Some(user_data(&[(crate::HANDLING_TIMEOUT_KEY, "2")]));
    });
    pulled_ids(&f.ok(&router(), Request::Pull(Pull::for_strategy("main", 1, None))));
    f.ok(&router(), route(&id, RouteTarget::default()));
    f.ok(&desk(41, "ann"), accept(&id));
    f.advance(2 * 60_000 - 1);
    assert_eq!(f.state(&id), Some(S::Handling));
    f.advance(1);
    assert_eq!(f.state(&id), Some(S::Queued));
}

#[test]
fn grace_period_keeps_the_login_then_logs_out() {
    let mut f = Fixture::agents();
    f.ok(&desk(41, "ann"), login(&["chat"]));
    let a = f.routing("chat");
    f.ok(&router(), route(&a, RouteTarget::default()));
    let mut out = Output::default();
    f.eng.client_gone(41, f.now, &mut out);
    assert!(!f.eng.agent_views(None)[0].connected);
    // Disconnected agents get no new offers.
    let b = f.routing("chat");
    assert_eq!(
        f.fails(&router(), route(&b, RouteTarget::default())).code,
        ErrorCode::NoAgentAvailable
    );
    // A reconnect within the grace period resumes.
    f.advance(10_000);
    f.ok(&desk(44, "ann"), login(&["chat"]));
    assert!(f.eng.agent_views(None)[0].connected);
    assert_eq!(f.state(&a), Some(S::Delivering));
    // Gone again past the grace period: logged out, the offer revoked.
    f.eng.client_gone(44, f.now, &mut out);
    f.advance(15_000);
    assert!(f.eng.agent_views(None).is_empty());
    assert_eq!(f.state(&a), Some(S::Queued));
    assert_eq!(f.outcomes(), [("ann".to_owned(), InviteOutcome::Revoked)]);
}

#[test]
fn strategy_pull_errors() {
    let mut f = Fixture::agents();
    let pull = |s: &str| Request::Pull(Pull::for_strategy(s, 1, None));
    assert_eq!(
        f.fails(&router(), pull("nope")).code,
        ErrorCode::StrategyDoesNotExist
    );
    assert_eq!(
        f.fails(&router(), pull("off")).code,
        ErrorCode::StrategyIsDisabled
    );
    assert_eq!(
        f.fails(&router(), pull("novi")).code,
        ErrorCode::StrategyHasNoViews
    );
    assert_eq!(ErrorCode::StrategyHasNoViews.code(), 108);
}

#[test]
fn transfer_conference_and_leave() {
    let mut f = Fixture::agents();
    f.ok(&desk(41, "ann"), login(&["chat"]));
    f.ok(&desk(42, "bob"), login(&["chat"]));
    let a = f.routing("chat");
    f.ok(&router(), route(&a, to_agent("ann")));
    f.ok(&desk(41, "ann"), accept(&a));
    // Conference bob in, then ann leaves: bob holds it.
    f.ok(
        &desk(41, "ann"),
        Request::Conference(ixn_protocol::Conference {
            interaction_id: a.clone(),
            agent: Some("bob".into()),
            place: None,
            reason: None,
        }),
    );
    assert_eq!(f.invited(), [(holder("default", "bob"), a.clone())]);
    assert_eq!(
        f.load("bob", "chat"),
        (1, 0),
        "the invite reserves bob's capacity"
    );
    f.ok(&desk(42, "bob"), accept(&a));
    f.ok(
        &desk(41, "ann"),
        Request::LeaveInteraction(LeaveInteraction {
            interaction_id: a.clone(),
            reason: None,
        }),
    );
    assert_eq!(f.get(&a).and_then(|v| v.assigned_to), Some("bob".into()));
    assert_eq!(f.load("ann", "chat"), (0, 2));
    // Transfer to ann: bob keeps it until she accepts.
    f.ok(
        &desk(42, "bob"),
        Request::Transfer(Transfer {
            interaction_id: a.clone(),
            agent: Some("ann".into()),
            place: None,
            queue: None,
            reason: None,
        }),
    );
    f.ok(&desk(41, "ann"), accept(&a));
    assert_eq!(f.get(&a).and_then(|v| v.assigned_to), Some("ann".into()));
    assert_eq!(f.load("bob", "chat"), (0, 1));
    // The last party leaves: back to its queue.
    f.ok(
        &desk(41, "ann"),
        Request::LeaveInteraction(LeaveInteraction {
            interaction_id: a.clone(),
            reason: None,
        }),
    );
    assert_eq!(f.state(&a), Some(S::Queued));
    f.eng.check_invariants(f.now);
}

#[test]
fn router_submit_without_queue_is_parked() {
    let mut f = Fixture::agents();
    let id = f.submit_with(&router(), None, |_| {});
    assert_eq!(
        f.get(&id).and_then(|v| v.queue),
        Some("orchestration_system".into())
    );
    let _ = Timestamp::from_millis(0);
}

#[test]
fn a_router_gone_returns_what_it_held_and_routes_name_the_agent() {
    let mut f = Fixture::agents();
    f.ok(&desk(41, "ann"), login(&["chat"]));
    let a = f.routing("chat");
    let b = f.routing("chat");
    f.ok(&router(), route(&a, RouteTarget::default()));
    let ud = f.get(&a).map(|v| v.user_data).unwrap_or_default();
    assert_eq!(
        ud.get("RTargetAgentSelected"),
        Some(ixn_model::ValueRef::Str("ann"))
    );
    let mut out = Output::default();
    f.eng.router_gone("default", "router-1", f.now, &mut out);
    assert_eq!(f.state(&b), Some(S::Queued), "the routing interaction returned");
    assert_eq!(f.state(&a), Some(S::Delivering), "the offer to ann stands");
    f.eng.check_invariants(f.now);
}

/// Taking into routing and offering to an agent are released once what they build on is
/// durable, without waiting for their own batch; every other change waits for its batch.
/// Rows whose only change since the last batch was volatile are not written again, and a row
/// changed durably and then volatilely in one batch is written as it was before.
#[test]
fn routing_and_offers_wait_only_for_what_they_build_on() {
    let mut f = Fixture::agents();
    f.ok(&desk(41, "ann"), login(&["chat"]));
    assert_eq!(f.eng.release_after(), None, "a login waits for its batch");
    let first = f.batch().number;

    // Submitted and pulled in one batch: the pull answer waits for the submit's batch.
    let a = f.submit_media("chat");
    assert_eq!(f.eng.release_after(), None);
    let pulled = pulled_ids(&f.ok(&router(), Request::Pull(Pull::for_strategy("main", 1, None))));
    assert_eq!(pulled, std::slice::from_ref(&a));
    assert_eq!(f.eng.release_after(), Some(first + 1));
    let batch = f.batch();
    assert_eq!(batch.number, first + 1);
    assert_eq!(batch.interactions.len(), 1, "the submitted row is written");
    assert_eq!(
        batch.interactions[0].state,
        S::Queued,
        "without the volatile pull on top"
    );

    // The route builds on that batch only, and its row is not written again.
    f.ok(&router(), route(&a, RouteTarget::default()));
    assert_eq!(f.eng.release_after(), Some(first + 1));
    assert_eq!(f.invited().len(), 1);
    let batch = f.batch();
    assert!(
        batch.interactions.is_empty(),
        "volatile change written: {batch:?}"
    );
    assert!(!batch.events.is_empty(), "its reporting events are still written");

    // The accept is durable: it waits for its own batch, which writes the whole row.
    f.ok(&desk(41, "ann"), accept(&a));
    assert_eq!(f.eng.release_after(), None);
    let batch = f.batch();
    assert_eq!(batch.interactions.len(), 1);
    assert_eq!(batch.interactions[0].state, S::Handling);

    // A change of properties before the route is waited for by the route's answer.
    let b = f.routing("chat");
    let open = f.batch().number + 1;
    f.ok(
        &router(),
        Request::ChangeProperties(ixn_protocol::ChangeProperties {
            interaction_id: b.clone(),
            changed_properties: Default::default(),
            added_properties: user_data(&[("Segment", "gold")]),
            deleted_properties: vec![],
        }),
    );
    assert_eq!(f.eng.release_after(), None);
    f.ok(&router(), route(&b, RouteTarget::default()));
    assert_eq!(f.eng.release_after(), Some(open));
    let batch = f.batch();
    assert_eq!(batch.number, open);
    assert_eq!(batch.interactions.len(), 1, "the durable change writes the row");
    let row = &batch.interactions[0];
    assert_eq!(row.state, S::Routing, "as it was before the offer");
    assert_eq!(row.assigned_to.as_deref(), Some("router-1"));
    assert!(row.user_data.get("Segment").is_some(), "with the durable change");

    // Submitted, taken, offered and accepted in one batch: the accept is durable, the row is
    // written as it is now.
    let d = f.submit_media("chat");
    f.ok(&desk(42, "bob"), login(&["chat"]));
    pulled_ids(&f.ok(&router(), Request::Pull(Pull::for_strategy("main", 1, None))));
    f.ok(&router(), route(&d, to_agent("bob")));
    f.ok(&desk(42, "bob"), accept(&d));
    let batch = f.batch();
    let row = batch
        .interactions
        .iter()
        .find(|r| r.id.as_str() == d)
        .expect("written");
    assert_eq!(row.state, S::Handling);

    // A failed route is released with the batch being collected.
    let c = f.routing("chat");
    let err = f.req(&router(), route(&c, RouteTarget::default()));
    assert!(err.is_err(), "ann is full: {err:?}");
    assert_eq!(f.eng.release_after(), None);
}
