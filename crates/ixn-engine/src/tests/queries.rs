//! Snapshots, find, workbin content, queue depths, tenant isolation and re-applying a process.

use ixn_model::InteractionState as S;
use ixn_protocol::{
    ChangeProperties, ErrorCode, FindInteractions, GetInteraction, GetQueues, GetSnapshotInteractions,
    GetWorkbinContent, MoveInteractions, PlaceInQueue, PlaceInWorkbin, Pull, QueueInfo, ReleaseSnapshot,
    Request, TakeSnapshot, WorkbinTarget,
};

use super::clients::*;
use super::lifecycle::stop;
use super::*;
use crate::queries::SNAPSHOT_IDLE_MS;

fn take(condition: Option<&str>, order: Option<&str>, max: Option<u32>) -> Request {
    Request::TakeSnapshot(TakeSnapshot {
        condition: condition.map(str::to_owned),
        order: order.map(str::to_owned),
        queue: None,
        max,
    })
}

fn page(snapshot_id: u64, offset: u32, count: u32) -> Request {
    Request::GetSnapshotInteractions(GetSnapshotInteractions {
        snapshot_id,
        offset,
        count,
    })
}

fn release(snapshot_id: u64) -> Request {
    Request::ReleaseSnapshot(ReleaseSnapshot { snapshot_id })
}

fn find(condition: &str, order: Option<&str>) -> Request {
    Request::FindInteractions(FindInteractions {
        condition: condition.into(),
        order: order.map(str::to_owned),
        limit: None,
        offset: 0,
        include_stopped: false,
    })
}

fn taken(m: &ServerMessage) -> (u64, u64) {
    match m {
        ServerMessage::EventSnapshotTaken {
            snapshot_id, count, ..
        } => (*snapshot_id, *count),
        other => panic!("expected EventSnapshotTaken, got {other:?}"),
    }
}

/// `n` interactions in `inbound` with priorities 0, 1, 2, 0, 1, 2, …
fn with_priorities(n: usize) -> (Fixture, Vec<String>) {
    let mut f = Fixture::new();
    let ids = (0..n)
        .map(|i| f.submit_with(&chat(), Some("inbound"), |s| s.priority = Some((i % 3) as i64)))
        .collect();
    (f, ids)
}

#[test]
fn snapshots_are_ordered_capped_and_paged() {
    let (mut f, ids) = with_priorities(120);
    // (condition, order, max, expected count)
    type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<u32>, u64);
    let cases: &[Case] = &[
        (None, None, None, 100),
        (None, None, Some(1_000), 100),
        (None, None, Some(10), 10),
        (Some("priority = 2"), None, None, 40),
        (Some("priority = 7"), None, None, 0),
    ];
    for (condition, order, max, count) in cases {
        let (_, n) = taken(&f.ok(&reporting(), take(*condition, *order, *max)));
        assert_eq!(n, *count, "{condition:?} {max:?}");
    }
    let (sid, n) = taken(&f.ok(
        &reporting(),
        take(Some("priority >= 1"), Some("priority desc"), None),
    ));
    assert_eq!(n, 80);
    let mut listed = Vec::new();
    for offset in (0..100).step_by(30) {
        let got = listed_ids(&f.ok(&reporting(), page(sid, offset, 30)));
        assert_eq!(
            got.len(),
            [30, 30, 20, 0][offset as usize / 30],
            "page at {offset}"
        );
        listed.extend(got);
    }
    let expected: Vec<String> = (0..120)
        .filter(|i| i % 3 == 2)
        .chain((0..120).filter(|i| i % 3 == 1))
        .map(|i| ids[i].clone())
        .collect();
    assert_eq!(listed, expected, "priority desc, then submission order");
}

#[test]
fn snapshot_pages_show_current_properties_and_skip_stopped() {
    let (mut f, ids) = with_priorities(3);
    let (sid, _) = taken(&f.ok(&reporting(), take(None, None, None)));
    f.ok(&chat(), stop(&ids[1]));
    f.pull_view(&router(), "all", 1);
    let m = f.ok(&reporting(), page(sid, 0, 10));
    let ServerMessage::EventSnapshotInteractions { interactions, .. } = m else {
        panic!("{m:?}")
    };
    let got: Vec<_> = interactions.iter().map(|v| (v.id.clone(), v.state)).collect();
    assert_eq!(got, [(ids[0].clone(), S::Queued), (ids[2].clone(), S::Routing)]);
}

#[test]
fn snapshots_belong_to_their_connection() {
    let (mut f, _) = with_priorities(3);
    let (sid, _) = taken(&f.ok(&reporting(), take(None, None, None)));
    let mv = Request::MoveInteractions(MoveInteractions {
        snapshot_id: sid,
        queue: "inbound".into(),
    });
    for (who, client) in [
        ("another connection", ann()),
        ("another tenant", acme_reporting()),
    ] {
        for r in [page(sid, 0, 10), release(sid), mv.clone()] {
            assert_eq!(f.fails(&client, r).code, ErrorCode::UnknownSnapshot, "{who}");
        }
    }
    f.ok(&reporting(), page(sid, 0, 10));
    f.ok(&reporting(), release(sid));
    for r in [page(sid, 0, 10), release(sid)] {
        assert_eq!(
            f.fails(&reporting(), r).code,
            ErrorCode::UnknownSnapshot,
            "released"
        );
    }
    // A connection going away releases its snapshots, and only its own.
    let (mine, _) = taken(&f.ok(&reporting(), take(None, None, None)));
    let (theirs, _) = taken(&f.ok(&ann(), take(None, None, None)));
    f.eng
        .client_gone(reporting().client_id, f.now, &mut Output::default());
    assert_eq!(
        f.fails(&reporting(), page(mine, 0, 1)).code,
        ErrorCode::UnknownSnapshot
    );
    f.ok(&ann(), page(theirs, 0, 1));
}

#[test]
fn idle_snapshots_expire_on_tick() {
    let (mut f, _) = with_priorities(1);
    let (a, _) = taken(&f.ok(&reporting(), take(None, None, None)));
    let (b, _) = taken(&f.ok(&reporting(), take(None, None, None)));
    f.now = T0.plus_millis(SNAPSHOT_IDLE_MS - 1);
    f.ok(&reporting(), page(b, 0, 1));
    f.now = T0.plus_millis(SNAPSHOT_IDLE_MS);
    f.eng.tick(f.now, &mut f.out);
    assert_eq!(
        f.fails(&reporting(), page(a, 0, 1)).code,
        ErrorCode::UnknownSnapshot
    );
    f.ok(&reporting(), page(b, 0, 1));
}

#[test]
fn move_interactions_moves_what_is_still_queued() {
    let (mut f, ids) = with_priorities(4);
    let (sid, _) = taken(&f.ok(&ann(), take(None, None, None)));
    f.ok(&chat(), stop(&ids[0]));
    f.pull_view(&router(), "all", 1); // ids[2], priority 2
    let lock = ixn_protocol::LockInteraction {
        interaction_id: ids[3].clone(),
        reason: None,
    };
    f.ok(&ann(), Request::LockInteraction(lock));
    let m = f.ok(
        &ann(),
        Request::MoveInteractions(MoveInteractions {
            snapshot_id: sid,
            queue: "parking".into(),
        }),
    );
    let ServerMessage::EventInteractionMoved { moved, failed, .. } = m else {
        panic!("{m:?}")
    };
    assert_eq!(moved, [ids[1].clone()]);
    let failed: Vec<_> = failed
        .iter()
        .map(|x| (x.interaction_id.clone(), x.code))
        .collect();
    assert_eq!(
        failed,
        [
            (ids[0].clone(), ErrorCode::UnknownInteraction.code()),
            (ids[2].clone(), ErrorCode::InvalidState.code()),
            (ids[3].clone(), ErrorCode::InteractionLocked.code()),
        ]
    );
    assert_eq!(f.queue_counts("default", "parking"), (1, 0));
    f.eng.check_invariants(f.now);
}

#[test]
fn invalid_conditions_say_where() {
    let (mut f, _) = with_priorities(1);
    // (request, text expected in the message)
    let cases: &[(Request, &str)] = &[
        (find("priority >= 1 AND", None), "condition: at position 17"),
        (find("priority = = 1", None), "condition: at position 11"),
        (find("", Some("priority sideways")), "order: at position 9"),
        (
            take(Some("(priority = 1"), None, None),
            "condition: at position 13",
        ),
        (take(None, Some("priority,"), None), "order: at position 9"),
    ];
    for (r, needle) in cases {
        let client = if matches!(r, Request::FindInteractions(_)) {
            chat()
        } else {
            reporting()
        };
        let err = f.fails(&client, r.clone());
        assert_eq!(err.code, ErrorCode::InvalidCondition, "{r:?}");
        assert!(err.message.contains(needle), "{r:?}: {}", err.message);
    }
    let mut bad_limit = FindInteractions {
        condition: String::new(),
        order: None,
        limit: Some(0),
        offset: 0,
        include_stopped: false,
    };
    assert_eq!(
        f.fails(&chat(), Request::FindInteractions(bad_limit.clone()))
            .code,
        ErrorCode::InvalidValue
    );
    bad_limit.limit = Some(10_001);
    assert_eq!(
        f.fails(&chat(), Request::FindInteractions(bad_limit)).code,
        ErrorCode::InvalidValue
    );
}

#[test]
fn find_filters_orders_and_pages() {
    let (mut f, ids) = with_priorities(6);
    let found = listed_ids(&f.ok(&chat(), find("priority >= 1", Some("priority desc"))));
    assert_eq!(
        found,
        [ids[2].clone(), ids[5].clone(), ids[1].clone(), ids[4].clone()]
    );
    let r = FindInteractions {
        condition: "priority >= 1".into(),
        order: Some("priority desc".into()),
        limit: Some(2),
        offset: 1,
        include_stopped: false,
    };
    assert_eq!(
        listed_ids(&f.ok(&chat(), Request::FindInteractions(r))),
        [ids[5].clone(), ids[1].clone()]
    );
}

#[test]
fn tenants_never_see_each_other() {
    let mut f = Fixture::new();
    let ours = f.submit(&chat(), "inbound");
    let theirs = f.submit(&acme_chat(), "inbound");
    f.ok(
        &ann(),
        Request::TakeSnapshot(TakeSnapshot {
            condition: None,
            order: None,
            queue: None,
            max: None,
        }),
    );
    let by_id: Vec<(&str, Request)> = vec![
        (
            "get",
            Request::GetInteraction(GetInteraction {
                interaction_id: ours.clone(),
            }),
        ),
        ("stop", stop(&ours)),
        (
            "change",
            Request::ChangeProperties(ChangeProperties {
                interaction_id: ours.clone(),
                changed_properties: user_data(&[("Lang", "de")]),
                added_properties: UserData::new(),
                deleted_properties: vec![],
            }),
        ),
        (
            "place in queue",
            Request::PlaceInQueue(PlaceInQueue {
                interaction_id: ours.clone(),
                queue: "inbound".into(),
                added_properties: UserData::new(),
            }),
        ),
        (
            "place in workbin",
            Request::PlaceInWorkbin(PlaceInWorkbin {
                interaction_id: ours.clone(),
                workbin: WorkbinTarget {
                    name: "drafts".into(),
                    owner: None,
                },
            }),
        ),
        (
            "pull by id",
            Request::Pull(Pull {
                view: None,
                count: 1,
                interaction_ids: vec![ours.clone()],
                strategy: None,
                max_wait_ms: None,
            }),
        ),
        (
            "hold",
            Request::Hold(ixn_protocol::Hold {
                interaction_id: ours.clone(),
                reason: None,
            }),
        ),
        (
            "lock",
            Request::LockInteraction(ixn_protocol::LockInteraction {
                interaction_id: ours.clone(),
                reason: None,
            }),
        ),
    ];
    for (what, r) in by_id {
        let err = f.fails(&acme_agent(), r);
        assert_eq!(err.code, ErrorCode::UnknownInteraction, "{what}: {err}");
    }
    // The other tenant's views do not exist; its own view sees only its own.
    let all = Request::Pull(Pull {
        view: Some("all".into()),
        count: 10,
        interaction_ids: vec![],
        strategy: None,
        max_wait_ms: None,
    });
    assert_eq!(f.fails(&acme_router(), all).code, ErrorCode::UnknownView);
    // Find and snapshots list only the tenant's own.
    assert_eq!(listed_ids(&f.ok(&acme_chat(), find("", None))), [theirs.as_str()]);
    assert_eq!(listed_ids(&f.ok(&chat(), find("", None))), [ours.as_str()]);
    let (sid, n) = taken(&f.ok(&acme_reporting(), take(None, None, None)));
    assert_eq!(n, 1);
    assert_eq!(
        listed_ids(&f.ok(&acme_reporting(), page(sid, 0, 10))),
        [theirs.as_str()]
    );
    assert_eq!(f.pull_view(&acme_router(), "acme-all", 10), [theirs]);
    assert_eq!(f.state(&ours), Some(S::Queued));
    // Workbins of the same name and owner are distinct per tenant.
    let sub = |ws: &str| {
        let mut s = submit_req(None);
        s.workbin = Some(WorkbinTarget {
            name: "drafts".into(),
            owner: Some(ws.into()),
        });
        s
    };
    let ann_default = ack_id(&f.ok(&chat(), Request::Submit(sub("ann"))));
    let ann_acme = ack_id(&f.ok(&acme_chat(), Request::Submit(sub("ann"))));
    let content = |f: &mut Fixture, c: &ClientCtx| {
        let r = GetWorkbinContent {
            workbin: WorkbinTarget {
                name: "drafts".into(),
                owner: None,
            },
        };
        listed_ids(&f.ok(c, Request::GetWorkbinContent(r)))
    };
    assert_eq!(content(&mut f, &ann()), [ann_default]);
    assert_eq!(content(&mut f, &acme_agent()), [ann_acme]);
    f.eng.check_invariants(f.now);
}

#[test]
fn get_queues_reports_depth_and_in_progress() {
    let mut f = Fixture::new();
    let ids: Vec<String> = (0..5).map(|_| f.submit(&chat(), "inbound")).collect();
    f.submit(&chat(), "parking");
    f.submit(&acme_chat(), "inbound");
    f.pull_view(&router(), "all", 2);
    f.pull_view(&ann(), "all", 1);
    f.ok(
        &ann(),
        Request::PlaceInWorkbin(PlaceInWorkbin {
            interaction_id: ids[2].clone(),
            workbin: WorkbinTarget {
                name: "drafts".into(),
                owner: None,
            },
        }),
    );
    f.ok(&chat(), stop(&ids[3]));
    let m = f.ok(&router(), Request::GetQueues(GetQueues {}));
    let ServerMessage::EventQueues { queues, .. } = m else {
        panic!("{m:?}")
    };
    let q = |name: &str, depth, in_progress| QueueInfo {
        name: name.into(),
        depth,
        in_progress,
    };
    // inbound: 5 submitted, 2 routing, 1 moved to a workbin, 1 stopped → 1 waiting.
    assert_eq!(queues, [q("inbound", 1, 2), q("parking", 1, 0), q("empty", 0, 0)]);
    let m = f.ok(&acme_router(), Request::GetQueues(GetQueues {}));
    let ServerMessage::EventQueues { queues, .. } = m else {
        panic!("{m:?}")
    };
    assert_eq!(queues, [q("inbound", 1, 0)]);
}

/// [`PROCESS`] with a view `high` added first (so every other view is renumbered) and `waited`
/// removed.
fn process_v2() -> String {
    let high = "[[views]]\nname = \"high\"\nqueue = \"inbound\"\ncondition = \"priority > 5\"\n\n";
    let waited = "[[views]]\nname = \"waited\"\nqueue = \"inbound\"\ncondition = \"_time_in_queue >= 5\"\n";
    let without = PROCESS.replace(waited, "");
    assert_ne!(without, PROCESS, "the waited view was found and removed");
    without.replacen("[[views]]", &format!("{high}[[views]]"), 1)
}

#[test]
fn apply_process_reindexes_existing_interactions() {
    let mut f = Fixture::new();
    let low = f.submit(&chat(), "inbound");
    let high = f.submit_with(&chat(), Some("inbound"), |s| s.priority = Some(9));
    let c = config(&process_v2());
    f.eng.apply_process(&c.process, c.settings, f.now);
    assert_eq!(f.pull_view(&router(), "high", 10), [high]);
    let waited = Request::Pull(Pull {
        view: Some("waited".into()),
        count: 1,
        interaction_ids: vec![],
        strategy: None,
        max_wait_ms: None,
    });
    assert_eq!(f.fails(&router(), waited).code, ErrorCode::UnknownView);
    assert_eq!(f.pull_view(&router(), "all", 10), [low]);
    assert_eq!(f.queue_counts("default", "inbound"), (0, 2));
}

/// After `apply_process` the bookkeeping must equal a fresh engine's: `ViewIndexes::index` is
/// run again on entries whose `memberships` still list the old process's views, so they pile up.
#[test]
fn apply_process_keeps_the_bookkeeping_exact() {
    let mut f = Fixture::new();
    f.submit_with(&chat(), Some("inbound"), |s| {
        s.user_data = Some(user_data(&[("Region", "eu")]))
    });
    let c = config(&process_v2());
    f.eng.apply_process(&c.process, c.settings, f.now);
    f.eng.check_invariants(f.now);
}

/// A view's limit counts what was pulled through *that view*; renumbering views by applying a
/// process must not move in-flight interactions to another view's count.
#[test]
fn apply_process_keeps_view_limits_by_view() {
    let mut f = Fixture::new();
    for _ in 0..3 {
        f.submit_with(&chat(), Some("inbound"), |s| {
            s.user_data = Some(user_data(&[("Region", "eu")]))
        });
    }
    assert_eq!(f.pull_view(&router(), "eu", 5).len(), 2, "limit 2");
    let c = config(&process_v2());
    f.eng.apply_process(&c.process, c.settings, f.now);
    assert_eq!(
        f.pull_view(&router(), "eu", 5),
        Vec::<String>::new(),
        "still two in flight through eu"
    );
}
