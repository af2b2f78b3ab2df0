//! Evaluation of a bound [`Expr`] against one interaction with SQL's three-valued logic
//! (`None` is UNKNOWN). Property values come from [`prop_value`], which [`super::order`] shares,
//! so views filter and sort on the very same values. User-data values are typed here: a string
//! compared with a number compares numerically when it parses as one, otherwise UNKNOWN; binary
//! and nested-list values are UNKNOWN in every comparison but are not NULL for `IS NULL`.

use std::cmp::Ordering;

use super::ast::{CmpOp, Expr, Literal, Operand, Prop};
use crate::{CustomProperty, CustomType, Interaction, Scalar, Timestamp, UserData, ValueRef};

/// A value during evaluation; `Null` is SQL NULL.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Val<'a> {
    Null,
    Int(i64),
    Num(f64),
    Str(&'a str),
    Ts(Timestamp),
    /// A binary or nested-list user-data value: present (so not IS NULL), but it compares,
    /// matches and sorts as NULL.
    Opaque,
}

impl<'a> From<Scalar<'a>> for Val<'a> {
    fn from(s: Scalar<'a>) -> Self {
        match s {
            Scalar::Null => Val::Null,
            Scalar::Int(i) => Val::Int(i),
            Scalar::Str(s) => Val::Str(s),
            Scalar::Ts(t) => Val::Ts(t),
        }
    }
}

/// The value of a custom property as its typed column holds it: the first user-data value under
/// its key, converted to its type (an integer from a string of digits, a timestamp from an RFC 3339
/// string or integer milliseconds); anything else, or no value, is NULL. The store should fill
/// `cp_<name>` columns with this function so SQL and in-memory evaluation agree.
pub fn custom_value<'a>(cp: &CustomProperty, user_data: &'a UserData) -> Scalar<'a> {
    match (cp.ty, user_data.get(&cp.key)) {
        (CustomType::String, Some(ValueRef::Str(s))) => Scalar::Str(s),
        (CustomType::Integer, Some(ValueRef::Int(i))) => Scalar::Int(i),
        (CustomType::Integer, Some(ValueRef::Str(s))) => s.trim().parse().map_or(Scalar::Null, Scalar::Int),
        (CustomType::Timestamp, Some(ValueRef::Int(ms))) => Scalar::Ts(Timestamp(ms)),
        (CustomType::Timestamp, Some(ValueRef::Str(s))) => {
            Timestamp::parse(s).map_or(Scalar::Null, Scalar::Ts)
        }
        _ => Scalar::Null,
    }
}

/// The value of a property for one interaction at time `now`.
pub(crate) fn prop_value<'a>(p: &Prop, ix: &'a Interaction, now: Timestamp) -> Val<'a> {
    match p {
        Prop::System(s) => ix.system(*s).into(),
        Prop::Custom(c) => custom_value(c, &ix.user_data).into(),
        Prop::UserData(key) => match ix.user_data.get(key) {
            Some(ValueRef::Str(s)) => Val::Str(s),
            Some(ValueRef::Int(i)) => Val::Int(i),
            Some(ValueRef::Bin(_) | ValueRef::List(_)) => Val::Opaque,
            None => Val::Null,
        },
        Prop::TimeInQueue => ix.time_in_queue(now).map_or(Val::Null, Val::Int),
        Prop::Age => Val::Int(ix.age(now)),
    }
}

fn operand_value<'a>(o: &'a Operand, ix: &'a Interaction, now: Timestamp) -> Val<'a> {
    match o {
        Operand::Prop(p) => prop_value(p, ix, now),
        Operand::Lit(l) => match l {
            Literal::Null => Val::Null,
            Literal::Bool(b) => Val::Int(i64::from(*b)),
            Literal::Int(i) => Val::Int(*i),
            Literal::Decimal(d) => Val::Num(*d),
            Literal::Str(s) => Val::Str(s),
            Literal::Ts(t) => Val::Ts(*t),
            Literal::Now => Val::Ts(now),
        },
    }
}

/// Orders two values; `None` when either is NULL or they cannot be compared.
pub(crate) fn compare(a: Val<'_>, b: Val<'_>) -> Option<Ordering> {
    match (a, b) {
        (Val::Int(x), Val::Int(y)) => Some(x.cmp(&y)),
        (Val::Int(x), Val::Num(y)) => (x as f64).partial_cmp(&y),
        (Val::Num(x), Val::Int(y)) => x.partial_cmp(&(y as f64)),
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(&y),
        (Val::Str(x), Val::Str(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Val::Ts(x), Val::Ts(y)) => Some(x.cmp(&y)),
        // Only user-data values reach the mixed cases; bind-time checks refuse the others.
        (Val::Str(s), Val::Int(_) | Val::Num(_) | Val::Ts(_)) => compare(reparse(s, b)?, b),
        (Val::Int(_) | Val::Num(_) | Val::Ts(_), Val::Str(s)) => compare(a, reparse(s, a)?),
        _ => None,
    }
}

/// Reads a user-data string as the kind of `like`; `None` when it is not one.
fn reparse<'a>(s: &str, like: Val<'_>) -> Option<Val<'a>> {
    match like {
        Val::Int(_) => s.trim().parse().ok().map(Val::Int),
        Val::Num(_) => s
            .trim()
            .parse()
            .ok()
            .filter(|d: &f64| d.is_finite())
            .map(Val::Num),
        Val::Ts(_) => Timestamp::parse(s).ok().map(Val::Ts),
        _ => None,
    }
}

fn cmp_op(op: CmpOp, ord: Ordering) -> bool {
    match op {
        CmpOp::Eq => ord.is_eq(),
        CmpOp::Ne => ord.is_ne(),
        CmpOp::Lt => ord.is_lt(),
        CmpOp::Le => ord.is_le(),
        CmpOp::Gt => ord.is_gt(),
        CmpOp::Ge => ord.is_ge(),
    }
}

fn negate_if(negated: bool, v: Option<bool>) -> Option<bool> {
    if negated { v.map(|b| !b) } else { v }
}

/// SQL AND over already-computed values.
fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// Evaluates with three-valued logic: `Some(true)`, `Some(false)` or `None` (UNKNOWN).
pub(crate) fn eval3(e: &Expr, ix: &Interaction, now: Timestamp) -> Option<bool> {
    let val = |o| operand_value(o, ix, now);
    match e {
        Expr::Literal(Literal::Bool(b)) => Some(*b),
        Expr::Literal(_) => None,
        Expr::And(items) => {
            let mut out = Some(true);
            for item in items {
                out = and3(out, eval3(item, ix, now));
                if out == Some(false) {
                    break;
                }
            }
            out
        }
        Expr::Or(items) => {
            let mut out = Some(false);
            for item in items {
                match eval3(item, ix, now) {
                    Some(true) => return Some(true),
                    None => out = None,
                    Some(false) => {}
                }
            }
            out
        }
        Expr::Not(inner) => eval3(inner, ix, now).map(|b| !b),
        Expr::Compare { op, lhs, rhs } => compare(val(lhs), val(rhs)).map(|o| cmp_op(*op, o)),
        Expr::In {
            operand,
            list,
            negated,
        } => {
            let v = val(operand);
            let mut out = Some(false);
            for item in list {
                match compare(v, val(item)) {
                    Some(Ordering::Equal) => return negate_if(*negated, Some(true)),
                    Some(_) => {}
                    None => out = None,
                }
            }
            negate_if(*negated, out)
        }
        Expr::Like {
            operand,
            pattern,
            negated,
        } => match val(operand) {
            Val::Str(s) => negate_if(*negated, Some(like(s, pattern))),
            _ => None,
        },
        Expr::IsNull { operand, negated } => Some((val(operand) == Val::Null) != *negated),
        Expr::Between {
            operand,
            low,
            high,
            negated,
        } => {
            let v = val(operand);
            let ge = compare(v, val(low)).map(Ordering::is_ge);
            let le = compare(v, val(high)).map(Ordering::is_le);
            negate_if(*negated, and3(ge, le))
        }
    }
}

/// One element of a LIKE pattern.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Pat {
    Any,
    One,
    Char(char),
}

fn compile_like(pattern: &str) -> Vec<Pat> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(match c {
            '%' => Pat::Any,
            '_' => Pat::One,
            '\\' => Pat::Char(chars.next().unwrap_or('\\')),
            c => Pat::Char(c),
        });
    }
    out
}

/// SQL LIKE, case-sensitive, `\` escapes. Greedy matching with one backtrack point (the last `%`),
/// which is exact for LIKE and runs in O(len(s) × len(pattern)) without recursion.
pub(crate) fn like(s: &str, pattern: &str) -> bool {
    let pat = compile_like(pattern);
    let text: Vec<char> = s.chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(Pat::Any) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(Pat::One) => {
                t += 1;
                p += 1;
            }
            Some(Pat::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match backtrack {
                Some((bp, bt)) => {
                    backtrack = Some((bp, bt + 1));
                    p = bp + 1;
                    t = bt + 1;
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|x| *x == Pat::Any)
}
