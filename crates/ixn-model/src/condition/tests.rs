//! Data-driven tests of the whole language: one `check` per case against a fixed interaction,
//! error texts, and property tests (never panics, print/parse round trip, sort keys order as the
//! clause says).

use std::cmp::Ordering;

use proptest::prelude::*;

use super::*;
use crate::{CustomType, InteractionId, InteractionState, Name, SysProp, UserData, Value};

const T0: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z
const NOW: Timestamp = Timestamp(1_767_225_600_000 + 600_000); // ten minutes later

fn custom() -> Vec<CustomProperty> {
    let cp = |name: &str, key: &str, ty| CustomProperty {
        name: name.to_owned(),
        key: key.to_owned(),
        ty,
    };
    vec![
        cp("language", "Lang", CustomType::String),
        cp("score", "Score", CustomType::Integer),
        cp("due", "DueAt", CustomType::Timestamp),
        cp("region", "Region", CustomType::String),
    ]
}

fn sample() -> Interaction {
    let mut ud = UserData::new();
    for (k, v) in [
        ("Segment", Value::Str("gold".into())),
        ("Amount", Value::Int(250)),
        ("AmountText", Value::Str(" 42".into())),
        ("Customer Name", Value::Str("Ann O'Neil".into())),
        ("Blob", Value::Bin(vec![1, 2])),
        ("Lang", Value::Str("fr".into())),
        ("Score", Value::Str("17".into())),
        ("DueAt", Value::Str("2026-01-02T00:00:00Z".into())),
        ("Region", Value::Int(3)),
        ("When", Value::Str("2026-01-01T00:05:00Z".into())),
    ] {
        ud.push(k, v);
    }
    Interaction {
        id: InteractionId::parse("ix-1").expect("valid id"),
        tenant: Name::new("t1"),
        media_type: Name::new("chat"),
        interaction_type: Some(Name::new("Inbound")),
        subtype: None,
        queue: Some(Name::new("sales")),
        workbin: None,
        state: InteractionState::Queued,
        is_online: true,
        is_locked: false,
        is_held: false,
        parent_id: None,
        external_id: Some("ext_1%".into()),
        priority: 5,
        service_objective: None,
        submitted_by: Name::new("ms"),
        assigned_to: None,
        submit_seq: 7,
        received_at: None,
        submitted_at: T0,
        placed_in_queue_at: Some(T0.plus_millis(60_000)),
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

#[track_caller]
fn check(text: &str, ix: &Interaction, expected: bool) {
    let c = Condition::parse(text, &custom()).unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(c.eval(ix, NOW), expected, "{text}");
}

#[track_caller]
fn check_err(text: &str, expected: &str) {
    match Condition::parse(text, &custom()) {
        Ok(c) => panic!("{text}: parsed as {:?}", c.expr()),
        Err(e) => assert_eq!(e.to_string(), expected, "{text}"),
    }
}

#[test]
fn evaluates() {
    let ix = sample();
    let cases = [
        // empty, constants
        ("", true),
        ("   ", true),
        ("TRUE", true),
        ("FALSE", false),
        ("NULL", false),
        ("NOT NULL", false),
        // system properties, both names, any case
        ("priority > 3 AND media_type = 'chat'", true),
        ("Priority >= 5 and MediaType = 'chat'", true),
        ("priority < 5", false),
        ("priority != 5", false),
        ("priority <> 4", true),
        ("priority = 5.0", true),
        ("priority < 5.5", true),
        ("priority > -1", true),
        ("queue = 'Sales'", false),
        ("state = 'queued'", true),
        ("is_online = TRUE AND is_held = FALSE", true),
        ("is_online = 1", true),
        ("type = 'Inbound'", true),
        ("InteractionType = 'Inbound'", true),
        ("media_type > 'cha' AND media_type < 'chb'", true),
        // NULL semantics
        ("subtype = 'x'", false),
        ("NOT subtype = 'x'", false),
        ("subtype <> 'x'", false),
        ("subtype IS NULL", true),
        ("subtype IS NOT NULL", false),
        ("queue IS NOT NULL", true),
        ("subtype = 'x' OR priority = 5", true),
        ("subtype = 'x' OR priority = 4", false),
        ("NOT (subtype = 'x' OR priority = 4)", false),
        ("NOT (subtype = 'x' AND priority = 4)", true),
        ("priority = NULL", false),
        ("NOT priority = NULL", false),
        ("service_objective > 0 OR TRUE", true),
        ("NULL IS NULL", true),
        // IN
        ("queue IN ('support', 'sales')", true),
        ("queue NOT IN ('support', 'sales')", false),
        ("queue IN ('support', NULL)", false),
        ("queue NOT IN ('support', NULL)", false),
        ("queue NOT IN ('support', 'billing')", true),
        ("queue IN ('sales', NULL)", true),
        ("subtype IN ('a', 'b')", false),
        ("subtype NOT IN ('a', 'b')", false),
        ("priority IN (1, 2, 5)", true),
        // LIKE
        ("queue LIKE 'sa%'", true),
        ("queue LIKE 'Sa%'", false),
        ("queue LIKE 's_les'", true),
        ("queue LIKE 's_l'", false),
        ("queue LIKE '%'", true),
        ("queue LIKE '%l%s'", true),
        ("queue NOT LIKE '%x%'", true),
        ("external_id LIKE 'ext\\_1\\%'", true),
        ("external_id LIKE 'ext\\_1\\%_'", false),
        ("subtype LIKE '%'", false),
        ("subtype NOT LIKE '%'", false),
        ("\"Customer Name\" LIKE 'Ann O''%'", true),
        // BETWEEN
        ("priority BETWEEN 1 AND 5", true),
        ("priority BETWEEN 6 AND 9", false),
        ("priority NOT BETWEEN 6 AND 9", true),
        ("priority BETWEEN 1 AND 5 AND queue = 'sales'", true),
        ("service_objective BETWEEN 1 AND 5", false),
        ("service_objective NOT BETWEEN 1 AND 5", false),
        ("priority BETWEEN 9 AND NULL", false),
        ("NOT priority BETWEEN 9 AND NULL", true),
        // precedence and nesting
        ("priority = 1 OR priority = 5 AND queue = 'sales'", true),
        ("(priority = 1 OR priority = 5) AND queue = 'x'", false),
        ("NOT NOT priority = 5", true),
        ("((((priority = 5))))", true),
        // custom properties, typed from user data
        ("language = 'fr'", true),
        ("LANGUAGE = 'fr'", true),
        ("score = 17", true),
        ("score > 16 AND score < 18", true),
        ("due > '2026-01-01T12:00:00Z'", true),
        ("due = TIMESTAMP '2026-01-02T00:00:00Z'", true),
        ("region = 'x' OR region IS NULL", true),
        // user-data keys, dynamically typed, case-sensitive
        ("Segment = 'gold'", true),
        ("segment = 'gold'", false),
        ("segment IS NULL", true),
        ("Amount > 200", true),
        ("Amount = '250'", true),
        ("AmountText = 42", true),
        ("AmountText > 41.5", true),
        ("Segment = 1", false),
        ("NOT Segment = 1", false),
        ("Segment > 'a'", true),
        ("Blob = 'x'", false),
        ("Blob IS NULL", false),
        ("Blob LIKE '%'", false),
        ("Amount LIKE '2%'", false),
        ("\"Customer Name\" = 'Ann O''Neil'", true),
        ("When < TIMESTAMP '2026-01-01T00:06:00Z'", true),
        ("When < NOW()", true),
        // pseudo-properties at NOW: queued 9 minutes, 10 minutes old
        ("_time_in_queue = 540", true),
        ("_time_in_queue[] > 4320", false),
        ("_TIME_IN_QUEUE >= 540 AND _age = 600", true),
        ("_age BETWEEN 599 AND 601", true),
        // timestamps
        ("submitted_at = '2026-01-01T00:00:00Z'", true),
        ("submitted_at = '2026-01-01'", true),
        ("submitted_at < NOW()", true),
        ("placed_in_queue_at > submitted_at", true),
        ("received_at < NOW()", false),
        ("scheduled_at IS NULL OR scheduled_at <= NOW()", true),
        (
            "submitted_at IN ('2025-01-01T00:00:00Z', TIMESTAMP '2026-01-01T00:00:00Z')",
            true,
        ),
        ("submitted_at BETWEEN '2025-12-31T00:00:00Z' AND NOW()", true),
    ];
    for (text, expected) in cases {
        check(text, &ix, expected);
    }
}

#[test]
fn pseudo_properties_follow_state_and_now() {
    let mut ix = sample();
    let c = Condition::parse("_time_in_queue > 100", &[]).expect("parses");
    assert!(c.is_time_dependent());
    assert!(!c.eval(&ix, T0.plus_millis(100_000)));
    assert!(c.eval(&ix, T0.plus_millis(161_000)));
    ix.state = InteractionState::Handling;
    assert!(!c.eval(&ix, T0.plus_millis(161_000)));
    check("_time_in_queue IS NULL", &ix, true);
    assert!(
        !Condition::parse("priority > 1", &[])
            .expect("parses")
            .is_time_dependent()
    );
    assert!(
        Condition::parse("scheduled_at < NOW()", &[])
            .expect("parses")
            .is_time_dependent()
    );
}

#[test]
fn binds_names_in_order() {
    let bound = |text: &str| match Condition::parse(text, &custom()).expect("parses").expr() {
        Expr::IsNull {
            operand: Operand::Prop(p),
            ..
        } => p.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(bound("Queue IS NULL"), Prop::System(SysProp::Queue));
    assert_eq!(bound("\"queue\" IS NULL"), Prop::System(SysProp::Queue));
    assert_eq!(bound("Score IS NULL"), Prop::Custom(custom()[1].clone()));
    assert_eq!(bound("_age IS NULL"), Prop::Age);
    assert_eq!(bound("Score2 IS NULL"), Prop::UserData("Score2".into()));
    assert_eq!(bound("\"and\" IS NULL"), Prop::UserData("and".into()));
    assert_eq!(bound("\"a \"\"b\"\"\" IS NULL"), Prop::UserData("a \"b\"".into()));
}

#[test]
fn errors_are_positioned_and_readable() {
    let long = format!("priority = {}", "1".repeat(MAX_TEXT_LEN));
    let deep = format!("{}priority = 1{}", "(".repeat(100), ")".repeat(100));
    let nots = format!("{}priority = 1", "NOT ".repeat(100));
    let cases = [
        (
            "media_type = ",
            "at position 13: expected a value after '=' but found end of text",
        ),
        ("abc == 1", "at position 4: unknown operator '=='"),
        (
            "priority > 3 AND",
            "at position 16: expected a condition after 'AND' but found end of text",
        ),
        (
            "priority > 3 queue = 'x'",
            "at position 13: expected AND, OR or end of text after '3' but found 'queue'",
        ),
        (
            "priority",
            "at position 8: expected a comparison (=, <>, <, <=, >, >=, IN, LIKE, BETWEEN or IS NULL) after 'priority' but found end of text",
        ),
        (
            "(priority = 1",
            "at position 13: expected AND, OR or ')' to close the '(' at position 0 after '1' but found end of text",
        ),
        (
            "priority = 1)",
            "at position 12: found ')' without a matching '(' after '1'",
        ),
        (
            "priority = 'high'",
            "at position 11: cannot compare priority (a number) with 'high' (a string)",
        ),
        (
            "priority = '3'",
            "at position 11: cannot compare priority (a number) with '3' (a string); remove the quotes to write a number",
        ),
        (
            "submitted_at > 1000",
            "at position 15: cannot compare submitted_at (a timestamp) with 1000 (a number); write a time as TIMESTAMP '2026-01-01T00:00:00Z'",
        ),
        (
            "queue = 3",
            "at position 8: cannot compare queue (a string) with 3 (a number)",
        ),
        (
            "submitted_at > 'yesterday'",
            "at position 15: 'yesterday' is not a valid timestamp: expected RFC 3339 such as 2026-11-23T13:27:37Z",
        ),
        (
            "x = TIMESTAMP '2026-13-01'",
            "at position 14: '2026-13-01' is not a valid timestamp: expected RFC 3339 such as 2026-11-23T13:27:37Z",
        ),
        (
            "score IN (1, 'a')",
            "at position 13: cannot compare score (a number) with 'a' (a string)",
        ),
        (
            "score IN ()",
            "at position 10: expected a value after '(' but found ')'",
        ),
        (
            "score IN (1 2)",
            "at position 12: expected ',' or ')' after '1' but found '2'",
        ),
        (
            "priority LIKE '1%'",
            "at position 0: LIKE needs a string, but priority is a number",
        ),
        (
            "queue LIKE 5",
            "at position 11: expected a 'pattern' string after 'LIKE' but found '5'",
        ),
        (
            "queue LIKE 'a\\'",
            "at position 11: a LIKE pattern cannot end with the escape character '\\'",
        ),
        (
            "priority BETWEEN 1 OR 2",
            "at position 19: expected AND (BETWEEN low AND high) after '1' but found 'OR'",
        ),
        (
            "priority IS 5",
            "at position 12: expected NULL or NOT NULL after 'IS' but found '5'",
        ),
        (
            "priority NOT = 5",
            "at position 13: expected IN, LIKE or BETWEEN after 'NOT' but found '='",
        ),
        (
            "AND priority = 1",
            "at position 0: expected a condition but found 'AND'",
        ),
        (
            "x = NOW(1)",
            "at position 8: expected ')' (NOW takes no arguments) after '(' but found '1'",
        ),
        (
            "queue = 'abc",
            "at position 8: unterminated string: a closing ' is missing",
        ),
        (
            "queue = \"abc",
            "at position 8: unterminated quoted name: a closing \" is missing",
        ),
        (
            long.as_str(),
            "at position 16384: text is longer than the limit of 16384 bytes",
        ),
        (
            deep.as_str(),
            "at position 64: nested deeper than 64 levels of parentheses and NOT; simplify the condition",
        ),
        (
            nots.as_str(),
            "at position 256: nested deeper than 64 levels of parentheses and NOT; simplify the condition",
        ),
    ];
    for (text, expected) in cases {
        check_err(text, expected);
    }
}

#[test]
fn parses_order_clauses() {
    let o = OrderBy::parse(
        "priority DESC, score, \"Segment\" asc, _time_in_queue desc",
        &custom(),
    )
    .expect("parses");
    let props: Vec<(Prop, bool)> = o.terms().iter().map(|t| (t.prop.clone(), t.desc)).collect();
    assert_eq!(
        props,
        vec![
            (Prop::System(SysProp::Priority), true),
            (Prop::Custom(custom()[1].clone()), false),
            (Prop::UserData("Segment".into()), false),
            (Prop::TimeInQueue, true),
        ]
    );
    assert!(o.is_time_dependent());
    assert_eq!(OrderBy::parse("  ", &[]).map(|o| o.terms().len()), Ok(0));
    for (text, expected) in [
        (
            "priority desc,",
            "at position 14: expected a property name after ',' but found end of text",
        ),
        (
            "priority up",
            "at position 9: expected ',', ASC, DESC or end of text after 'priority' but found 'up'",
        ),
        ("AND", "at position 0: expected a property name but found 'AND'"),
    ] {
        assert_eq!(
            OrderBy::parse(text, &[]).map_err(|e| e.to_string()),
            Err(expected.to_owned()),
            "{text}"
        );
    }
}

#[test]
fn sort_keys_order_nulls_and_ties() {
    let order = OrderBy::parse("service_objective asc, priority desc", &[]).expect("parses");
    let mk = |seq: u64, so: Option<i64>, prio: i64| {
        let mut ix = sample();
        ix.submit_seq = seq;
        ix.service_objective = so;
        ix.priority = prio;
        ix
    };
    let mut ixs = [
        mk(1, None, 1),
        mk(2, Some(-5), 1),
        mk(3, Some(10), 3),
        mk(4, Some(10), 3),
        mk(5, Some(10), 9),
    ];
    ixs.reverse();
    ixs.sort_by_key(|ix| order.sort_key(ix, NOW));
    let seqs: Vec<u64> = ixs.iter().map(|ix| ix.submit_seq).collect();
    assert_eq!(seqs, [2, 5, 3, 4, 1]);
}

// ---- property tests ----

/// Compares two interactions the way the clause says, straight from values (the oracle).
fn compare_by_clause(order: &OrderBy, a: &Interaction, b: &Interaction) -> Ordering {
    for term in order.terms() {
        let (va, vb) = (
            eval::prop_value(&term.prop, a, NOW),
            eval::prop_value(&term.prop, b, NOW),
        );
        let rank = |v: &eval::Val<'_>| match v {
            eval::Val::Null | eval::Val::Opaque => 2,
            eval::Val::Str(_) => 1,
            _ => 0,
        };
        let ord = match (va, vb) {
            _ if rank(&va) == 2 && rank(&vb) == 2 => Ordering::Equal,
            _ if rank(&va) != rank(&vb) => rank(&va).cmp(&rank(&vb)),
            _ => eval::compare(va, vb).unwrap_or(Ordering::Equal),
        };
        let ord = if term.desc { ord.reverse() } else { ord };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.submit_seq.cmp(&b.submit_seq)
}

fn arb_interaction() -> impl Strategy<Value = Interaction> {
    let small_str = prop::sample::select(vec!["", "a", "a\0", "\0", "ab", "b", "é", "Z", "aa"]);
    (
        any::<u64>(),
        any::<i64>(),
        prop::option::of(-3i64..3),
        prop::option::of(small_str.clone()),
        prop::option::of(prop_oneof![
            small_str.prop_map(|s| Value::Str(s.to_owned())),
            any::<i64>().prop_map(Value::Int)
        ]),
        prop::option::of(-5_000_000i64..5_000_000),
        any::<bool>(),
    )
        .prop_map(|(seq, prio, so, queue, seg, placed, queued)| {
            let mut ix = sample();
            ix.submit_seq = seq;
            ix.priority = prio;
            ix.service_objective = so;
            ix.queue = queue.map(Name::new);
            ix.user_data = UserData::new();
            if let Some(v) = seg {
                ix.user_data.push("Segment", v);
            }
            ix.placed_in_queue_at = placed.map(|ms| NOW.plus_millis(-ms));
            ix.state = if queued {
                InteractionState::Queued
            } else {
                InteractionState::Routing
            };
            ix
        })
}

fn arb_order() -> impl Strategy<Value = OrderBy> {
    let term = (
        prop::sample::select(vec![
            "priority",
            "service_objective",
            "queue",
            "Segment",
            "_time_in_queue",
            "submit_seq",
        ]),
        any::<bool>(),
    );
    prop::collection::vec(term, 0..4).prop_map(|terms| {
        let text: Vec<String> = terms
            .iter()
            .map(|(p, d)| format!("{p} {}", if *d { "DESC" } else { "ASC" }))
            .collect();
        OrderBy::parse(&text.join(", "), &[]).expect("generated order parses")
    })
}

/// A fragment soup close to valid conditions, to reach deep into the parser.
fn arb_soup() -> impl Strategy<Value = String> {
    let frag = prop::sample::select(vec![
        "priority",
        "queue",
        "Segment",
        "\"Customer Name\"",
        "_time_in_queue[]",
        "_age",
        "score",
        "submitted_at",
        "=",
        "<>",
        "!=",
        "<",
        ">=",
        "==",
        "(",
        ")",
        ",",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "IS",
        "NULL",
        "BETWEEN",
        "TRUE",
        "FALSE",
        "NOW()",
        "NOW",
        "TIMESTAMP",
        "'2026-01-01T00:00:00Z'",
        "'sales'",
        "'a''b'",
        "'%a_\\%'",
        "3",
        "-7",
        "2.5",
        "1e3",
        "'",
        "\"",
        "[]",
        "é",
        ";",
    ]);
    prop::collection::vec(frag, 0..24).prop_map(|v| v.join(" "))
}

fn arb_literal_for(kind: u8) -> BoxedStrategy<Literal> {
    match kind {
        0 => prop_oneof![
            any::<i64>().prop_map(Literal::Int),
            (-1e6f64..1e6).prop_map(Literal::Decimal),
            any::<bool>().prop_map(Literal::Bool),
            Just(Literal::Null)
        ]
        .boxed(),
        1 => prop_oneof!["[a-z' %_\\\\é]{0,6}".prop_map(Literal::Str), Just(Literal::Null)].boxed(),
        _ => prop_oneof![
            (0i64..4_000_000_000_000).prop_map(|ms| Literal::Ts(Timestamp(ms))),
            Just(Literal::Now)
        ]
        .boxed(),
    }
}

/// Props by kind: 0 number, 1 string, 2 timestamp (user data fits any).
fn arb_prop_for(kind: u8) -> BoxedStrategy<Prop> {
    let ud = "[A-Za-z][A-Za-z0-9 \"]{0,6}"
        .prop_filter("not a bound name", |k: &String| {
            SysProp::lookup(k).is_none()
                && !custom().iter().any(|c| c.name.eq_ignore_ascii_case(k))
                && !k.eq_ignore_ascii_case("_age")
                && !k.eq_ignore_ascii_case("_time_in_queue")
        })
        .prop_map(Prop::UserData);
    let fixed: Vec<Prop> = match kind {
        0 => vec![
            Prop::System(SysProp::Priority),
            Prop::System(SysProp::IsOnline),
            Prop::Custom(custom()[1].clone()),
            Prop::TimeInQueue,
            Prop::Age,
        ],
        1 => vec![
            Prop::System(SysProp::Queue),
            Prop::System(SysProp::InteractionType),
            Prop::Custom(custom()[0].clone()),
        ],
        _ => vec![
            Prop::System(SysProp::SubmittedAt),
            Prop::Custom(custom()[2].clone()),
        ],
    };
    prop_oneof![prop::sample::select(fixed), ud].boxed()
}

fn arb_predicate() -> impl Strategy<Value = Expr> {
    (0u8..3).prop_flat_map(|kind| {
        let prop = arb_prop_for(kind).prop_map(Operand::Prop);
        let lit = arb_literal_for(kind).prop_map(Operand::Lit);
        let neg = any::<bool>();
        let ops = prop::sample::select(vec![
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ]);
        let like_ok = kind == 1;
        prop_oneof![
            (ops, prop.clone(), lit.clone()).prop_map(|(op, lhs, rhs)| Expr::Compare { op, lhs, rhs }),
            (prop.clone(), prop::collection::vec(lit.clone(), 1..4), neg).prop_map(
                |(operand, list, negated)| Expr::In {
                    operand,
                    list,
                    negated
                }
            ),
            (prop.clone(), neg).prop_map(|(operand, negated)| Expr::IsNull { operand, negated }),
            (prop.clone(), lit.clone(), lit, neg).prop_map(|(operand, low, high, negated)| Expr::Between {
                operand,
                low,
                high,
                negated
            }),
            (prop, "[a-z%_]{0,5}", neg).prop_map(move |(operand, pattern, negated)| if like_ok {
                Expr::Like {
                    operand,
                    pattern,
                    negated,
                }
            } else {
                Expr::IsNull { operand, negated }
            }),
        ]
    })
}

fn arb_expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        arb_predicate(),
        any::<bool>().prop_map(|b| Expr::Literal(Literal::Bool(b)))
    ];
    leaf.prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

proptest! {
    #[test]
    fn never_panics_on_any_text(text in "\\PC{0,64}") {
        if let Err(e) = Condition::parse(&text, &custom()) {
            prop_assert!(e.pos <= text.len());
        }
        let _ = OrderBy::parse(&text, &custom());
    }

    #[test]
    fn soup_never_panics_and_what_parses_reprints(text in arb_soup()) {
        match Condition::parse(&text, &custom()) {
            Err(e) => prop_assert!(e.pos <= text.len(), "{} for {text:?}", e),
            Ok(c) => {
                let _ = c.eval(&sample(), NOW);
                let printed = c.expr().to_string();
                let again = Condition::parse(&printed, &custom());
                prop_assert_eq!(again.as_ref().map(Condition::expr), Ok(c.expr()), "{}", printed);
            }
        }
    }

    #[test]
    fn printed_trees_parse_back(e in arb_expr()) {
        let printed = e.to_string();
        let parsed = Condition::parse(&printed, &custom());
        prop_assert_eq!(parsed.as_ref().map(Condition::expr), Ok(&e), "{}", printed);
    }

    #[test]
    fn not_is_the_sql_complement(e in arb_expr(), ix in arb_interaction()) {
        let v = eval::eval3(&e, &ix, NOW);
        prop_assert_eq!(eval::eval3(&Expr::Not(Box::new(e)), &ix, NOW), v.map(|b| !b));
    }

    #[test]
    fn sort_keys_order_as_the_clause(order in arb_order(), mut ixs in prop::collection::vec(arb_interaction(), 0..12)) {
        let mut by_key = ixs.clone();
        by_key.sort_by_cached_key(|ix| order.sort_key(ix, NOW));
        ixs.sort_by(|a, b| compare_by_clause(&order, a, b));
        let seq = |v: &[Interaction]| v.iter().map(|ix| ix.submit_seq).collect::<Vec<_>>();
        prop_assert_eq!(seq(&by_key), seq(&ixs), "{}", order.text());
    }

    #[test]
    fn like_matches_a_regex_oracle(s in "[ab%_]{0,8}", p in "[ab%_]{0,6}") {
        // Oracle: backtracking over chars, fine for these tiny inputs.
        fn oracle(s: &[char], p: &[char]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some(('%', rest)) => (0..=s.len()).any(|i| oracle(&s[i..], rest)),
                Some(('_', rest)) => !s.is_empty() && oracle(&s[1..], rest),
                Some((c, rest)) => s.first() == Some(c) && oracle(&s[1..], rest),
            }
        }
        let (sc, pc): (Vec<char>, Vec<char>) = (s.chars().collect(), p.chars().collect());
        prop_assert_eq!(eval::like(&s, &p), oracle(&sc, &pc));
    }
}
