//! RequestChangeProperties, hold and lock: what may change, what is refused, who is told.

use ixn_model::InteractionState as S;
use ixn_protocol::{
    ChangeProperties, ErrorCode, Hold, LockInteraction, ReportingEventKind as K, Request, Resume,
    UnlockInteraction,
};

use super::clients::*;
use super::*;

fn change(id: &str, changed: &[(&str, &str)], added: &[(&str, &str)], deleted: &[&str]) -> Request {
    Request::ChangeProperties(ChangeProperties {
        interaction_id: id.into(),
        changed_properties: user_data(changed),
        added_properties: user_data(added),
        deleted_properties: deleted.iter().map(|s| (*s).to_owned()).collect(),
    })
}

#[test]
fn updatable_system_properties_change() {
    type Check = fn(&InteractionView) -> bool;
    let later = T0.plus_millis(1_000);
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str], Check);
    let cases: &[Case] = &[
        ("priority", &[("priority", "7")], &[], |v| v.priority == 7),
        ("priority by protocol name", &[("Priority", "-3")], &[], |v| {
            v.priority == -3
        }),
        ("external id", &[("external_id", "X-1")], &[], |v| {
            v.external_id.as_deref() == Some("X-1")
        }),
        ("external id deleted", &[], &["external_id"], |v| {
            v.external_id.is_none()
        }),
        ("service objective", &[("service_objective", "60")], &[], |v| {
            v.service_objective == Some(60)
        }),
        ("goes offline", &[("is_online", "false")], &[], |v| {
            !v.is_online && v.abandoned_at == Some(T0.plus_millis(1_000))
        }),
        ("goes offline as 0", &[("IsOnline", "0")], &[], |v| {
            !v.is_online && v.abandoned_at.is_some()
        }),
        ("stays online", &[("is_online", "1")], &[], |v| {
            v.is_online && v.abandoned_at.is_none()
        }),
    ];
    for (what, changed, deleted, check) in cases {
        let mut f = Fixture::new();
        let id = f.submit_with(&chat(), Some("inbound"), |s| s.external_id = Some("E".into()));
        f.batch();
        f.now = later;
        f.ok(&chat(), change(&id, changed, &[], deleted));
        let v = f.get(&id).expect("live");
        assert!(check(&v), "{what}: {v:?}");
        let batch = f.batch();
        assert_eq!(
            kinds_of(&batch.events),
            [(K::PropertiesChanged, id.clone())],
            "{what}"
        );
        assert_eq!(batch.interactions.len(), 1, "{what}");
        f.eng.check_invariants(f.now);
    }
}

#[test]
fn going_back_online_clears_abandoned_at() {
    let mut f = Fixture::new();
    let id = f.submit(&chat(), "inbound");
    f.ok(&chat(), change(&id, &[("is_online", "false")], &[], &[]));
    assert!(f.get(&id).is_some_and(|v| v.abandoned_at == Some(T0)));
    f.ok(&chat(), change(&id, &[("is_online", "true")], &[], &[]));
    assert!(
        f.get(&id)
            .is_some_and(|v| v.is_online && v.abandoned_at.is_none())
    );
}

#[test]
fn refused_changes_change_nothing() {
    let mut f = Fixture::new();
    let id = f.submit_with(&chat(), Some("inbound"), |s| {
        s.user_data = Some(user_data(&[("Lang", "fr")]))
    });
    // (what, changed, added, deleted, code)
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        &'a [&'a str],
        ErrorCode,
    );
    let cases: &[Case] = &[
        (
            "state",
            &[("state", "handling")],
            &[],
            &[],
            ErrorCode::PropertyNotUpdatable,
        ),
        (
            "queue",
            &[("queue", "parking")],
            &[],
            &[],
            ErrorCode::PropertyNotUpdatable,
        ),
        (
            "queue by protocol name",
            &[("Queue", "parking")],
            &[],
            &[],
            ErrorCode::PropertyNotUpdatable,
        ),
        (
            "media type",
            &[("media_type", "email")],
            &[],
            &[],
            ErrorCode::PropertyNotUpdatable,
        ),
        (
            "submitted by, added",
            &[],
            &[("submitted_by", "me")],
            &[],
            ErrorCode::PropertyNotUpdatable,
        ),
        (
            "priority deleted",
            &[],
            &[],
            &["priority"],
            ErrorCode::PropertyNotUpdatable,
        ),
        // A refused property anywhere refuses the whole request, valid parts included.
        (
            "mixed",
            &[("priority", "9"), ("Lang", "de")],
            &[("Topic", "x")],
            &["tenant"],
            ErrorCode::PropertyNotUpdatable,
        ),
        (
            "priority not a number",
            &[("priority", "high")],
            &[],
            &[],
            ErrorCode::InvalidValue,
        ),
        (
            "is_online out of range",
            &[("is_online", "2")],
            &[],
            &[],
            ErrorCode::InvalidValue,
        ),
        (
            "bad parent id",
            &[("parent_id", "a b")],
            &[],
            &[],
            ErrorCode::InvalidValue,
        ),
    ];
    for (what, changed, added, deleted, expected) in cases {
        let err = f.fails(&chat(), change(&id, changed, added, deleted));
        assert_eq!(err.code, *expected, "{what}: {err}");
    }
    assert_eq!(
        f.fails(&chat(), change("nope", &[("Lang", "de")], &[], &[])).code,
        ErrorCode::UnknownInteraction
    );
}

#[test]
fn user_data_is_changed_added_and_deleted() {
    let mut f = Fixture::new();
    let id = f.submit_with(&chat(), Some("inbound"), |s| {
        s.user_data = Some(user_data(&[("Lang", "fr"), ("Topic", "billing"), ("Old", "x")]))
    });
    f.batch();
    f.ok(
        &chat(),
        change(&id, &[("Lang", "de")], &[("New", "1")], &["Old", "Absent"]),
    );
    let v = f.get(&id).expect("live");
    assert_eq!(
        v.user_data,
        user_data(&[("Lang", "de"), ("Topic", "billing"), ("New", "1")])
    );
    let events = f.batch().events;
    let changes = events[0].changes.clone().expect("changes recorded");
    assert_eq!(changes.changed, user_data(&[("Lang", "de")]));
    assert_eq!(changes.added, user_data(&[("New", "1")]));
    assert_eq!(changes.deleted, ["Old", "Absent"]);
}

#[test]
fn changes_reach_the_holder_and_the_watching_submitter() {
    // (changer, expected recipients)
    type Recipients = &'static [fn() -> Notify];
    let cases: &[(ClientCtx, Recipients)] = &[
        (chat(), &[|| holder("default", "ann")]),
        (ann(), &[|| watching("default", "chat-server")]),
        (
            admin(),
            &[|| holder("default", "ann"), || watching("default", "chat-server")],
        ),
    ];
    for (changer, recipients) in cases {
        let mut f = Fixture::new();
        let id = f.submit(&chat(), "inbound");
        f.pull_view(&ann(), "all", 1);
        f.ok(changer, change(&id, &[("Lang", "de")], &[], &[]));
        let expected: Vec<_> = recipients
            .iter()
            .map(|r| (r(), "EventPropertiesChanged", id.clone()))
            .collect();
        assert_eq!(notes(&f.out), expected, "changed by {}", changer.application);
        if let Some((
            _,
            ServerMessage::EventPropertiesChanged {
                interaction,
                changed_properties,
                ..
            },
        )) = f.out.notifications.first()
        {
            assert_eq!(interaction.user_data.get_str("Lang"), Some("de"));
            assert_eq!(*changed_properties, user_data(&[("Lang", "de")]));
        }
    }
    // Nobody else may touch what ann handles.
    let mut f = Fixture::new();
    let id = f.submit(&chat(), "inbound");
    f.pull_view(&ann(), "all", 1);
    assert_eq!(
        f.fails(&bob(), change(&id, &[("Lang", "de")], &[], &[])).code,
        ErrorCode::NotAssigned
    );
    assert_eq!(
        f.fails(&router(), change(&id, &[("Lang", "de")], &[], &[])).code,
        ErrorCode::NotAssigned
    );
}

#[test]
fn changes_move_interactions_between_and_within_views() {
    let mut f = Fixture::new();
    let a = f.submit(&chat(), "inbound");
    let b = f.submit(&chat(), "inbound");
    f.ok(&chat(), change(&b, &[("priority", "3")], &[], &[]));
    f.ok(&chat(), change(&a, &[], &[("Segment", "gold")], &[]));
    f.eng.check_invariants(f.now);
    assert_eq!(
        f.pull_view(&router(), "gold", 5),
        [a.as_str()],
        "a custom property change re-indexes"
    );
    assert_eq!(f.pull_view(&router(), "all", 5), [b]);
}

#[test]
fn hold_and_lock_toggle_once() {
    let mut f = Fixture::new();
    let id = f.submit(&chat(), "inbound");
    let hold = || {
        Request::Hold(Hold {
            interaction_id: id.clone(),
            reason: None,
        })
    };
    let resume = || {
        Request::Resume(Resume {
            interaction_id: id.clone(),
            reason: None,
        })
    };
    let lock = || {
        Request::LockInteraction(LockInteraction {
            interaction_id: id.clone(),
            reason: None,
        })
    };
    let unlock = || {
        Request::UnlockInteraction(UnlockInteraction {
            interaction_id: id.clone(),
        })
    };
    f.batch();
    assert_eq!(f.fails(&chat(), resume()).code, ErrorCode::InvalidState);
    assert_eq!(f.fails(&ann(), unlock()).code, ErrorCode::InvalidState);
    f.ok(&chat(), hold());
    assert!(f.get(&id).is_some_and(|v| v.is_held && v.held_at == Some(T0)));
    assert_eq!(f.event_kinds(), [K::Held]);
    assert_eq!(f.fails(&chat(), hold()).code, ErrorCode::InvalidState);
    f.ok(&ann(), lock());
    assert_eq!(f.event_kinds(), [K::Locked]);
    assert_eq!(f.fails(&ann(), lock()).code, ErrorCode::InteractionLocked);
    assert_eq!(
        f.queue_counts("default", "inbound"),
        (1, 0),
        "held and locked stay counted in their queue"
    );
    f.eng.check_invariants(f.now);
    f.ok(&chat(), resume());
    f.ok(&ann(), unlock());
    assert_eq!(f.event_kinds(), [K::Resumed, K::Unlocked]);
    assert_eq!(f.state(&id), Some(S::Queued));
    assert_eq!(f.pull_view(&router(), "all", 1), [id.as_str()]);
}
