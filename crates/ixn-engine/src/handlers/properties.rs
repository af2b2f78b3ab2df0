//! Requests that change an interaction in place: properties and user data, hold, lock.

use ixn_model::{InteractionId, SysProp, Timestamp, UserData, ValueRef};
use ixn_protocol::{
    ChangeProperties, ErrorCode, PropertyChanges, ProtocolError, Reason, ReportingEventKind as K,
    ServerMessage,
};

use super::{Act, invalid};
use crate::effects::{party_of, view_of};
use crate::{ClientCtx, Engine, Notify, Output};

/// A validated change to one updatable system property.
#[derive(Clone, Debug)]
enum SysChange {
    Priority(i64),
    ServiceObjective(Option<i64>),
    ExternalId(Option<String>),
    ParentId(Option<InteractionId>),
    IsOnline(bool),
    ScheduledAt(Option<Timestamp>),
}

fn as_int(key: &str, v: ValueRef<'_>) -> Result<i64, ProtocolError> {
    match v {
        ValueRef::Int(i) => Ok(i),
        ValueRef::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| invalid(format!("{key}: {s:?} is not an integer"))),
        _ => Err(invalid(format!("{key}: expected an integer"))),
    }
}

fn as_text(key: &str, v: ValueRef<'_>) -> Result<String, ProtocolError> {
    match v {
        ValueRef::Str(s) => Ok(s.to_owned()),
        ValueRef::Int(i) => Ok(i.to_string()),
        _ => Err(invalid(format!("{key}: expected a string"))),
    }
}

fn sys_change(p: SysProp, key: &str, v: ValueRef<'_>) -> Result<SysChange, ProtocolError> {
    Ok(match p {
        SysProp::Priority => SysChange::Priority(as_int(key, v)?),
        SysProp::ServiceObjective => SysChange::ServiceObjective(Some(as_int(key, v)?)),
        SysProp::ExternalId => SysChange::ExternalId(Some(as_text(key, v)?)),
        SysProp::ParentId => SysChange::ParentId(Some(
            InteractionId::parse(&as_text(key, v)?).map_err(|e| invalid(format!("{key}: {e}")))?,
        )),
        SysProp::IsOnline => SysChange::IsOnline(match v {
            ValueRef::Str(s) if s.eq_ignore_ascii_case("true") => true,
            ValueRef::Str(s) if s.eq_ignore_ascii_case("false") => false,
            other => match as_int(key, other)? {
                0 => false,
                1 => true,
                n => return Err(invalid(format!("{key}: {n} is not 0 or 1"))),
            },
        }),
        SysProp::ScheduledAt => SysChange::ScheduledAt(Some(match v {
            ValueRef::Int(ms) => Timestamp(ms),
            other => Timestamp::parse(&as_text(key, other)?).map_err(|e| invalid(format!("{key}: {e}")))?,
        })),
        other => {
            return Err(ProtocolError::new(
                ErrorCode::PropertyNotUpdatable,
                format!("property {key:?} ({}) cannot be changed", other.column()),
            ));
        }
    })
}

/// Splits a property list into system-property changes and user data.
fn split(list: &UserData, sys: &mut Vec<SysChange>, user: &mut UserData) -> Result<(), ProtocolError> {
    for (k, v) in list.iter() {
        match SysProp::lookup(k) {
            Some(p) if p.updatable() => sys.push(sys_change(p, k, v)?),
            Some(p) => {
                return Err(ProtocolError::new(
                    ErrorCode::PropertyNotUpdatable,
                    format!("property {k:?} ({}) cannot be changed", p.column()),
                ));
            }
            None => user.push(k, v.to_owned()),
        }
    }
    Ok(())
}

pub(crate) fn change(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    r: ChangeProperties,
    now: Timestamp,
    out: &mut Output,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, &r.interaction_id)?;
    eng.check_actor(client, eng.ix(slot), Act::Touch)?;
    let mut sys = Vec::new();
    let mut changed = UserData::new();
    let mut added = UserData::new();
    split(&r.changed_properties, &mut sys, &mut changed)?;
    split(&r.added_properties, &mut sys, &mut added)?;
    let mut deleted = Vec::with_capacity(r.deleted_properties.len());
    for k in &r.deleted_properties {
        match SysProp::lookup(k) {
            Some(SysProp::ServiceObjective) => sys.push(SysChange::ServiceObjective(None)),
            Some(SysProp::ExternalId) => sys.push(SysChange::ExternalId(None)),
            Some(SysProp::ParentId) => sys.push(SysChange::ParentId(None)),
            Some(SysProp::ScheduledAt) => sys.push(SysChange::ScheduledAt(None)),
            Some(p) => {
                return Err(ProtocolError::new(
                    ErrorCode::PropertyNotUpdatable,
                    format!("property {k:?} ({}) cannot be deleted", p.column()),
                ));
            }
            None => deleted.push(k.clone()),
        }
    }
    eng.update(slot, now, |ix| {
        for c in sys {
            match c {
                SysChange::Priority(p) => ix.priority = p,
                SysChange::ServiceObjective(s) => ix.service_objective = s,
                SysChange::ExternalId(e) => ix.external_id = e,
                SysChange::ParentId(p) => ix.parent_id = p,
                SysChange::IsOnline(on) => {
                    if ix.is_online && !on {
                        ix.abandoned_at = Some(now);
                    }
                    if on {
                        ix.abandoned_at = None;
                    }
                    ix.is_online = on;
                }
                SysChange::ScheduledAt(t) => ix.scheduled_at = t,
            }
        }
        ix.user_data.merge(&changed);
        ix.user_data.merge(&added);
        for k in &deleted {
            ix.user_data.remove(k);
        }
    });
    let ix = eng.ix(slot).clone();
    let changes = PropertyChanges {
        changed: r.changed_properties.clone(),
        added: r.added_properties.clone(),
        deleted: r.deleted_properties.clone(),
    };
    let actor = party_of(client);
    let ch = changes.clone();
    eng.emit(K::PropertiesChanged, &ix, now, |e| {
        e.actor = Some(actor);
        e.changes = Some(ch);
    });
    let event = ServerMessage::EventPropertiesChanged {
        interaction_id: ix.id.to_string(),
        changed_properties: changes.changed,
        added_properties: changes.added,
        deleted_properties: changes.deleted,
        interaction: view_of(&ix),
    };
    if let Some(holder) = &ix.assigned_to
        && *holder != client.holder_name()
    {
        out.notify(
            Notify::Holder {
                tenant: ix.tenant.clone(),
                holder: holder.clone(),
            },
            event.clone(),
        );
    }
    if ix.submitted_by != client.application {
        out.notify(
            Notify::SubmitterWatching {
                tenant: ix.tenant.clone(),
                application: ix.submitted_by.clone(),
            },
            event,
        );
    }
    Ok(ServerMessage::EventAck {
        reference_id: rid,
        interaction_id: Some(ix.id.to_string()),
        interaction: Some(view_of(&ix)),
    })
}

pub(crate) fn hold(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    id: &str,
    on: bool,
    reason: Option<Reason>,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, id)?;
    let ix = eng.ix(slot);
    eng.check_actor(client, ix, Act::Touch)?;
    if ix.is_held == on {
        let what = if on { "already held" } else { "not held" };
        return Err(ProtocolError::new(
            ErrorCode::InvalidState,
            format!("{} is {what}", ix.id),
        ));
    }
    eng.update(slot, now, |ix| {
        ix.is_held = on;
        if on {
            ix.held_at = Some(now);
        }
    });
    let ix = eng.ix(slot).clone();
    let actor = party_of(client);
    eng.emit(if on { K::Held } else { K::Resumed }, &ix, now, |e| {
        e.actor = Some(actor);
        e.reason = reason;
    });
    Ok(ServerMessage::EventAck {
        reference_id: rid,
        interaction_id: Some(ix.id.to_string()),
        interaction: None,
    })
}

pub(crate) fn lock(
    eng: &mut Engine,
    client: &ClientCtx,
    rid: u64,
    id: &str,
    on: bool,
    reason: Option<Reason>,
    now: Timestamp,
) -> Result<ServerMessage, ProtocolError> {
    let slot = eng.find_slot(client, id)?;
    let ix = eng.ix(slot);
    eng.check_actor(client, ix, Act::Touch)?;
    if ix.is_locked == on {
        let what = if on { "already locked" } else { "not locked" };
        return Err(ProtocolError::new(
            if on {
                ErrorCode::InteractionLocked
            } else {
                ErrorCode::InvalidState
            },
            format!("{} is {what}", ix.id),
        ));
    }
    eng.update(slot, now, |ix| ix.is_locked = on);
    let ix = eng.ix(slot).clone();
    let actor = party_of(client);
    eng.emit(if on { K::Locked } else { K::Unlocked }, &ix, now, |e| {
        e.actor = Some(actor);
        e.reason = reason;
    });
    Ok(ServerMessage::EventAck {
        reference_id: rid,
        interaction_id: Some(ix.id.to_string()),
        interaction: None,
    })
}
