//! Condition language costs on the hot paths of views: parsing a view definition, evaluating a
//! condition against one interaction, and computing a sort key.
//! Run: `cargo bench -p ixn-model --bench condition -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ixn_model::condition::{Condition, OrderBy};
use ixn_model::{
    CustomProperty, CustomType, Interaction, InteractionId, InteractionState, Name, Timestamp, UserData,
    Value,
};

const NOW: Timestamp = Timestamp(1_767_225_600_000);

fn custom() -> Vec<CustomProperty> {
    vec![CustomProperty {
        name: "segment".into(),
        key: "Segment".into(),
        ty: CustomType::String,
    }]
}

/// A queued chat with about 256 bytes of user data.
fn interaction() -> Interaction {
    let mut ud = UserData::new();
    for (k, v) in [
        ("Segment", "gold"),
        ("CustomerId", "C-0012345678"),
        ("FirstName", "Ann"),
        ("LastName", "O'Neil"),
        ("EmailAddress", "ann.oneil@example.com"),
        ("Subject", "Question about my last invoice"),
        ("Language", "en"),
        ("Channel", "web-chat"),
        ("Product", "fibre-1000"),
        ("Country", "IE"),
    ] {
        ud.push(k, Value::Str(v.into()));
    }
    ud.push("Amount", Value::Int(250));
    ud.push("VisitCount", Value::Int(3));
    Interaction {
        id: InteractionId::parse("0001BaBFVPR2004A").expect("valid id"),
        tenant: Name::new("t1"),
        media_type: Name::new("chat"),
        interaction_type: Some(Name::new("Inbound")),
        subtype: Some(Name::new("InboundNew")),
        queue: Some(Name::new("sales")),
        workbin: None,
        state: InteractionState::Queued,
        is_online: true,
        is_locked: false,
        is_held: false,
        parent_id: None,
        external_id: None,
        priority: 5,
        service_objective: Some(60),
        submitted_by: Name::new("chat-server"),
        assigned_to: None,
        submit_seq: 42,
        received_at: None,
        submitted_at: NOW.plus_millis(-600_000),
        placed_in_queue_at: Some(NOW.plus_millis(-540_000)),
        moved_to_queue_at: None,
        delivered_at: None,
        assigned_at: None,
        held_at: None,
        scheduled_at: None,
        completed_at: None,
        abandoned_at: None,
        user_data: ud,
    }
}

const VIEW: &str = "media_type IN ('chat', 'email') AND is_locked = 0 AND (segment = 'gold' OR priority >= 8) \
                    AND Amount > 100 AND (scheduled_at IS NULL OR scheduled_at <= NOW()) \
                    AND _time_in_queue[] > 30 AND subtype NOT LIKE 'Outbound%'";

fn bench(c: &mut Criterion) {
    let custom = custom();
    let ix = interaction();
    c.bench_function("parse view condition", |b| {
        b.iter(|| Condition::parse(black_box(VIEW), &custom))
    });

    let cond = Condition::parse(
        "priority > 3 AND segment = 'gold' AND Amount > 100 AND _time_in_queue > 30",
        &custom,
    )
    .expect("valid condition");
    assert!(cond.eval(&ix, NOW));
    c.bench_function("eval 4 predicates", |b| b.iter(|| cond.eval(black_box(&ix), NOW)));

    let order = OrderBy::parse("priority desc, segment asc, submitted_at asc", &custom).expect("valid order");
    c.bench_function("sort_key 3 terms", |b| {
        b.iter(|| order.sort_key(black_box(&ix), NOW))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
