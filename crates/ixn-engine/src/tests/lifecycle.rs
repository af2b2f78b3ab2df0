//! Submit, pull, place in queue / workbin, stop: states, reporting events, notifications, and
//! errors that change nothing.

use ixn_model::{IdGenerator, InteractionState as S};
use ixn_protocol::{
    ErrorCode, PlaceInQueue, PlaceInWorkbin, Pull, ReportingEventKind as K, Request, StopProcessing,
    WorkbinTarget,
};

use super::clients::*;
use super::*;

fn place_in_queue(id: &str, queue: &str) -> Request {
    Request::PlaceInQueue(PlaceInQueue {
        interaction_id: id.into(),
        queue: queue.into(),
        added_properties: UserData::new(),
    })
}

fn place_in_workbin(id: &str, name: &str, owner: Option<&str>) -> Request {
    Request::PlaceInWorkbin(PlaceInWorkbin {
        interaction_id: id.into(),
        workbin: WorkbinTarget {
            name: name.into(),
            owner: owner.map(str::to_owned),
        },
    })
}

pub(crate) fn stop(id: &str) -> Request {
    Request::StopProcessing(StopProcessing {
        interaction_id: id.into(),
        reason: None,
    })
}

fn pull_ids(ids: &[&str]) -> Request {
    Request::Pull(Pull {
        view: None,
        count: 1,
        interaction_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        strategy: None,
        max_wait_ms: None,
    })
}

#[test]
fn submit_by_media_server_queues_it() {
    let mut f = Fixture::new();
    let a = f.submit(&chat(), "inbound");
    let b = f.submit(&chat(), "inbound");
    let batch = f.batch();
    assert_eq!(
        kinds_of(&batch.events),
        [
            (K::InteractionSubmitted, a.clone()),
            (K::PlacedInQueue, a.clone()),
            (K::InteractionSubmitted, b.clone()),
            (K::PlacedInQueue, b.clone())
        ]
    );
    let seqs: Vec<u64> = batch.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(batch.interactions.len(), 2);
    assert_eq!(batch.meta[0], ("next_submit_seq".to_owned(), "3".to_owned()));
    // The id clock is persisted with every submit so a restart never reissues an id.
    assert_eq!(batch.meta[1].0, "id_clock");
    assert!(
        batch.meta[1]
            .1
            .parse::<i64>()
            .is_ok_and(|ms| ms >= f.now.millis())
    );
    let ix = f.get(&a).expect("live");
    assert_eq!(
        (ix.state, ix.queue.as_deref(), ix.assigned_to.as_deref()),
        (S::Queued, Some("inbound"), None)
    );
    assert_eq!(
        (ix.submit_seq, ix.submitted_by.as_str(), ix.placed_in_queue_at),
        (1, "chat-server", Some(T0))
    );
    assert_eq!(f.queue_counts("default", "inbound"), (2, 0));
    // Numbering continues in the next batch.
    f.submit(&chat(), "parking");
    assert_eq!(f.batch().events.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 6]);
    f.eng.check_invariants(f.now);
}

#[test]
fn submit_by_agent_is_handled_by_that_agent() {
    let mut f = Fixture::new();
    let a = f.submit_with(&ann(), Some("inbound"), |_| {});
    let b = f.submit_with(&ann(), None, |_| {});
    assert_eq!(
        f.event_kinds(),
        [
            K::InteractionSubmitted,
            K::PartyAdded,
            K::InteractionSubmitted,
            K::PartyAdded
        ]
    );
    for id in [&a, &b] {
        let ix = f.get(id).expect("live");
        assert_eq!(
            (ix.state, ix.assigned_to.as_deref(), ix.assigned_at),
            (S::Handling, Some("ann"), Some(T0))
        );
    }
    // Counted as in progress in the queue it names, never as waiting; views never see it.
    assert_eq!(f.queue_counts("default", "inbound"), (0, 1));
    assert!(f.pull_view(&router(), "all", 10).is_empty());
    // An agent submitting into a workbin parks it there instead.
    let c = f.submit_with(&ann(), None, |s| {
        s.workbin = Some(WorkbinTarget {
            name: "drafts".into(),
            owner: None,
        })
    });
    let ix = f.get(&c).expect("live");
    assert_eq!(
        (ix.state, ix.workbin.as_deref(), ix.workbin_owner.as_deref()),
        (S::Queued, Some("drafts"), Some("ann"))
    );
    assert_eq!(f.event_kinds(), [K::InteractionSubmitted, K::PlacedInWorkbin]);
    f.eng.check_invariants(f.now);
}

#[test]
fn bad_submits_change_nothing() {
    let mut f = Fixture::new();
    let existing = f.submit_with(&chat(), Some("inbound"), |s| {
        s.interaction_id = Some("chat-1".into())
    });
    assert_eq!(existing, "chat-1");
    type Edit = fn(&mut Submit);
    let cases: &[(&str, ClientCtx, Edit, ErrorCode)] = &[
        (
            "unknown queue",
            chat(),
            |s| s.queue = Some("nope".into()),
            ErrorCode::UnknownQueue,
        ),
        (
            "other tenant's queue",
            acme_chat(),
            |s| s.queue = Some("parking".into()),
            ErrorCode::UnknownQueue,
        ),
        (
            "unknown media type",
            chat(),
            |s| s.media_type = "fax".into(),
            ErrorCode::UnknownMediaType,
        ),
        (
            "duplicate id",
            chat(),
            |s| s.interaction_id = Some("chat-1".into()),
            ErrorCode::DuplicateInteraction,
        ),
        (
            "invalid id",
            chat(),
            |s| s.interaction_id = Some("has space".into()),
            ErrorCode::InvalidValue,
        ),
        ("no queue", chat(), |s| s.queue = None, ErrorCode::InvalidField),
        (
            "unknown workbin",
            chat(),
            |s| {
                s.workbin = Some(WorkbinTarget {
                    name: "nope".into(),
                    owner: None,
                })
            },
            ErrorCode::UnknownWorkbin,
        ),
        (
            "group workbin without owner",
            ann(),
            |s| {
                s.workbin = Some(WorkbinTarget {
                    name: "team".into(),
                    owner: None,
                })
            },
            ErrorCode::InvalidField,
        ),
        (
            "invalid parent id",
            chat(),
            |s| s.parent_id = Some("a b".into()),
            ErrorCode::InvalidValue,
        ),
    ];
    for (what, client, edit, expected) in cases {
        let mut s = submit_req(Some("inbound"));
        edit(&mut s);
        let err = f.fails(client, Request::Submit(s));
        assert_eq!(err.code, *expected, "{what}: {err}");
        assert_eq!(f.eng.live_count(), 1, "{what}");
    }
    // Nothing was consumed by the failures: the next submit continues both sequences.
    let b = f.submit(&chat(), "inbound");
    assert_eq!(f.get(&b).map(|v| v.submit_seq), Some(2));
    assert_eq!(f.batch().events.first().map(|e| e.seq), Some(3));
}

/// (name, ms after T0, priority, Segment, Region)
const ORDER_CASES: &[(&str, i64, i64, &str, &str)] = &[
    ("a", 0, 1, "gold", "eu"),
    ("b", 1, 5, "silver", "us"),
    ("c", 2, 5, "gold", "eu"),
    ("d", 3, 0, "gold", ""),
    ("e", 4, 5, "", "eu"),
    ("f", 5, 1, "gold", ""),
    ("g", 5, 1, "gold", ""),
];

/// Submits [`ORDER_CASES`] into `inbound` with their names as ids.
fn order_fixture() -> Fixture {
    let mut f = Fixture::new();
    for (name, at, priority, segment, region) in ORDER_CASES {
        f.now = T0.plus_millis(*at);
        let pairs: Vec<(&str, &str)> = [("Segment", *segment), ("Region", *region)]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        f.submit_with(&chat(), Some("inbound"), |s| {
            s.interaction_id = Some((*name).into());
            s.priority = Some(*priority);
            s.user_data = Some(user_data(&pairs));
        });
    }
    f
}

#[test]
fn pulls_follow_the_view_order_and_condition() {
    let cases: &[(&str, u32, &[&str])] = &[
        // priority desc, submitted_at asc, then submission order (f before g).
        ("all", 100, &["b", "c", "e", "a", "f", "g", "d"]),
        ("all", 2, &["b", "c"]),
        // custom property `segment` = 'gold'.
        ("gold", 100, &["c", "a", "f", "g", "d"]),
        // user-data key Region = 'eu', submission order, limit 2.
        ("eu", 100, &["a", "c"]),
        // Nobody has waited five seconds yet.
        ("waited", 100, &[]),
    ];
    for (view, count, expected) in cases {
        let mut f = order_fixture();
        let pulled = f.pull_view(&router(), view, *count);
        assert_eq!(pulled, *expected, "view {view}, count {count}");
        for id in &pulled {
            let ix = f.get(id).expect("live");
            assert_eq!(
                (ix.state, ix.assigned_to.as_deref()),
                (S::Routing, Some("router-1")),
                "{id}"
            );
        }
        f.eng.check_invariants(f.now);
    }
}

#[test]
fn successive_pulls_continue_where_the_last_stopped() {
    let mut f = order_fixture();
    let mut all = Vec::new();
    for _ in 0..4 {
        all.extend(f.pull_view(&ann(), "all", 2));
    }
    assert_eq!(all, ["b", "c", "e", "a", "f", "g", "d"]);
    assert!(
        all.iter().all(|id| f.state(id) == Some(S::Handling)),
        "an agent's pull hands them to the agent"
    );
    assert_eq!(f.queue_counts("default", "inbound"), (0, 7));
}

#[test]
fn time_dependent_views_select_at_pull_time() {
    let mut f = order_fixture();
    f.now = T0.plus_millis(5_000);
    assert_eq!(f.pull_view(&router(), "waited", 100), ["a"]);
    f.now = T0.plus_millis(5_005);
    assert_eq!(
        f.pull_view(&router(), "waited", 100),
        ["b", "c", "d", "e", "f", "g"]
    );
}

#[test]
fn a_view_limit_caps_what_is_in_flight() {
    let mut f = order_fixture();
    // eu selects a, c, e; limit 2.
    assert_eq!(f.pull_view(&router(), "eu", 1), ["a"]);
    assert_eq!(f.pull_view(&router(), "eu", 5), ["c"]);
    assert!(f.pull_view(&router(), "eu", 5).is_empty(), "limit reached");
    // Pulling the last one through another view does not count against eu.
    assert_eq!(f.pull_view(&router(), "all", 1), ["b"]);
    // Stopping one frees a place; putting one back in the queue frees another.
    f.ok(&router(), stop("a"));
    assert_eq!(f.pull_view(&router(), "eu", 5), ["e"]);
    f.ok(&router(), place_in_queue("c", "inbound"));
    assert_eq!(
        f.pull_view(&router(), "eu", 5),
        ["c"],
        "c is back and selectable again"
    );
    assert!(f.pull_view(&router(), "eu", 5).is_empty());
    f.eng.check_invariants(f.now);
}

#[test]
fn locked_and_held_interactions_are_not_pulled() {
    use ixn_protocol::{Hold, LockInteraction, Resume, UnlockInteraction};
    let mut f = order_fixture();
    f.ok(
        &ann(),
        Request::LockInteraction(LockInteraction {
            interaction_id: "b".into(),
            reason: None,
        }),
    );
    f.ok(
        &chat(),
        Request::Hold(Hold {
            interaction_id: "c".into(),
            reason: None,
        }),
    );
    assert_eq!(f.pull_view(&router(), "all", 3), ["e", "a", "f"]);
    // By id too, a locked one is refused.
    assert_eq!(
        f.fails(&ann(), pull_ids(&["b"])).code,
        ErrorCode::InteractionLocked
    );
    f.ok(
        &ann(),
        Request::UnlockInteraction(UnlockInteraction {
            interaction_id: "b".into(),
        }),
    );
    f.ok(
        &chat(),
        Request::Resume(Resume {
            interaction_id: "c".into(),
            reason: None,
        }),
    );
    assert_eq!(f.pull_view(&router(), "all", 10), ["b", "c", "g", "d"]);
    // Held interactions stay counted where they are.
    f.eng.check_invariants(f.now);
}

#[test]
fn scheduled_interactions_become_pullable_at_their_time() {
    let mut f = Fixture::new();
    let at = T0.plus_millis(10_000);
    let later = f.submit_with(&chat(), Some("inbound"), |s| s.scheduled_at = Some(at));
    let past = f.submit_with(&chat(), Some("inbound"), |s| {
        s.scheduled_at = Some(T0.plus_millis(-1))
    });
    assert_eq!(f.eng.next_deadline(), Some(at));
    assert_eq!(
        f.queue_counts("default", "inbound"),
        (2, 0),
        "a scheduled interaction is waiting in its queue"
    );
    assert_eq!(f.pull_view(&router(), "all", 10), [past]);
    for (tick_at, pulled) in [(at.plus_millis(-1), 0), (at, 1)] {
        f.now = tick_at;
        f.eng.tick(tick_at, &mut f.out);
        f.eng.check_invariants(f.now);
        assert_eq!(
            f.pull_view(&router(), "all", 10).len(),
            pulled,
            "after a tick at {tick_at:?}"
        );
    }
    assert_eq!(f.state(&later), Some(S::Routing));
    // Only the routers' routing-timeouts remain scheduled.
    let routing_timeout = i64::from(f.eng.settings().routing_timeout_min) * 60_000;
    assert!(
        f.eng
            .next_deadline()
            .is_some_and(|d| d > at && d <= f.now.plus_millis(routing_timeout))
    );
}

#[test]
fn pull_by_ids_takes_from_a_workbin() {
    let mut f = Fixture::new();
    let a = f.submit_with(&ann(), None, |_| {});
    f.ok(&ann(), place_in_workbin(&a, "team", Some("sales")));
    f.batch();
    let content = |f: &mut Fixture| {
        let r = ixn_protocol::GetWorkbinContent {
            workbin: WorkbinTarget {
                name: "team".into(),
                owner: Some("sales".into()),
            },
        };
        listed_ids(&f.ok(&reporting(), Request::GetWorkbinContent(r)))
    };
    assert_eq!(content(&mut f), [a.as_str()]);
    assert_eq!(pulled_ids(&f.ok(&bob(), pull_ids(&[&a]))), [a.as_str()]);
    let ix = f.get(&a).expect("live");
    assert_eq!(
        (ix.state, ix.workbin, ix.assigned_to.as_deref()),
        (S::Handling, None, Some("bob"))
    );
    assert_eq!(f.event_kinds(), [K::TakenFromWorkbin, K::PartyAdded]);
    assert!(content(&mut f).is_empty());
    // Only queued interactions can be pulled; bob holds it now.
    assert_eq!(f.fails(&ann(), pull_ids(&[&a])).code, ErrorCode::InvalidState);
    assert_eq!(
        f.fails(&ann(), pull_ids(&["nope"])).code,
        ErrorCode::UnknownInteraction
    );
    f.eng.check_invariants(f.now);
}

#[test]
fn moving_a_handled_interaction_revokes_it_from_its_holder() {
    // (mover, request builder, expected revoke)
    type Build = fn(&str) -> Request;
    let cases: &[(&str, ClientCtx, Build, K, bool)] = &[
        (
            "holder to queue",
            ann(),
            |id| place_in_queue(id, "parking"),
            K::PlacedInQueue,
            false,
        ),
        (
            "admin to queue",
            admin(),
            |id| place_in_queue(id, "parking"),
            K::PlacedInQueue,
            true,
        ),
        (
            "holder to workbin",
            ann(),
            |id| place_in_workbin(id, "drafts", None),
            K::PlacedInWorkbin,
            false,
        ),
        (
            "admin to workbin",
            admin(),
            |id| place_in_workbin(id, "drafts", Some("bob")),
            K::PlacedInWorkbin,
            true,
        ),
    ];
    for (what, mover, build, placed, revoked) in cases {
        let mut f = Fixture::new();
        let id = f.submit(&chat(), "inbound");
        assert_eq!(f.pull_view(&ann(), "all", 1), [id.as_str()]);
        f.batch();
        f.ok(mover, build(&id));
        let events = f.batch().events;
        let mut expected = vec![(K::PartyRemoved, id.clone())];
        if *revoked {
            expected.push((K::Revoked, id.clone()));
        }
        expected.push((*placed, id.clone()));
        assert_eq!(kinds_of(&events), expected, "{what}");
        let party = events[0]
            .party
            .as_ref()
            .map(|p| (p.kind.as_str(), p.name.as_str()));
        assert_eq!(party, Some(("agent", "ann")), "{what}");
        let expected = if *revoked {
            vec![(holder("default", "ann"), "EventRevoked", id.clone())]
        } else {
            vec![]
        };
        assert_eq!(notes(&f.out), expected, "{what}");
        let ix = f.get(&id).expect("live");
        assert_eq!((ix.state, ix.assigned_to), (S::Queued, None), "{what}");
        assert_eq!(f.queue_counts("default", "inbound"), (0, 0), "{what}");
        f.eng.check_invariants(f.now);
    }
}

#[test]
fn only_the_holder_moves_what_it_holds() {
    let mut f = Fixture::new();
    let id = f.submit(&chat(), "inbound");
    f.pull_view(&ann(), "all", 1);
    let cases: &[(&str, ClientCtx, Request, ErrorCode)] = &[
        (
            "another agent",
            bob(),
            place_in_queue(&id, "parking"),
            ErrorCode::NotAssigned,
        ),
        (
            "a router",
            router(),
            place_in_workbin(&id, "drafts", Some("bob")),
            ErrorCode::NotAssigned,
        ),
        (
            "the media server",
            chat(),
            place_in_queue(&id, "parking"),
            ErrorCode::NotAssigned,
        ),
        (
            "unknown queue",
            ann(),
            place_in_queue(&id, "nope"),
            ErrorCode::UnknownQueue,
        ),
        (
            "unknown workbin",
            ann(),
            place_in_workbin(&id, "nope", None),
            ErrorCode::UnknownWorkbin,
        ),
        ("another agent stops", bob(), stop(&id), ErrorCode::NotAssigned),
        ("unknown id", ann(), stop("nope"), ErrorCode::UnknownInteraction),
        (
            "into another agent's personal workbin",
            ann(),
            place_in_workbin(&id, "drafts", Some("bob")),
            ErrorCode::RequestNotAllowed,
        ),
    ];
    for (what, client, request, expected) in cases {
        assert_eq!(f.fails(client, request.clone()).code, *expected, "{what}");
    }
    // Out of another agent's personal workbin, by id.
    f.ok(&ann(), place_in_workbin(&id, "drafts", None));
    assert_eq!(
        f.fails(&bob(), pull_ids(&[&id])).code,
        ErrorCode::RequestNotAllowed
    );
    assert_eq!(pulled_ids(&f.ok(&ann(), pull_ids(&[&id]))), [id.as_str()]);
}

/// How to bring a fresh interaction into a state, and what stopping it from there emits.
fn prepare(f: &mut Fixture, state: &str) -> String {
    let id = f.submit(&chat(), "inbound");
    match state {
        "queued" => {}
        "workbin" => {
            f.pull_view(&ann(), "all", 1);
            f.ok(&ann(), place_in_workbin(&id, "drafts", None));
        }
        "routing" => assert_eq!(f.pull_view(&router(), "all", 1), [id.as_str()]),
        "handling" => assert_eq!(f.pull_view(&ann(), "all", 1), [id.as_str()]),
        other => panic!("no state {other}"),
    }
    f.batch();
    id
}

/// Who hears about a stop, by name, for the table below.
#[derive(Clone, Copy)]
enum Told {
    /// The submitting application gets EventProcessingStopped.
    Submitter,
    /// Agent `ann` gets EventRevoked.
    Ann,
    /// The router's application gets EventRevoked.
    Router,
}

#[test]
fn stop_from_each_state() {
    // (state, stopper, events before ProcessingStopped, notifications)
    let cases: &[(&str, ClientCtx, &[K], &[Told])] = &[
        ("queued", router(), &[K::TakenFromQueue], &[Told::Submitter]),
        ("queued", chat(), &[K::TakenFromQueue], &[]),
        ("workbin", ann(), &[K::TakenFromWorkbin], &[Told::Submitter]),
        ("routing", router(), &[K::PartyRemoved], &[Told::Submitter]),
        ("routing", chat(), &[K::PartyRemoved, K::Revoked], &[Told::Router]),
        ("handling", ann(), &[K::PartyRemoved], &[Told::Submitter]),
        ("handling", chat(), &[K::PartyRemoved, K::Revoked], &[Told::Ann]),
        (
            "handling",
            email(),
            &[K::PartyRemoved, K::Revoked],
            &[Told::Ann, Told::Submitter],
        ),
        (
            "handling",
            admin(),
            &[K::PartyRemoved, K::Revoked],
            &[Told::Ann, Told::Submitter],
        ),
    ];
    for (state, stopper, leaving, told) in cases {
        let what = format!("{state} stopped by {}", stopper.application);
        let mut f = Fixture::new();
        let id = prepare(&mut f, state);
        let answer = f.ok(stopper, stop(&id));
        assert_eq!(ack_id(&answer), id, "{what}");
        assert_eq!(f.get(&id), None, "{what}: gone from memory");
        let batch = f.batch();
        let mut expected: Vec<K> = leaving.to_vec();
        expected.push(K::ProcessingStopped);
        assert_eq!(
            batch.events.iter().map(|e| e.event).collect::<Vec<_>>(),
            expected,
            "{what}"
        );
        let row = batch
            .interactions
            .iter()
            .find(|ix| ix.id.as_str() == id)
            .expect("the stopped row is written");
        assert_eq!((row.state, row.completed_at), (S::Stopped, Some(f.now)), "{what}");
        assert_eq!(batch.interactions.len(), 1, "{what}: one row");
        let expected: Vec<_> = told
            .iter()
            .map(|t| match t {
                Told::Submitter => (
                    application("default", "chat-server"),
                    "EventProcessingStopped",
                    id.clone(),
                ),
                Told::Ann => (holder("default", "ann"), "EventRevoked", id.clone()),
                Told::Router => (holder("default", "router-1"), "EventRevoked", id.clone()),
            })
            .collect();
        assert_eq!(notes(&f.out), expected, "{what}");
        assert_eq!(f.queue_counts("default", "inbound"), (0, 0), "{what}");
        // Gone means gone: a second stop is an unknown interaction.
        assert_eq!(
            f.fails(stopper, stop(&id)).code,
            ErrorCode::UnknownInteraction,
            "{what}"
        );
        f.eng.check_invariants(f.now);
    }
}

/// Ids generated after a restart must not collide with loaded ones, even when the clock is not
/// past the last loaded id (`IdGenerator::observe` is given `submitted_at`, which does not say
/// how many ids that millisecond already used).
#[test]
fn generated_ids_never_collide_with_loaded_ones() {
    let mut f = Fixture::new();
    let mut ids = IdGenerator::new(1);
    for seq in 1..=3 {
        let mut ix = interaction(ids.next(T0).as_str(), "inbound", seq);
        ix.submitted_at = T0;
        f.eng.load(ix, T0);
    }
    assert_eq!(f.eng.live_count(), 3);
    let id = f.submit(&chat(), "inbound");
    assert_eq!(
        f.eng.live_count(),
        4,
        "the new interaction ({id}) replaced a loaded one"
    );
    f.eng.check_invariants(f.now);
}

#[test]
fn place_in_queue_by_the_media_server_only_while_queued() {
    let mut f = Fixture::new();
    let id = f.submit(&chat(), "inbound");
    f.batch();
    let mut added = UserData::new();
    added.push("Note", Value::Str("moved".into()));
    let r = PlaceInQueue {
        interaction_id: id.clone(),
        queue: "parking".into(),
        added_properties: added,
    };
    f.ok(&chat(), Request::PlaceInQueue(r));
    let events = f.batch().events;
    assert_eq!(
        events.iter().map(|e| e.event).collect::<Vec<_>>(),
        [K::TakenFromQueue, K::PlacedInQueue, K::PropertiesChanged]
    );
    assert_eq!(events[1].previous_queue.as_deref(), Some("inbound"));
    assert_eq!(events[1].queue.as_deref(), Some("parking"));
    let ix = f.get(&id).expect("live");
    assert_eq!(ix.user_data.get_str("Note"), Some("moved"));
    assert_eq!(
        (
            f.queue_counts("default", "inbound"),
            f.queue_counts("default", "parking")
        ),
        ((0, 0), (1, 0))
    );
    assert_eq!(f.pull_view(&router(), "parking-all", 5), [id]);
    f.eng.check_invariants(f.now);
}

#[test]
fn pull_count_must_be_sensible() {
    let mut f = Fixture::new();
    f.submit(&chat(), "inbound");
    let cases: &[(Pull, ErrorCode)] = &[
        (
            Pull {
                view: Some("all".into()),
                count: 0,
                interaction_ids: vec![],
                strategy: None,
                max_wait_ms: None,
            },
            ErrorCode::InvalidValue,
        ),
        (
            Pull {
                view: Some("all".into()),
                count: 1001,
                interaction_ids: vec![],
                strategy: None,
                max_wait_ms: None,
            },
            ErrorCode::InvalidValue,
        ),
        (
            Pull {
                view: Some("nope".into()),
                count: 1,
                interaction_ids: vec![],
                strategy: None,
                max_wait_ms: None,
            },
            ErrorCode::UnknownView,
        ),
        (
            Pull {
                view: None,
                count: 1,
                interaction_ids: vec![],
                strategy: None,
                max_wait_ms: None,
            },
            ErrorCode::InvalidField,
        ),
        (
            Pull {
                view: Some("all".into()),
                count: 1,
                interaction_ids: vec!["x".into()],
                strategy: None,
                max_wait_ms: None,
            },
            ErrorCode::InvalidField,
        ),
    ];
    for (pull, expected) in cases {
        assert_eq!(
            f.fails(&router(), Request::Pull(pull.clone())).code,
            *expected,
            "{pull:?}"
        );
    }
}
