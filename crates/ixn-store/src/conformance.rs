//! The store conformance suite: the whole [`Store`] contract as executable cases, run against
//! every engine (`tests/conformance.rs` runs it on SQLite and PostgreSQL). An engine is correct
//! when [`run_all`] passes on a fresh, empty store.
//!
//! Cases may share one store: each writes its own tenant and ids, and global figures (stats,
//! the outbox, `load_live`) are checked as differences or filtered by tenant. Panics are the
//! failure report; this module is test code that ships so other engines can reuse it.

use ixn_model::condition::{Condition, OrderBy};
use ixn_model::{
    CustomProperty, CustomType, Interaction, InteractionId, InteractionState, Name, Timestamp, UserData,
    Value, WorkbinRef,
};

use crate::{OutboxEvent, Store, StoreError, StoreQuery, WriteBatch};

/// A realistic "now" for the suite (2026-11-23); purge uses much smaller times of its own.
const T0: i64 = 1_795_440_457_120;

/// Runs every case in turn; panics with the first broken rule.
pub async fn run_all(store: &dyn Store) {
    round_trip_every_field(store).await;
    upsert_replaces(store).await;
    load_live_excludes_stopped_in_submit_order(store).await;
    custom_properties_are_filled_and_queryable(store).await;
    find_orders_and_pages(store).await;
    find_on_plain_user_data_is_a_query_error(store).await;
    tenants_are_isolated(store).await;
    outbox_and_last_event_seq(store).await;
    recommit_is_idempotent(store).await;
    purge_respects_before_and_limit(store).await;
    meta_round_trip(store).await;
    meta_set_outside_batches(store).await;
    stats_count_rows_and_events(store).await;
}

fn id(s: &str) -> InteractionId {
    InteractionId::parse(s).expect("test ids are valid")
}

/// A queued interaction with only the required properties set.
pub fn minimal(tenant: &str, id_text: &str, submit_seq: u64) -> Interaction {
    Interaction {
        id: id(id_text),
        tenant: Name::new(tenant),
        media_type: Name::new("email"),
        interaction_type: None,
        subtype: None,
        queue: Some(Name::new("inbound")),
        workbin: None,
        state: InteractionState::Queued,
        is_online: false,
        is_locked: false,
        is_held: false,
        parent_id: None,
        external_id: None,
        priority: 0,
        service_objective: None,
        submitted_by: Name::new("conformance"),
        assigned_to: None,
        submit_seq,
        received_at: None,
        submitted_at: Timestamp(T0 + submit_seq as i64),
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

/// User data with every value type, nesting, repeated keys, empty and non-ASCII values.
pub fn rich_user_data() -> UserData {
    let mut inner = UserData::new();
    inner.push("Street", Value::Str("Rue de l'Église 5".into()));
    inner.push("Zip", Value::Int(75001));
    let mut deeper = UserData::new();
    deeper.push("Flag", Value::Bin(vec![0, 255, 1]));
    inner.push("Deeper", Value::List(deeper));
    let mut ud = UserData::new();
    ud.push("Subject", Value::Str("Where is my order? 📦".into()));
    ud.push("Count", Value::Int(-42));
    ud.push("Big", Value::Int(i64::MAX));
    ud.push("Attachment", Value::Bin((0..=255).collect()));
    ud.push("Empty", Value::Str(String::new()));
    ud.push("Address", Value::List(inner));
    ud.push("Count", Value::Int(7));
    ud
}

/// An interaction with every optional property set.
pub fn full(tenant: &str, id_text: &str, submit_seq: u64) -> Interaction {
    let t = |ms: i64| Some(Timestamp(T0 + ms));
    Interaction {
        interaction_type: Some(Name::new("Inbound")),
        subtype: Some(Name::new("InboundNew")),
        queue: Some(Name::new("vip-queue")),
        workbin: Some(WorkbinRef {
            name: Name::new("drafts"),
            owner: Name::new("agent-7"),
        }),
        state: InteractionState::Handling,
        is_online: true,
        is_locked: true,
        is_held: true,
        parent_id: Some(id("conf-parent-1")),
        external_id: Some("ext-'quoted'-id".into()),
        priority: -3,
        service_objective: Some(3_600),
        assigned_to: Some(Name::new("agent-7")),
        received_at: t(-1_000),
        placed_in_queue_at: t(10),
        moved_to_queue_at: t(20),
        delivered_at: t(30),
        assigned_at: t(40),
        held_at: t(50),
        scheduled_at: t(60),
        completed_at: t(70),
        abandoned_at: t(80),
        user_data: rich_user_data(),
        ..minimal(tenant, id_text, submit_seq)
    }
}

fn rows(interactions: Vec<Interaction>) -> WriteBatch {
    WriteBatch {
        interactions,
        ..WriteBatch::default()
    }
}

async fn commit(store: &dyn Store, batch: WriteBatch) {
    store.commit(&batch).await.expect("commit");
}

async fn get(store: &dyn Store, tenant: &str, id_text: &str) -> Option<Interaction> {
    store.get(tenant, &id(id_text)).await.expect("get")
}

fn query(tenant: &str, condition: Option<Condition>, order: OrderBy, offset: u64, limit: u64) -> StoreQuery {
    StoreQuery {
        tenant: tenant.to_owned(),
        condition,
        order,
        offset,
        limit,
    }
}

fn ids(found: &[Interaction]) -> Vec<&str> {
    found.iter().map(|i| i.id.as_str()).collect()
}

/// Every system property and every kind of user-data value comes back exactly as written.
pub async fn round_trip_every_field(store: &dyn Store) {
    let rich = full("t-round", "conf-round-full", 101);
    let bare = minimal("t-round", "conf-round-bare", 102);
    commit(store, rows(vec![rich.clone(), bare.clone()])).await;
    assert_eq!(
        get(store, "t-round", "conf-round-full").await,
        Some(rich),
        "every field set"
    );
    assert_eq!(
        get(store, "t-round", "conf-round-bare").await,
        Some(bare),
        "every optional field unset"
    );
    assert_eq!(get(store, "t-round", "conf-round-none").await, None, "unknown id");
}

/// Committing a changed row replaces every column, including ones that became unset.
pub async fn upsert_replaces(store: &dyn Store) {
    let first = full("t-upsert", "conf-upsert-1", 201);
    commit(store, rows(vec![first])).await;
    let mut second = minimal("t-upsert", "conf-upsert-1", 201);
    second.state = InteractionState::Stopped;
    second.queue = Some(Name::new("archive"));
    second.completed_at = Some(Timestamp(T0 + 5_000));
    second.user_data.push("Only", Value::Str("this".into()));
    commit(store, rows(vec![second.clone()])).await;
    assert_eq!(get(store, "t-upsert", "conf-upsert-1").await, Some(second));

    // Within one batch, the last row of an interaction wins.
    let mut a = minimal("t-upsert", "conf-upsert-2", 202);
    let mut b = a.clone();
    a.priority = 1;
    b.priority = 2;
    commit(store, rows(vec![a, b.clone()])).await;
    assert_eq!(get(store, "t-upsert", "conf-upsert-2").await, Some(b));
}

/// Startup load: every non-stopped row, none stopped, in submit_seq order.
pub async fn load_live_excludes_stopped_in_submit_order(store: &dyn Store) {
    let mut stopped = minimal("t-load", "conf-load-stopped", 330);
    stopped.state = InteractionState::Stopped;
    stopped.completed_at = Some(Timestamp(T0));
    let mut routing = minimal("t-load", "conf-load-c", 320);
    routing.state = InteractionState::Routing;
    // Written out of submit order, over two batches.
    commit(
        store,
        rows(vec![routing, minimal("t-load", "conf-load-d", 340), stopped]),
    )
    .await;
    commit(
        store,
        rows(vec![
            full("t-load", "conf-load-b", 310),
            minimal("t-load", "conf-load-a", 305),
        ]),
    )
    .await;

    let mut loaded = Vec::new();
    let count = store.load_live(&mut |i| loaded.push(i)).await.expect("load_live");
    assert_eq!(count, loaded.len() as u64, "returned count");
    assert!(
        loaded.iter().all(|i| i.state != InteractionState::Stopped),
        "no stopped interaction loaded"
    );
    assert!(
        loaded.windows(2).all(|w| w[0].submit_seq < w[1].submit_seq),
        "ordered by submit_seq"
    );
    let mine: Vec<&Interaction> = loaded.iter().filter(|i| i.tenant == "t-load").collect();
    let mine_ids: Vec<&str> = mine.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(
        mine_ids,
        ["conf-load-a", "conf-load-b", "conf-load-c", "conf-load-d"]
    );
    assert_eq!(
        *mine[1],
        full("t-load", "conf-load-b", 310),
        "rows load with every field"
    );
}

fn custom_props() -> Vec<CustomProperty> {
    vec![
        CustomProperty {
            name: "segment".into(),
            key: "Segment".into(),
            ty: CustomType::String,
        },
        CustomProperty {
            name: "tier".into(),
            key: "Tier".into(),
            ty: CustomType::Integer,
        },
        CustomProperty {
            name: "due".into(),
            key: "DueAt".into(),
            ty: CustomType::Timestamp,
        },
    ]
}

/// Id, priority and user data of one row of the custom-property case.
type CustomCase<'a> = (&'a str, i64, &'a [(&'a str, Value)]);

fn with_user_data(mut i: Interaction, pairs: &[(&str, Value)]) -> Interaction {
    for (k, v) in pairs {
        i.user_data.push(*k, v.clone());
    }
    i
}

/// Custom-property columns are filled from user data (also for rows written before the column
/// existed) and `find` filters on them exactly as the in-memory evaluation does.
pub async fn custom_properties_are_filled_and_queryable(store: &dyn Store) {
    let props = custom_props();
    let s = |v: &str| Value::Str(v.into());
    // Written before the columns exist: must be back-filled.
    let mut early = with_user_data(
        minimal("t-custom", "conf-custom-early", 401),
        &[("Segment", s("gold"))],
    );
    early.priority = 5;
    commit(store, rows(vec![early])).await;
    store
        .ensure_custom_properties(&props)
        .await
        .expect("ensure_custom_properties");
    store
        .ensure_custom_properties(&props)
        .await
        .expect("ensure_custom_properties is idempotent");

    let mut batch = Vec::new();
    let cases: [CustomCase<'_>; 6] = [
        (
            "conf-custom-1",
            3,
            &[
                ("Segment", s("gold")),
                ("Tier", Value::Int(12)),
                ("DueAt", s("2026-01-01T00:00:00Z")),
            ],
        ),
        ("conf-custom-2", 1, &[("Segment", s("gold")), ("Tier", s("7"))]),
        (
            "conf-custom-3",
            9,
            &[("Segment", s("silver")), ("Tier", s("many"))],
        ),
        (
            "conf-custom-4",
            4,
            &[("Segment", Value::Int(1)), ("DueAt", Value::Int(T0))],
        ),
        (
            "conf-custom-5",
            8,
            &[("segment", s("gold")), ("Tier", Value::Bin(vec![1]))],
        ),
        (
            "conf-custom-6",
            6,
            &[("Segment", s("gold")), ("Tier", Value::Int(20))],
        ),
    ];
    for (n, (id_text, priority, pairs)) in cases.iter().enumerate() {
        let mut i = with_user_data(minimal("t-custom", id_text, 410 + n as u64), pairs);
        i.priority = *priority;
        batch.push(i);
    }
    commit(store, rows(batch)).await;

    let check = |text: &'static str, expected: &'static [&'static str]| {
        let props = &props;
        async move {
            let cond = Condition::parse(text, props).unwrap_or_else(|e| panic!("{text}: {e}"));
            let order = OrderBy::parse("", props).expect("empty order");
            let found = store
                .find(&query("t-custom", Some(cond.clone()), order, 0, 100))
                .await;
            let found = found.unwrap_or_else(|e| panic!("find {text}: {e}"));
            assert_eq!(ids(&found), expected, "find {text}");
            // SQL and the model's own evaluation must agree on every row.
            let everything = store
                .find(&query("t-custom", None, OrderBy::default(), 0, 100))
                .await
                .expect("find all");
            let now = Timestamp(T0);
            let evaluated: Vec<&str> = everything
                .iter()
                .filter(|i| cond.eval(i, now))
                .map(|i| i.id.as_str())
                .collect();
            assert_eq!(evaluated, expected, "in-memory evaluation of {text}");
        }
    };
    check(
        "segment = 'gold' AND priority > 2",
        &["conf-custom-early", "conf-custom-1", "conf-custom-6"],
    )
    .await;
    check("tier >= 10", &["conf-custom-1", "conf-custom-6"]).await;
    check("tier < 10", &["conf-custom-2"]).await;
    check(
        "tier IS NULL AND segment IS NOT NULL",
        &["conf-custom-early", "conf-custom-3"],
    )
    .await;
    check("due < TIMESTAMP '2026-06-01T00:00:00Z'", &["conf-custom-1"]).await;
    check("due IS NOT NULL", &["conf-custom-1", "conf-custom-4"]).await;

    let order = OrderBy::parse("tier desc, priority", &props).expect("order");
    let found = store
        .find(&query("t-custom", None, order, 0, 3))
        .await
        .expect("find ordered by custom");
    // NULLs first in descending order, as PostgreSQL (and the model) sort them.
    assert_eq!(
        ids(&found),
        ["conf-custom-4", "conf-custom-early", "conf-custom-5"]
    );
}

/// `find` honours order, offset and limit; an empty order is submission order.
pub async fn find_orders_and_pages(store: &dyn Store) {
    let mut batch = Vec::new();
    for (n, priority) in [5, 1, 9, 5, 3].into_iter().enumerate() {
        let mut i = minimal("t-find", &format!("conf-find-{n}"), 500 + n as u64);
        i.priority = priority;
        batch.push(i);
    }
    commit(store, rows(batch)).await;
    let props = custom_props();
    let by_priority = || OrderBy::parse("priority desc", &props).expect("order");
    let all = store
        .find(&query("t-find", None, OrderBy::default(), 0, 100))
        .await
        .expect("find");
    assert_eq!(
        ids(&all),
        [
            "conf-find-0",
            "conf-find-1",
            "conf-find-2",
            "conf-find-3",
            "conf-find-4"
        ]
    );
    let sorted = store
        .find(&query("t-find", None, by_priority(), 0, 100))
        .await
        .expect("find");
    // Equal priorities fall back to submission order.
    assert_eq!(
        ids(&sorted),
        [
            "conf-find-2",
            "conf-find-0",
            "conf-find-3",
            "conf-find-4",
            "conf-find-1"
        ]
    );
    let page = store
        .find(&query("t-find", None, by_priority(), 1, 2))
        .await
        .expect("find");
    assert_eq!(ids(&page), ["conf-find-0", "conf-find-3"]);
    let past_end = store
        .find(&query("t-find", None, by_priority(), 5, 2))
        .await
        .expect("find");
    assert!(past_end.is_empty());
    let cond = Condition::parse("priority BETWEEN 2 AND 5 AND queue = 'inbound'", &props).expect("cond");
    let found = store
        .find(&query("t-find", Some(cond), by_priority(), 0, 100))
        .await
        .expect("find");
    assert_eq!(ids(&found), ["conf-find-0", "conf-find-3", "conf-find-4"]);
}

/// Plain user-data keys have no column: a query on one is the client's error, not a crash.
pub async fn find_on_plain_user_data_is_a_query_error(store: &dyn Store) {
    let cond = Condition::parse("\"NotCustom\" = 'x'", &custom_props()).expect("parses as a user-data key");
    let result = store
        .find(&query("t-find", Some(cond), OrderBy::default(), 0, 10))
        .await;
    assert!(
        matches!(result, Err(StoreError::Query(_))),
        "expected StoreError::Query, got {result:?}"
    );
}

/// `get` and `find` never return another tenant's interactions.
pub async fn tenants_are_isolated(store: &dyn Store) {
    commit(
        store,
        rows(vec![
            minimal("t-iso-a", "conf-iso-a", 601),
            minimal("t-iso-b", "conf-iso-b", 602),
        ]),
    )
    .await;
    assert!(get(store, "t-iso-b", "conf-iso-a").await.is_none());
    assert!(get(store, "t-iso-a", "conf-iso-a").await.is_some());
    let props = custom_props();
    let everything = Condition::parse("id = 'conf-iso-a' OR priority = 0", &props).expect("cond");
    let found = store
        .find(&query("t-iso-b", Some(everything), OrderBy::default(), 0, 100))
        .await
        .expect("find");
    assert_eq!(ids(&found), ["conf-iso-b"]);
    let none = store
        .find(&query("t-iso-none", None, OrderBy::default(), 0, 100))
        .await
        .expect("find");
    assert!(none.is_empty());
    // Ids are global: existence is visible whatever the tenant, so no tenant can reuse one.
    assert!(store.id_exists(&id("conf-iso-a")).await.expect("id_exists"));
    assert!(!store.id_exists(&id("conf-iso-missing")).await.expect("id_exists"));
}

fn event(seq: u64, with_id: bool) -> OutboxEvent {
    OutboxEvent {
        seq,
        time: Timestamp(T0 + seq as i64),
        name: "EventPlacedInQueue".into(),
        interaction_id: with_id.then(|| id("conf-outbox-1")),
        payload: format!(r#"{{"seq":{seq},"text":"ünïcode ' \" ok"}}"#),
    }
}

/// Events are read in order after a sequence, deleted up to one, and the last sequence
/// survives deletion and re-commits of older events.
pub async fn outbox_and_last_event_seq(store: &dyn Store) {
    let base = store.last_event_seq().await.expect("last_event_seq");
    let events: Vec<OutboxEvent> = (1..=5).map(|n| event(base + n, n % 2 == 0)).collect();
    commit(
        store,
        WriteBatch {
            events: events.clone(),
            ..WriteBatch::default()
        },
    )
    .await;
    assert_eq!(store.last_event_seq().await.expect("last_event_seq"), base + 5);
    assert_eq!(store.outbox_read(base, 100).await.expect("read"), events);
    assert_eq!(store.outbox_read(base + 2, 2).await.expect("read"), events[2..4]);
    assert!(store.outbox_read(base + 5, 10).await.expect("read").is_empty());
    assert_eq!(store.outbox_delete_upto(base + 3).await.expect("delete"), 3);
    assert_eq!(store.outbox_read(0, 100).await.expect("read"), events[3..]);
    assert_eq!(store.outbox_delete_upto(base + 5).await.expect("delete"), 2);
    assert!(store.outbox_read(0, 100).await.expect("read").is_empty());
    assert_eq!(
        store.last_event_seq().await.expect("last_event_seq"),
        base + 5,
        "survives deletion"
    );
    // An old batch committed again (outcome unknown, retried) does not move it back.
    commit(
        store,
        WriteBatch {
            events: events[..2].to_vec(),
            ..WriteBatch::default()
        },
    )
    .await;
    assert_eq!(store.last_event_seq().await.expect("last_event_seq"), base + 5);
    store.outbox_delete_upto(base + 5).await.expect("delete");
}

/// Committing the same batch twice leaves the store as committing it once.
pub async fn recommit_is_idempotent(store: &dyn Store) {
    let base = store.last_event_seq().await.expect("last_event_seq");
    let batch = WriteBatch {
        interactions: vec![
            full("t-again", "conf-again-1", 701),
            minimal("t-again", "conf-again-2", 702),
        ],
        events: vec![event(base + 1, true), event(base + 2, false)],
        meta: vec![("conf_again".into(), "1".into())],
    };
    commit(store, batch.clone()).await;
    let once = store.stats().await.expect("stats");
    commit(store, batch.clone()).await;
    assert_eq!(store.stats().await.expect("stats"), once);
    assert_eq!(store.outbox_read(base, 100).await.expect("read"), batch.events);
    assert_eq!(
        get(store, "t-again", "conf-again-1").await.as_ref(),
        batch.interactions.first()
    );
    assert_eq!(store.last_event_seq().await.expect("last_event_seq"), base + 2);
    store.outbox_delete_upto(base + 2).await.expect("delete");
}

/// Purge deletes only stopped rows completed before the cut-off, at most `limit` per call.
pub async fn purge_respects_before_and_limit(store: &dyn Store) {
    let stopped_at = |id_text: &str, seq: u64, completed: i64| {
        let mut i = minimal("t-purge", id_text, seq);
        i.state = InteractionState::Stopped;
        i.completed_at = Some(Timestamp(completed));
        i
    };
    let mut live = minimal("t-purge", "conf-purge-live", 805);
    live.completed_at = Some(Timestamp(1)); // odd but possible: only stopped rows are purged
    commit(
        store,
        rows(vec![
            stopped_at("conf-purge-1", 801, 100),
            stopped_at("conf-purge-2", 802, 200),
            stopped_at("conf-purge-3", 803, 300),
            stopped_at("conf-purge-4", 804, 400),
            live,
        ]),
    )
    .await;
    assert_eq!(store.purge_stopped(Timestamp(350), 2).await.expect("purge"), 2);
    assert_eq!(store.purge_stopped(Timestamp(350), 10).await.expect("purge"), 1);
    assert_eq!(store.purge_stopped(Timestamp(350), 10).await.expect("purge"), 0);
    for gone in ["conf-purge-1", "conf-purge-2", "conf-purge-3"] {
        assert!(get(store, "t-purge", gone).await.is_none(), "{gone} purged");
    }
    assert!(
        get(store, "t-purge", "conf-purge-4").await.is_some(),
        "completed after the cut-off"
    );
    assert!(
        get(store, "t-purge", "conf-purge-live").await.is_some(),
        "live rows are never purged"
    );
    assert_eq!(
        store.purge_stopped(Timestamp(401), 0).await.expect("purge"),
        0,
        "limit 0 deletes nothing"
    );
}

/// Meta values are written with batches, replaced by later ones, and read back.
pub async fn meta_round_trip(store: &dyn Store) {
    assert_eq!(store.meta_get("conf_meta").await.expect("meta_get"), None);
    let meta = |v: &str| WriteBatch {
        meta: vec![("conf_meta".into(), v.into())],
        ..WriteBatch::default()
    };
    commit(store, meta("first")).await;
    assert_eq!(
        store.meta_get("conf_meta").await.expect("meta_get").as_deref(),
        Some("first")
    );
    commit(store, meta("second, with 'quotes'")).await;
    assert_eq!(
        store.meta_get("conf_meta").await.expect("meta_get").as_deref(),
        Some("second, with 'quotes'")
    );
}

/// `meta_set` writes outside a batch, replaces, and leaves other keys alone.
pub async fn meta_set_outside_batches(store: &dyn Store) {
    store.meta_set("conf_cursor.a", "7").await.expect("meta_set");
    store.meta_set("conf_cursor.b", "9").await.expect("meta_set");
    store.meta_set("conf_cursor.a", "12").await.expect("meta_set");
    assert_eq!(
        store
            .meta_get("conf_cursor.a")
            .await
            .expect("meta_get")
            .as_deref(),
        Some("12")
    );
    assert_eq!(
        store
            .meta_get("conf_cursor.b")
            .await
            .expect("meta_get")
            .as_deref(),
        Some("9")
    );
}

/// Stats count live rows, stopped rows and outbox events.
pub async fn stats_count_rows_and_events(store: &dyn Store) {
    let before = store.stats().await.expect("stats");
    let base = store.last_event_seq().await.expect("last_event_seq");
    let mut stopped = minimal("t-stats", "conf-stats-3", 903);
    stopped.state = InteractionState::Stopped;
    commit(
        store,
        WriteBatch {
            interactions: vec![
                minimal("t-stats", "conf-stats-1", 901),
                full("t-stats", "conf-stats-2", 902),
                stopped,
            ],
            events: vec![event(base + 1, false)],
            meta: Vec::new(),
        },
    )
    .await;
    let after = store.stats().await.expect("stats");
    assert_eq!(after.live_interactions, before.live_interactions + 2);
    assert_eq!(after.stopped_interactions, before.stopped_interactions + 1);
    assert_eq!(after.outbox_events, before.outbox_events + 1);
    // A row that stops moves from one count to the other.
    let mut now_stopped = minimal("t-stats", "conf-stats-1", 901);
    now_stopped.state = InteractionState::Stopped;
    commit(store, rows(vec![now_stopped])).await;
    let last = store.stats().await.expect("stats");
    assert_eq!(last.live_interactions, before.live_interactions + 1);
    assert_eq!(last.stopped_interactions, before.stopped_interactions + 2);
}
