//! The condition language of views, snapshots and find: a small SQL-like boolean language over
//! an interaction's system properties, custom properties, user-data keys and the pseudo-properties
//! `_time_in_queue` and `_age`, plus the order clauses of views.
//!
//! Text is lexed ([`lexer`]), parsed and bound in one pass ([`parser`]) into an [`Expr`] whose
//! names are resolved and whose comparisons are type-checked, then evaluated in memory ([`eval`])
//! with SQL's three-valued logic. The store compiles the same [`Expr`] to SQL, so this module
//! must stay free of SQL and I/O; it never panics on any input, and every error carries the
//! byte position it refers to.

mod ast;
mod eval;
mod lexer;
mod order;
mod parser;
#[cfg(test)]
mod tests;

use std::fmt;

pub use ast::{CmpOp, Expr, Literal, Operand, Prop};
pub use eval::custom_value;
pub use order::{OrderTerm, SortKey};

use crate::{CustomProperty, Interaction, Timestamp};

/// Longest condition or order text accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 16 * 1024;
/// Deepest nesting of parentheses and NOT accepted.
pub const MAX_DEPTH: usize = 64;

/// Why a condition or order text was refused; `pos` is a byte offset into the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at position {pos}: {message}")]
pub struct ConditionError {
    pub pos: usize,
    pub message: String,
}

/// A parsed, bound condition with the text it came from (kept for display and persistence).
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    text: String,
    expr: Expr,
}

impl Condition {
    /// Parses and binds `text`; custom properties are looked up in `custom`. Empty or blank text
    /// is the condition that is always true.
    pub fn parse(text: &str, custom: &[CustomProperty]) -> Result<Condition, ConditionError> {
        let expr = parser::parse_condition(text, custom)?;
        Ok(Condition {
            text: text.to_owned(),
            expr,
        })
    }

    /// The condition every interaction matches.
    pub fn always() -> Condition {
        Condition {
            text: String::new(),
            expr: Expr::Literal(Literal::Bool(true)),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `ix` matches at time `now`: only a TRUE result matches (FALSE and UNKNOWN do not).
    pub fn eval(&self, ix: &Interaction, now: Timestamp) -> bool {
        eval::eval3(&self.expr, ix, now) == Some(true)
    }

    /// Whether the result can change while the interaction does not (`_time_in_queue`, `_age`,
    /// `NOW()`), so a view must re-check it on a timer.
    pub fn is_time_dependent(&self) -> bool {
        self.expr.is_time_dependent()
    }

    /// The bound tree, for compilers such as the store's SQL generator.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A parsed order clause such as `priority desc, submitted_at asc`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct OrderBy {
    text: String,
    terms: Vec<OrderTerm>,
}

impl OrderBy {
    /// Parses comma-separated `name [ASC|DESC]` terms (ASC by default); empty text has no terms,
    /// which orders by submission alone.
    pub fn parse(text: &str, custom: &[CustomProperty]) -> Result<OrderBy, ConditionError> {
        let terms = parser::parse_order(text, custom)?;
        Ok(OrderBy {
            text: text.to_owned(),
            terms,
        })
    }

    pub fn terms(&self) -> &[OrderTerm] {
        &self.terms
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether keys change with time alone, so an index on them must be rebuilt on a timer.
    pub fn is_time_dependent(&self) -> bool {
        self.terms.iter().any(|t| t.prop.is_time_dependent())
    }

    /// Memcomparable key: comparing two keys bytewise gives the order of the clause, then
    /// ascending `submit_seq` as the final tie-breaker (so keys of different interactions never
    /// compare equal).
    pub fn sort_key(&self, ix: &Interaction, now: Timestamp) -> SortKey {
        order::sort_key(&self.terms, ix, now)
    }
}
