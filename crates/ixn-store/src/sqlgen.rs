//! Compiles bound conditions and orders of the model's condition language into SQL for SQLite
//! and PostgreSQL. Pure functions, no I/O. Every literal a user wrote becomes a numbered
//! parameter; only column names from the property catalogue (and validated custom-property
//! names) and fixed keywords are ever written into the statement text.
//!
//! The SQL is built to give exactly the in-memory result of [`Condition::eval`]: SQL's
//! three-valued logic is the same, LIKE stays case-sensitive on SQLite (compiled to GLOB), string
//! ranges and orders compare bytewise on PostgreSQL (`COLLATE "C"`), and the pseudo-properties
//! are computed from the `now` given. User-data keys that are not custom properties have no
//! column, so conditions using them are refused.

use std::fmt;

use ixn_model::condition::{CmpOp, Condition, Expr, Literal, Operand, OrderBy, Prop};
use ixn_model::{CustomType, SysPropType, Timestamp};

/// Which SQL to write.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// One bound parameter. Timestamps are integer milliseconds, as in the table.
#[derive(Clone, PartialEq, Debug)]
pub enum SqlParam {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// Why a condition or order cannot run in the store (the client's fault).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SqlGenError(pub String);

impl fmt::Display for SqlGenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlGenError {}

/// Compiles a condition to a boolean SQL expression and its parameters, numbered from
/// `first_param` (`?N` for SQLite, `$N` for PostgreSQL). `now` is the time `_time_in_queue`,
/// `_age` and `NOW()` are computed against.
pub fn compile_where(
    cond: &Condition,
    dialect: Dialect,
    first_param: usize,
    now: Timestamp,
) -> Result<(String, Vec<SqlParam>), SqlGenError> {
    let mut g = Gen {
        dialect,
        first_param,
        now,
        now_placeholder: None,
        params: Vec::new(),
    };
    let sql = g.expr(cond.expr())?;
    Ok((sql, g.params))
}

/// Compiles an order to an ORDER BY list (without the keywords), always ending with the
/// `submit_seq ASC` tie-breaker that views use. NULLs go last ascending and first descending,
/// like [`OrderBy::sort_key`].
pub fn compile_order(order: &OrderBy, dialect: Dialect) -> Result<String, SqlGenError> {
    let mut parts = Vec::with_capacity(order.terms().len() + 1);
    for term in order.terms() {
        let column = column_for(&term.prop)?;
        let collate = collate(dialect, is_text(&term.prop));
        let dir = if term.desc {
            "DESC NULLS FIRST"
        } else {
            "ASC NULLS LAST"
        };
        parts.push(format!("{column}{collate} {dir}"));
    }
    parts.push("submit_seq ASC".to_owned());
    Ok(parts.join(", "))
}

/// The column holding a property. Pseudo-properties and plain user-data keys have none.
pub fn column_for(prop: &Prop) -> Result<String, SqlGenError> {
    match prop {
        Prop::System(p) if p.column() == "type" => Ok("\"type\"".to_owned()),
        Prop::System(p) => Ok(p.column().to_owned()),
        Prop::Custom(c) => {
            let mut chars = c.name.chars();
            let plain = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if plain {
                Ok(format!("cp_{}", c.name))
            } else {
                Err(SqlGenError(format!(
                    "custom property name {:?} is not a plain SQL identifier",
                    c.name
                )))
            }
        }
        Prop::UserData(key) => Err(SqlGenError(format!(
            "user-data key {key:?} is not a custom property; only system and custom properties can be used in store queries"
        ))),
        Prop::TimeInQueue | Prop::Age => Err(SqlGenError(format!(
            "{prop} depends on the current time and has no column; order by placed_in_queue_at or submitted_at instead"
        ))),
    }
}

/// Whether a property holds text (string ranges and orders need a bytewise collation).
fn is_text(prop: &Prop) -> bool {
    match prop {
        Prop::System(p) => p.ty() == SysPropType::Str,
        Prop::Custom(c) => c.ty == CustomType::String,
        _ => false,
    }
}

fn collate(dialect: Dialect, text: bool) -> &'static str {
    if text && dialect == Dialect::Postgres {
        " COLLATE \"C\""
    } else {
        ""
    }
}

struct Gen {
    dialect: Dialect,
    first_param: usize,
    now: Timestamp,
    /// The placeholder of `now`, bound once and reused by every time-dependent operand.
    now_placeholder: Option<String>,
    params: Vec<SqlParam>,
}

impl Gen {
    /// Adds a parameter and returns its placeholder. PostgreSQL placeholders carry their type,
    /// so the server never has to guess it (as in `$1 = $2` or `$1 IS NULL`).
    fn param(&mut self, p: SqlParam) -> String {
        let n = self.first_param + self.params.len();
        let cast = match &p {
            SqlParam::Int(_) => "::BIGINT",
            SqlParam::Real(_) => "::DOUBLE PRECISION",
            SqlParam::Text(_) | SqlParam::Null => "::TEXT",
        };
        self.params.push(p);
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}{cast}"),
        }
    }

    fn now(&mut self) -> String {
        if let Some(p) = &self.now_placeholder {
            return p.clone();
        }
        let p = self.param(SqlParam::Int(self.now.millis()));
        self.now_placeholder = Some(p.clone());
        p
    }

    /// Whole seconds from `since` to now, 0 when `since` is later, NULL when `since` is NULL
    /// (as `Timestamp::seconds_until(..).max(0)` computes in memory).
    fn seconds_since(&mut self, since: &str) -> String {
        let now = self.now();
        format!("(CASE WHEN {since} > {now} THEN 0 ELSE ({now} - {since}) / 1000 END)")
    }

    fn operand(&mut self, o: &Operand) -> Result<String, SqlGenError> {
        Ok(match o {
            Operand::Prop(Prop::TimeInQueue) => {
                let secs = self.seconds_since("placed_in_queue_at");
                format!("(CASE WHEN state = 'queued' THEN {secs} END)")
            }
            Operand::Prop(Prop::Age) => self.seconds_since("COALESCE(received_at, submitted_at)"),
            Operand::Prop(p) => column_for(p)?,
            Operand::Lit(l) => match l {
                // NULL is a keyword, not a user value; writing it keeps its type open.
                Literal::Null => "NULL".to_owned(),
                Literal::Bool(b) => self.param(SqlParam::Int(i64::from(*b))),
                Literal::Int(i) => self.param(SqlParam::Int(*i)),
                Literal::Decimal(d) => self.param(SqlParam::Real(*d)),
                Literal::Str(s) => self.param(SqlParam::Text(s.clone())),
                Literal::Ts(t) => self.param(SqlParam::Int(t.millis())),
                Literal::Now => self.now(),
            },
        })
    }

    /// An operand on the left of a range comparison: with `COLLATE "C"` on PostgreSQL when text.
    fn ranged(&mut self, o: &Operand) -> Result<String, SqlGenError> {
        let text = match o {
            Operand::Prop(p) => is_text(p),
            Operand::Lit(l) => matches!(l, Literal::Str(_)),
        };
        Ok(format!("{}{}", self.operand(o)?, collate(self.dialect, text)))
    }

    fn expr(&mut self, e: &Expr) -> Result<String, SqlGenError> {
        let not = |negated: bool| if negated { "NOT " } else { "" };
        Ok(match e {
            Expr::Literal(Literal::Bool(true)) => "(1 = 1)".to_owned(),
            Expr::Literal(Literal::Bool(false)) => "(1 = 0)".to_owned(),
            Expr::Literal(Literal::Null) => "(1 = NULL)".to_owned(),
            Expr::Literal(l) => return Err(SqlGenError(format!("{l} is a value, not a condition"))),
            Expr::And(items) => self.join(items, " AND ")?,
            Expr::Or(items) => self.join(items, " OR ")?,
            Expr::Not(inner) => format!("(NOT {})", self.wrapped(inner)?),
            Expr::Compare { op, lhs, rhs } => {
                let lhs = if matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    self.operand(lhs)?
                } else {
                    self.ranged(lhs)?
                };
                format!("{lhs} {} {}", op.as_sql(), self.operand(rhs)?)
            }
            Expr::In {
                operand,
                list,
                negated,
            } => {
                let x = self.operand(operand)?;
                let items = list
                    .iter()
                    .map(|o| self.operand(o))
                    .collect::<Result<Vec<_>, _>>()?;
                format!("{x} {}IN ({})", not(*negated), items.join(", "))
            }
            Expr::Like {
                operand,
                pattern,
                negated,
            } => {
                let x = self.operand(operand)?;
                match self.dialect {
                    Dialect::Sqlite => {
                        let p = self.param(SqlParam::Text(like_to_glob(pattern)));
                        format!("{x} {}GLOB {p}", not(*negated))
                    }
                    Dialect::Postgres => {
                        let p = self.param(SqlParam::Text(pattern.clone()));
                        format!("{x} {}LIKE {p}", not(*negated))
                    }
                }
            }
            Expr::IsNull { operand, negated } => {
                format!("{} IS {}NULL", self.operand(operand)?, not(*negated))
            }
            Expr::Between {
                operand,
                low,
                high,
                negated,
            } => {
                let x = self.ranged(operand)?;
                format!(
                    "{x} {}BETWEEN {} AND {}",
                    not(*negated),
                    self.operand(low)?,
                    self.operand(high)?
                )
            }
        })
    }

    /// A sub-expression in parentheses unless it already has them.
    fn wrapped(&mut self, e: &Expr) -> Result<String, SqlGenError> {
        let sql = self.expr(e)?;
        Ok(
            if matches!(e, Expr::And(_) | Expr::Or(_) | Expr::Not(_) | Expr::Literal(_)) {
                sql
            } else {
                format!("({sql})")
            },
        )
    }

    fn join(&mut self, items: &[Expr], sep: &str) -> Result<String, SqlGenError> {
        let parts = items
            .iter()
            .map(|e| self.wrapped(e))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(format!("({})", parts.join(sep)))
    }
}

/// Translates a LIKE pattern (`%`, `_`, `\` escapes) to an equivalent SQLite GLOB pattern, which
/// is case-sensitive where SQLite's LIKE is not: `%` → `*`, `_` → `?`, and the GLOB
/// metacharacters `*`, `?`, `[` are matched literally through one-character classes.
pub fn like_to_glob(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let literal = match c {
            '%' => {
                out.push('*');
                continue;
            }
            '_' => {
                out.push('?');
                continue;
            }
            '\\' => chars.next().unwrap_or('\\'),
            c => c,
        };
        match literal {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(literal);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use ixn_model::{CustomProperty, Interaction, InteractionId, InteractionState, Name, UserData, Value};
    use rusqlite::Connection;
    use rusqlite::types::Value as SqlValue;

    use super::*;

    const NOW: Timestamp = Timestamp(1_767_225_600_000);

    fn custom() -> Vec<CustomProperty> {
        vec![
            CustomProperty {
                name: "lang".into(),
                key: "Lang".into(),
                ty: CustomType::String,
            },
            CustomProperty {
                name: "score".into(),
                key: "Score".into(),
                ty: CustomType::Integer,
            },
        ]
    }

    fn cond(text: &str) -> Condition {
        Condition::parse(text, &custom()).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn int(i: i64) -> SqlParam {
        SqlParam::Int(i)
    }

    fn text(s: &str) -> SqlParam {
        SqlParam::Text(s.to_owned())
    }

    #[test]
    fn compiles_conditions_for_both_dialects() {
        let q = "(CASE WHEN state = 'queued' THEN (CASE WHEN placed_in_queue_at > ?3 THEN 0 ELSE (?3 - placed_in_queue_at) / 1000 END) END)";
        let cases: Vec<(&str, &str, &str, Vec<SqlParam>)> = vec![
            ("", "(1 = 1)", "(1 = 1)", vec![]),
            (
                "priority > 3",
                "priority > ?3",
                "priority > $3::BIGINT",
                vec![int(3)],
            ),
            (
                "priority > 3 AND media_type = 'chat'",
                "((priority > ?3) AND (media_type = ?4))",
                "((priority > $3::BIGINT) AND (media_type = $4::TEXT))",
                vec![int(3), text("chat")],
            ),
            (
                "NOT (score = 1 OR TRUE)",
                "(NOT ((cp_score = ?3) OR (1 = 1)))",
                "(NOT ((cp_score = $3::BIGINT) OR (1 = 1)))",
                vec![int(1)],
            ),
            (
                "type = 'x'",
                "\"type\" = ?3",
                "\"type\" = $3::TEXT",
                vec![text("x")],
            ),
            (
                "queue < 'm'",
                "queue < ?3",
                "queue COLLATE \"C\" < $3::TEXT",
                vec![text("m")],
            ),
            (
                "priority = 2.5",
                "priority = ?3",
                "priority = $3::DOUBLE PRECISION",
                vec![SqlParam::Real(2.5)],
            ),
            (
                "is_online = TRUE",
                "is_online = ?3",
                "is_online = $3::BIGINT",
                vec![int(1)],
            ),
            ("subtype = NULL", "subtype = NULL", "subtype = NULL", vec![]),
            (
                "subtype IS NOT NULL",
                "subtype IS NOT NULL",
                "subtype IS NOT NULL",
                vec![],
            ),
            (
                "queue NOT IN ('a', NULL, 'b''c')",
                "queue NOT IN (?3, NULL, ?4)",
                "queue NOT IN ($3::TEXT, NULL, $4::TEXT)",
                vec![text("a"), text("b'c")],
            ),
            (
                "queue LIKE 'a%_*'",
                "queue GLOB ?3",
                "queue LIKE $3::TEXT",
                vec![text("a%_*")],
            ),
            (
                "priority NOT BETWEEN 1 AND 5",
                "priority NOT BETWEEN ?3 AND ?4",
                "priority NOT BETWEEN $3::BIGINT AND $4::BIGINT",
                vec![int(1), int(5)],
            ),
            (
                "submitted_at > '2026-01-01T00:00:00Z'",
                "submitted_at > ?3",
                "submitted_at > $3::BIGINT",
                vec![int(1_767_225_600_000)],
            ),
            (
                "scheduled_at <= NOW() AND submitted_at < NOW()",
                "((scheduled_at <= ?3) AND (submitted_at < ?3))",
                "((scheduled_at <= $3::BIGINT) AND (submitted_at < $3::BIGINT))",
                vec![int(NOW.millis())],
            ),
            (
                "_time_in_queue[] > 4320",
                "",
                "",
                vec![int(NOW.millis()), int(4320)],
            ),
            (
                "'a' = 'a'",
                "?3 = ?4",
                "$3::TEXT = $4::TEXT",
                vec![text("a"), text("a")],
            ),
        ];
        for (input, sqlite, pg, params) in cases {
            let c = cond(input);
            let (s, sp) =
                compile_where(&c, Dialect::Sqlite, 3, NOW).unwrap_or_else(|e| panic!("{input}: {e}"));
            let (p, pp) =
                compile_where(&c, Dialect::Postgres, 3, NOW).unwrap_or_else(|e| panic!("{input}: {e}"));
            if input.starts_with("_time_in_queue") {
                assert_eq!(s, format!("{q} > ?4"), "{input}");
                assert_eq!(
                    p,
                    format!("{} > $4::BIGINT", q.replace("?3", "$3::BIGINT")),
                    "{input}"
                );
            } else {
                assert_eq!(s, sqlite, "{input}");
                assert_eq!(p, pg, "{input}");
            }
            let expected_sqlite = match input {
                "queue LIKE 'a%_*'" => vec![text("a*?[*]")],
                _ => params.clone(),
            };
            assert_eq!(sp, expected_sqlite, "{input}");
            assert_eq!(pp, params, "{input}");
        }
    }

    #[test]
    fn refuses_what_has_no_column() {
        let err =
            |text: &str| compile_where(&cond(text), Dialect::Postgres, 1, NOW).map_err(|e| e.to_string());
        assert_eq!(
            err("Segment = 'gold'"),
            Err("user-data key \"Segment\" is not a custom property; only system and custom properties can be used in store queries".to_owned())
        );
        let order = OrderBy::parse("_age desc", &[]).expect("parses");
        assert!(compile_order(&order, Dialect::Sqlite).is_err());
    }

    #[test]
    fn compiles_orders() {
        let cases = [
            ("", "submit_seq ASC", "submit_seq ASC"),
            (
                "priority desc, submitted_at",
                "priority DESC NULLS FIRST, submitted_at ASC NULLS LAST, submit_seq ASC",
                "priority DESC NULLS FIRST, submitted_at ASC NULLS LAST, submit_seq ASC",
            ),
            (
                "lang asc, type desc",
                "cp_lang ASC NULLS LAST, \"type\" DESC NULLS FIRST, submit_seq ASC",
                "cp_lang COLLATE \"C\" ASC NULLS LAST, \"type\" COLLATE \"C\" DESC NULLS FIRST, submit_seq ASC",
            ),
        ];
        for (input, sqlite, pg) in cases {
            let order = OrderBy::parse(input, &custom()).expect("parses");
            assert_eq!(
                compile_order(&order, Dialect::Sqlite),
                Ok(sqlite.to_owned()),
                "{input}"
            );
            assert_eq!(
                compile_order(&order, Dialect::Postgres),
                Ok(pg.to_owned()),
                "{input}"
            );
        }
    }

    #[test]
    fn like_patterns_translate_to_glob() {
        for (like, glob) in [
            ("a%b_c", "a*b?c"),
            ("\\%\\_\\\\", "%_\\"),
            ("*?[]", "[*][?][[]]"),
            ("é_", "é?"),
        ] {
            assert_eq!(like_to_glob(like), glob, "{like}");
        }
    }

    // ---- SQLite agrees with in-memory evaluation ----

    fn interaction(seq: u64, f: impl FnOnce(&mut Interaction)) -> Interaction {
        let mut ix = Interaction {
            id: InteractionId::parse(&format!("ix{seq}")).expect("valid id"),
            tenant: Name::new("t"),
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
            external_id: None,
            priority: 5,
            service_objective: None,
            submitted_by: Name::new("ms"),
            assigned_to: None,
            submit_seq: seq,
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
            user_data: UserData::new(),
        };
        f(&mut ix);
        ix
    }

    fn sample() -> Vec<Interaction> {
        vec![
            interaction(1, |_| {}),
            interaction(2, |ix| {
                ix.priority = -3;
                ix.queue = Some(Name::new("Sales"));
                ix.subtype = Some(Name::new("a*b"));
                ix.user_data.push("Lang", Value::Str("fr".into()));
                ix.user_data.push("Score", Value::Int(17));
            }),
            interaction(3, |ix| {
                ix.state = InteractionState::Handling;
                ix.queue = None;
                ix.service_objective = Some(30);
                ix.received_at = Some(NOW.plus_millis(-7_200_000));
                ix.user_data.push("Lang", Value::Str("Fr".into()));
                ix.user_data.push("Score", Value::Str("x".into()));
            }),
            interaction(4, |ix| {
                ix.placed_in_queue_at = Some(NOW.plus_millis(5_000));
                ix.subtype = Some(Name::new("a%b"));
                ix.scheduled_at = Some(NOW.plus_millis(1));
                ix.is_online = false;
            }),
        ]
    }

    /// A table with the columns these tests use, filled like the store fills its own.
    fn table(ixs: &[Interaction]) -> Connection {
        let conn = Connection::open_in_memory().expect("sqlite");
        conn.execute_batch(
            "CREATE TABLE interactions (id TEXT, media_type TEXT, \"type\" TEXT, subtype TEXT, queue TEXT, \
             state TEXT, is_online INTEGER, priority BIGINT, service_objective BIGINT, submit_seq BIGINT, \
             received_at BIGINT, submitted_at BIGINT, placed_in_queue_at BIGINT, scheduled_at BIGINT, \
             cp_lang TEXT, cp_score BIGINT)",
        )
        .expect("create");
        for ix in ixs {
            let v = |s: ixn_model::Scalar<'_>| match s {
                ixn_model::Scalar::Null => SqlValue::Null,
                ixn_model::Scalar::Int(i) => SqlValue::Integer(i),
                ixn_model::Scalar::Str(s) => SqlValue::Text(s.to_owned()),
                ixn_model::Scalar::Ts(t) => SqlValue::Integer(t.millis()),
            };
            use ixn_model::SysProp as P;
            let mut row: Vec<SqlValue> = [
                P::Id,
                P::MediaType,
                P::InteractionType,
                P::Subtype,
                P::Queue,
                P::State,
                P::IsOnline,
                P::Priority,
                P::ServiceObjective,
                P::SubmitSeq,
                P::ReceivedAt,
                P::SubmittedAt,
                P::PlacedInQueueAt,
                P::ScheduledAt,
            ]
            .into_iter()
            .map(|p| v(ix.system(p)))
            .collect();
            row.extend(
                custom()
                    .iter()
                    .map(|c| v(ixn_model::condition::custom_value(c, &ix.user_data))),
            );
            conn.execute(
                "INSERT INTO interactions VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                rusqlite::params_from_iter(row),
            )
            .expect("insert");
        }
        conn
    }

    fn sql_select(conn: &Connection, where_: &str, params: Vec<SqlParam>, order: &str) -> Vec<u64> {
        let mut values = vec![SqlValue::Null];
        values.extend(params.into_iter().map(|p| match p {
            SqlParam::Null => SqlValue::Null,
            SqlParam::Int(i) => SqlValue::Integer(i),
            SqlParam::Real(r) => SqlValue::Real(r),
            SqlParam::Text(s) => SqlValue::Text(s),
        }));
        let sql =
            format!("SELECT submit_seq FROM interactions WHERE ?1 IS NULL AND ({where_}) ORDER BY {order}");
        let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values), |r| r.get::<_, i64>(0))
            .expect("query");
        rows.map(|r| r.expect("row") as u64).collect()
    }

    #[test]
    fn sqlite_agrees_with_eval() {
        let ixs = sample();
        let conn = table(&ixs);
        let conditions = [
            "",
            "priority > 0",
            "priority > -4 AND priority < 5.5",
            "queue = 'sales'",
            "queue <> 'sales'",
            "queue IS NULL OR queue > 'S'",
            "NOT queue IN ('sales', NULL)",
            "queue NOT IN ('x')",
            "queue LIKE 's%'",
            "queue NOT LIKE '_ales'",
            "subtype LIKE 'a*%'",
            "subtype LIKE 'a\\%b'",
            "lang = 'fr'",
            "lang LIKE 'f%'",
            "score > 10",
            "score IS NULL",
            "service_objective BETWEEN 10 AND 40",
            "service_objective NOT BETWEEN 10 AND 20",
            "_time_in_queue > 100",
            "_time_in_queue = 0",
            "_time_in_queue IS NULL",
            "_age >= 7200",
            "_age BETWEEN 500 AND 700",
            "scheduled_at IS NULL OR scheduled_at <= NOW()",
            "received_at < submitted_at",
            "is_online = FALSE",
            "NOT (priority = 5 AND subtype IS NULL)",
            "state IN ('queued', 'routing') AND type = 'Inbound'",
        ];
        for text in conditions {
            let c = cond(text);
            let expected: Vec<u64> = ixs
                .iter()
                .filter(|ix| c.eval(ix, NOW))
                .map(|ix| ix.submit_seq)
                .collect();
            let (w, params) = compile_where(&c, Dialect::Sqlite, 2, NOW).expect("compiles");
            assert_eq!(
                sql_select(&conn, &w, params, "submit_seq"),
                expected,
                "{text} => {w}"
            );
        }
        let orders = [
            "priority desc",
            "service_objective asc",
            "service_objective desc, priority",
            "queue",
            "lang desc, score",
        ];
        for text in orders {
            let order = OrderBy::parse(text, &custom()).expect("parses");
            let mut expected = ixs.clone();
            expected.sort_by_key(|ix| order.sort_key(ix, NOW));
            let expected: Vec<u64> = expected.iter().map(|ix| ix.submit_seq).collect();
            let sql = compile_order(&order, Dialect::Sqlite).expect("compiles");
            assert_eq!(
                sql_select(&conn, "1 = 1", vec![], &sql),
                expected,
                "{text} => {sql}"
            );
        }
    }
}
