//! The mapping between an [`Interaction`] and a row of the `interactions` table, shared by both
//! engines: the column list, how a row decodes back into an interaction, and how custom-property
//! columns are filled from user data. Engines bind and read values; they do not decide them here.
//!
//! Custom-property columns are write-only copies of a user-data value, kept so that `find`
//! can filter and sort on them; reads rebuild the interaction from the system columns and the
//! encoded user data alone.

use ixn_model::condition::OrderBy;
use ixn_model::{
    CustomProperty, Interaction, InteractionId, InteractionState, Name, Scalar, SysProp, Timestamp, UserData,
    WorkbinRef,
};

use crate::StoreError;
use crate::sqlgen::{self, Dialect};

/// Every system column in table order; `user_data` follows them in every row this crate reads
/// and writes. A unit test checks that this covers [`SysProp::ALL`], so a property added to the
/// model without a column here fails the build's tests rather than vanishing silently.
pub(crate) const COLUMNS: [SysProp; 29] = [
    SysProp::Id,
    SysProp::Tenant,
    SysProp::MediaType,
    SysProp::InteractionType,
    SysProp::Subtype,
    SysProp::Queue,
    SysProp::Workbin,
    SysProp::WorkbinOwner,
    SysProp::State,
    SysProp::IsOnline,
    SysProp::IsLocked,
    SysProp::IsHeld,
    SysProp::ParentId,
    SysProp::ExternalId,
    SysProp::Priority,
    SysProp::ServiceObjective,
    SysProp::SubmittedBy,
    SysProp::AssignedTo,
    SysProp::SubmitSeq,
    SysProp::ReceivedAt,
    SysProp::SubmittedAt,
    SysProp::PlacedInQueueAt,
    SysProp::MovedToQueueAt,
    SysProp::DeliveredAt,
    SysProp::AssignedAt,
    SysProp::HeldAt,
    SysProp::ScheduledAt,
    SysProp::CompletedAt,
    SysProp::AbandonedAt,
];

/// Position of the `user_data` column in a row read with [`select_list`].
pub(crate) const USER_DATA: usize = COLUMNS.len();

/// A column name as it must appear in SQL (`type` is a keyword in both dialects).
pub(crate) fn quoted(column: &str) -> String {
    if column == "type" {
        "\"type\"".to_owned()
    } else {
        column.to_owned()
    }
}

/// `id, tenant, …, user_data`: the columns [`decode`] expects, in its order.
pub(crate) fn select_list() -> String {
    let mut cols: Vec<String> = COLUMNS.iter().map(|p| quoted(p.column())).collect();
    cols.push("user_data".to_owned());
    cols.join(", ")
}

/// The SQL column of a custom property, as [`crate::sqlgen::column_for`] names it. Always
/// written unquoted, so PostgreSQL folds it to lower case everywhere alike.
pub(crate) fn custom_column(p: &CustomProperty) -> String {
    format!("cp_{}", p.name)
}

/// Refuses custom-property names that would not be a plain SQL identifier: they are spliced into
/// DDL and statements (identifiers cannot be bound as parameters).
pub(crate) fn check_custom_name(p: &CustomProperty) -> Result<(), StoreError> {
    let mut chars = p.name.chars();
    let ok = p.name.len() <= 60
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Other(format!(
            "custom property name {:?} must be 1 to 60 letters, digits or '_', not starting with a digit",
            p.name
        )))
    }
}

/// The value of a custom-property column, computed from the user-data key on every write.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum CustomValue {
    Null,
    Int(i64),
    Text(String),
}

/// Fills a custom column with exactly the value the model's condition evaluation sees
/// ([`ixn_model::condition::custom_value`]), so a `find` in SQL and a view in memory agree:
/// strings for string columns, integers (or strings of digits) for integer columns, milliseconds
/// or RFC 3339 text for timestamps; anything else, or a missing key, is NULL.
pub(crate) fn custom_value(ud: &UserData, p: &CustomProperty) -> CustomValue {
    match ixn_model::condition::custom_value(p, ud) {
        Scalar::Null => CustomValue::Null,
        Scalar::Int(i) => CustomValue::Int(i),
        Scalar::Ts(t) => CustomValue::Int(t.millis()),
        Scalar::Str(s) => CustomValue::Text(s.to_owned()),
    }
}

/// The ORDER BY list of a query (always ending in submission order).
pub(crate) fn order_sql(order: &OrderBy, dialect: Dialect) -> Result<String, StoreError> {
    sqlgen::compile_order(order, dialect).map_err(|e| StoreError::Query(e.to_string()))
}

/// Reads the `last_event_seq` meta value (absent means no event was ever written).
pub(crate) fn parse_last_seq(value: Option<String>) -> Result<u64, StoreError> {
    value.map_or(Ok(0), |v| {
        v.parse()
            .map_err(|_| StoreError::Corrupt(format!("last_event_seq is {v:?}")))
    })
}

/// Read access to one result row by column position, implemented by each engine's row type.
pub(crate) trait RowRead {
    fn text(&self, i: usize) -> Result<Option<&str>, StoreError>;
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn blob(&self, i: usize) -> Result<Option<&[u8]>, StoreError>;
}

fn need<T>(v: Option<T>, i: usize) -> Result<T, StoreError> {
    v.ok_or_else(|| StoreError::Corrupt(format!("column {} is NULL", COLUMNS[i].column())))
}

fn name<R: RowRead>(r: &R, i: usize) -> Result<Option<Name>, StoreError> {
    Ok(r.text(i)?.map(Name::new))
}

fn ts<R: RowRead>(r: &R, i: usize) -> Result<Option<Timestamp>, StoreError> {
    Ok(r.int(i)?.map(Timestamp::from_millis))
}

fn id(s: &str) -> Result<InteractionId, StoreError> {
    InteractionId::parse(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Rebuilds an interaction from a row read with [`select_list`].
pub(crate) fn decode<R: RowRead>(r: &R) -> Result<Interaction, StoreError> {
    let state_text = need(r.text(8)?, 8)?;
    let state = InteractionState::parse(state_text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown interaction state {state_text:?}")))?;
    let workbin = match (name(r, 6)?, name(r, 7)?) {
        (Some(name), Some(owner)) => Some(WorkbinRef { name, owner }),
        _ => None,
    };
    let user_data = match r.blob(USER_DATA)? {
        Some(bytes) => UserData::decode(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        None => UserData::new(),
    };
    Ok(Interaction {
        id: id(need(r.text(0)?, 0)?)?,
        tenant: need(name(r, 1)?, 1)?,
        media_type: need(name(r, 2)?, 2)?,
        interaction_type: name(r, 3)?,
        subtype: name(r, 4)?,
        queue: name(r, 5)?,
        workbin,
        state,
        is_online: need(r.int(9)?, 9)? != 0,
        is_locked: need(r.int(10)?, 10)? != 0,
        is_held: need(r.int(11)?, 11)? != 0,
        parent_id: r.text(12)?.map(id).transpose()?,
        external_id: r.text(13)?.map(str::to_owned),
        priority: need(r.int(14)?, 14)?,
        service_objective: r.int(15)?,
        submitted_by: need(name(r, 16)?, 16)?,
        assigned_to: name(r, 17)?,
        submit_seq: need(r.int(18)?, 18)? as u64,
        received_at: ts(r, 19)?,
        submitted_at: need(ts(r, 20)?, 20)?,
        placed_in_queue_at: ts(r, 21)?,
        moved_to_queue_at: ts(r, 22)?,
        delivered_at: ts(r, 23)?,
        assigned_at: ts(r, 24)?,
        held_at: ts(r, 25)?,
        scheduled_at: ts(r, 26)?,
        completed_at: ts(r, 27)?,
        abandoned_at: ts(r, 28)?,
        user_data,
    })
}

/// The wall clock, for conditions that depend on the time (`_age`, `_time_in_queue`).
/// The store is an edge of the system, so it may read the clock.
pub(crate) fn now() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    Timestamp::from_millis(ms)
}

/// Converts a `u64` count or limit for SQL, saturating (SQL integers are signed).
pub(crate) fn sql_u64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ixn_model::{CustomType, Value};

    #[test]
    fn columns_cover_every_system_property_once() {
        let mut listed: Vec<_> = COLUMNS.to_vec();
        listed.sort();
        let mut all = SysProp::ALL.to_vec();
        all.sort();
        assert_eq!(listed, all);
    }

    fn prop(ty: CustomType) -> CustomProperty {
        CustomProperty {
            name: "p".into(),
            key: "K".into(),
            ty,
        }
    }

    #[test]
    fn custom_values_follow_the_column_type() {
        use CustomType::*;
        let cases: &[(CustomType, Option<Value>, CustomValue)] = &[
            (
                String,
                Some(Value::Str("gold".into())),
                CustomValue::Text("gold".into()),
            ),
            // As the model evaluates it: a string column holds strings only.
            (String, Some(Value::Int(42)), CustomValue::Null),
            (String, Some(Value::Bin(vec![1])), CustomValue::Null),
            (String, None, CustomValue::Null),
            (Integer, Some(Value::Int(-7)), CustomValue::Int(-7)),
            (Integer, Some(Value::Str(" 12 ".into())), CustomValue::Int(12)),
            (Integer, Some(Value::Str("twelve".into())), CustomValue::Null),
            (Integer, Some(Value::List(UserData::new())), CustomValue::Null),
            (Timestamp, Some(Value::Int(1_000)), CustomValue::Int(1_000)),
            (
                Timestamp,
                Some(Value::Str("1970-01-01T00:00:01.5Z".into())),
                CustomValue::Int(1_500),
            ),
            (Timestamp, Some(Value::Str("yesterday".into())), CustomValue::Null),
        ];
        for (ty, value, expected) in cases {
            let mut ud = UserData::new();
            ud.push("other", Value::Str("x".into()));
            if let Some(v) = value {
                ud.push("K", v.clone());
            }
            assert_eq!(&custom_value(&ud, &prop(*ty)), expected, "{ty:?} {value:?}");
        }
    }

    #[test]
    fn custom_names_must_be_plain_identifiers() {
        for ok in ["segment", "_x", "a1_b", "Segment"] {
            let p = CustomProperty {
                name: ok.into(),
                key: "k".into(),
                ty: CustomType::String,
            };
            assert!(check_custom_name(&p).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", "x\"; drop table t; --", &"a".repeat(61)] {
            let p = CustomProperty {
                name: bad.into(),
                key: "k".into(),
                ty: CustomType::String,
            };
            assert!(check_custom_name(&p).is_err(), "{bad}");
        }
    }
}
