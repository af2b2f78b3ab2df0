//! Recursive-descent parser that binds as it goes: names become [`Prop`]s (system property,
//! then custom property, then pseudo-property, otherwise a user-data key) and the two sides of
//! every comparison are type-checked, so a [`Expr`] is always meaningful. Precedence, loosest
//! first: `OR`, `AND`, `NOT`, predicates. Text length and nesting depth are capped, so no input
//! can make it panic or exhaust the stack.

use super::ast::{Expr, Literal, Operand, Prop};
use super::lexer::{Tok, Token, lex};
use super::order::OrderTerm;
use super::{ConditionError, MAX_DEPTH, MAX_TEXT_LEN};
use crate::{CustomProperty, CustomType, SysProp, SysPropType, Timestamp};

/// Bare words that are never property names.
const RESERVED: &[&str] = &[
    "AND", "OR", "NOT", "IN", "LIKE", "IS", "BETWEEN", "NULL", "TRUE", "FALSE",
];

pub(crate) fn parse_condition(text: &str, custom: &[CustomProperty]) -> Result<Expr, ConditionError> {
    let mut p = Parser::new(text, custom)?;
    if p.peek().tok == Tok::End {
        return Ok(Expr::Literal(Literal::Bool(true)));
    }
    let e = p.or()?;
    match p.peek().tok {
        Tok::End => Ok(e),
        Tok::RParen => Err(p.err_here(format!("found ')' without a matching '(' after {}", p.prev()))),
        _ => Err(p.expected("AND, OR or end of text")),
    }
}

pub(crate) fn parse_order(text: &str, custom: &[CustomProperty]) -> Result<Vec<OrderTerm>, ConditionError> {
    let mut p = Parser::new(text, custom)?;
    let mut terms = Vec::new();
    if p.peek().tok == Tok::End {
        return Ok(terms);
    }
    loop {
        let prop = match &p.peek().tok {
            Tok::Ident { name, quoted } if *quoted || !p.is_reserved() => bind_name(name, custom),
            _ => return Err(p.expected("a property name")),
        };
        p.advance();
        let desc = p.peek().is_kw("DESC");
        if desc || p.peek().is_kw("ASC") {
            p.advance();
        }
        terms.push(OrderTerm { prop, desc });
        match p.peek().tok {
            Tok::Comma => p.advance(),
            Tok::End => return Ok(terms),
            _ => return Err(p.expected("',', ASC, DESC or end of text")),
        }
    }
}

/// Binds a name in the documented order; anything unknown is a user-data key.
fn bind_name(name: &str, custom: &[CustomProperty]) -> Prop {
    if let Some(p) = SysProp::lookup(name) {
        Prop::System(p)
    } else if let Some(c) = custom.iter().find(|c| c.name.eq_ignore_ascii_case(name)) {
        Prop::Custom(c.clone())
    } else if name.eq_ignore_ascii_case("_time_in_queue") {
        Prop::TimeInQueue
    } else if name.eq_ignore_ascii_case("_age") {
        Prop::Age
    } else {
        Prop::UserData(name.to_owned())
    }
}

struct Parser<'a> {
    text: &'a str,
    /// Always ends with [`Tok::End`]; `i` never moves past it.
    toks: Vec<Token>,
    i: usize,
    custom: &'a [CustomProperty],
    /// Open parentheses and NOTs around the current position.
    depth: usize,
}

fn err(pos: usize, message: impl Into<String>) -> ConditionError {
    ConditionError {
        pos,
        message: message.into(),
    }
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, custom: &'a [CustomProperty]) -> Result<Self, ConditionError> {
        if text.len() > MAX_TEXT_LEN {
            return Err(err(
                MAX_TEXT_LEN,
                format!("text is longer than the limit of {MAX_TEXT_LEN} bytes"),
            ));
        }
        Ok(Parser {
            text,
            toks: lex(text)?,
            i: 0,
            custom,
            depth: 0,
        })
    }

    fn peek(&self) -> &Token {
        &self.toks[self.i]
    }

    fn peek2(&self) -> &Token {
        &self.toks[(self.i + 1).min(self.toks.len() - 1)]
    }

    fn advance(&mut self) {
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
    }

    fn is_reserved(&self) -> bool {
        RESERVED.iter().any(|kw| self.peek().is_kw(kw))
    }

    /// The previous token as error messages name it (`start of text` before the first).
    fn prev(&self) -> String {
        match self.i.checked_sub(1) {
            Some(j) => self.toks[j].describe(self.text),
            None => "start of text".to_owned(),
        }
    }

    fn err_here(&self, message: String) -> ConditionError {
        err(self.peek().pos, message)
    }

    /// `expected X after 'prev' but found 'cur'`, at the current token.
    fn expected(&self, what: &str) -> ConditionError {
        let found = self.peek().describe(self.text);
        match self.i {
            0 => self.err_here(format!("expected {what} but found {found}")),
            _ => self.err_here(format!("expected {what} after {} but found {found}", self.prev())),
        }
    }

    fn enter(&mut self) -> Result<(), ConditionError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_here(format!(
                "nested deeper than {MAX_DEPTH} levels of parentheses and NOT; simplify the condition"
            )));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ConditionError> {
        let mut items = vec![self.and()?];
        while self.peek().is_kw("OR") {
            self.advance();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, ConditionError> {
        let mut items = vec![self.not()?];
        while self.peek().is_kw("AND") {
            self.advance();
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn not(&mut self) -> Result<Expr, ConditionError> {
        if !self.peek().is_kw("NOT") {
            return self.predicate();
        }
        self.enter()?;
        self.advance();
        let inner = self.not()?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(inner)))
    }

    fn predicate(&mut self) -> Result<Expr, ConditionError> {
        if self.peek().tok == Tok::LParen {
            let open = self.peek().pos;
            self.enter()?;
            self.advance();
            let inner = self.or()?;
            if self.peek().tok != Tok::RParen {
                return Err(self.expected(&format!("AND, OR or ')' to close the '(' at position {open}")));
            }
            self.advance();
            self.depth -= 1;
            return Ok(inner);
        }
        let lhs_pos = self.peek().pos;
        let mut lhs = self.operand("a condition")?;
        let next = self.peek().clone();
        match next.tok {
            Tok::Op(op) => {
                self.advance();
                let rhs_pos = self.peek().pos;
                let mut rhs = self.operand("a value")?;
                unify(&mut lhs, lhs_pos, &mut rhs, rhs_pos)?;
                Ok(Expr::Compare { op, lhs, rhs })
            }
            _ if next.is_kw("IS") => {
                self.advance();
                let negated = self.peek().is_kw("NOT");
                if negated {
                    self.advance();
                }
                if !self.peek().is_kw("NULL") {
                    return Err(self.expected(if negated { "NULL" } else { "NULL or NOT NULL" }));
                }
                self.advance();
                Ok(Expr::IsNull {
                    operand: lhs,
                    negated,
                })
            }
            _ if next.is_kw("NOT") => {
                self.advance();
                if !["IN", "LIKE", "BETWEEN"].iter().any(|kw| self.peek().is_kw(kw)) {
                    return Err(self.expected("IN, LIKE or BETWEEN"));
                }
                self.in_like_between(lhs, lhs_pos, true)
            }
            _ if ["IN", "LIKE", "BETWEEN"].iter().any(|kw| next.is_kw(kw)) => {
                self.in_like_between(lhs, lhs_pos, false)
            }
            _ => match lhs {
                Operand::Lit(l @ (Literal::Bool(_) | Literal::Null)) => Ok(Expr::Literal(l)),
                _ => Err(self.expected("a comparison (=, <>, <, <=, >, >=, IN, LIKE, BETWEEN or IS NULL)")),
            },
        }
    }

    /// At `IN`, `LIKE` or `BETWEEN` (after an optional NOT already consumed).
    fn in_like_between(
        &mut self,
        mut lhs: Operand,
        lhs_pos: usize,
        negated: bool,
    ) -> Result<Expr, ConditionError> {
        if self.peek().is_kw("IN") {
            self.advance();
            if self.peek().tok != Tok::LParen {
                return Err(self.expected("'('"));
            }
            self.advance();
            let mut list = Vec::new();
            loop {
                let pos = self.peek().pos;
                let mut item = self.operand("a value")?;
                unify(&mut lhs, lhs_pos, &mut item, pos)?;
                list.push(item);
                match self.peek().tok {
                    Tok::Comma => self.advance(),
                    Tok::RParen => break,
                    _ => return Err(self.expected("',' or ')'")),
                }
            }
            self.advance();
            Ok(Expr::In {
                operand: lhs,
                list,
                negated,
            })
        } else if self.peek().is_kw("LIKE") {
            self.advance();
            let Tok::Str(pattern) = self.peek().tok.clone() else {
                return Err(self.expected("a 'pattern' string"));
            };
            if let Ty::Num | Ty::Ts = ty_of(&lhs) {
                return Err(err(
                    lhs_pos,
                    format!("LIKE needs a string, but {lhs} is {}", ty_of(&lhs).name()),
                ));
            }
            if ends_with_escape(&pattern) {
                return Err(
                    self.err_here("a LIKE pattern cannot end with the escape character '\\'".to_owned())
                );
            }
            self.advance();
            Ok(Expr::Like {
                operand: lhs,
                pattern,
                negated,
            })
        } else {
            self.advance();
            let low_pos = self.peek().pos;
            let mut low = self.operand("a value")?;
            unify(&mut lhs, lhs_pos, &mut low, low_pos)?;
            if !self.peek().is_kw("AND") {
                return Err(self.expected("AND (BETWEEN low AND high)"));
            }
            self.advance();
            let high_pos = self.peek().pos;
            let mut high = self.operand("a value")?;
            unify(&mut lhs, lhs_pos, &mut high, high_pos)?;
            Ok(Expr::Between {
                operand: lhs,
                low,
                high,
                negated,
            })
        }
    }

    /// A property or a literal; `what` names what was expected, for the error message.
    fn operand(&mut self, what: &str) -> Result<Operand, ConditionError> {
        let t = self.peek().clone();
        let lit = match &t.tok {
            Tok::Str(s) => Literal::Str(s.clone()),
            Tok::Int(i) => Literal::Int(*i),
            Tok::Decimal(d) => Literal::Decimal(*d),
            Tok::Ident { .. } if t.is_kw("NULL") => Literal::Null,
            Tok::Ident { .. } if t.is_kw("TRUE") => Literal::Bool(true),
            Tok::Ident { .. } if t.is_kw("FALSE") => Literal::Bool(false),
            Tok::Ident { .. } if t.is_kw("NOW") && self.peek2().tok == Tok::LParen => {
                self.advance();
                self.advance();
                if self.peek().tok != Tok::RParen {
                    return Err(self.expected("')' (NOW takes no arguments)"));
                }
                Literal::Now
            }
            Tok::Ident { .. } if t.is_kw("TIMESTAMP") && matches!(self.peek2().tok, Tok::Str(_)) => {
                self.advance();
                let Tok::Str(s) = &self.peek().tok else {
                    return Err(self.expected("a string"));
                };
                Literal::Ts(parse_ts(s, self.peek().pos)?)
            }
            Tok::Ident { name, quoted } if *quoted || !self.is_reserved() => {
                let prop = bind_name(name, self.custom);
                self.advance();
                return Ok(Operand::Prop(prop));
            }
            _ => return Err(self.expected(what)),
        };
        self.advance();
        Ok(Operand::Lit(lit))
    }
}

fn parse_ts(s: &str, pos: usize) -> Result<Timestamp, ConditionError> {
    Timestamp::parse(s).map_err(|_| {
        err(
            pos,
            format!("'{s}' is not a valid timestamp: expected RFC 3339 such as 2026-11-23T13:27:37Z"),
        )
    })
}

/// True when the pattern ends with an unescaped `\` (PostgreSQL refuses such patterns).
fn ends_with_escape(pattern: &str) -> bool {
    let trailing = pattern.bytes().rev().take_while(|&b| b == b'\\').count();
    trailing % 2 == 1
}

/// Static type of an operand, for bind-time checks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ty {
    Null,
    Num,
    Str,
    Ts,
    /// A user-data key: typed only when evaluated.
    Dyn,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Null => "NULL",
            Ty::Num => "a number",
            Ty::Str => "a string",
            Ty::Ts => "a timestamp",
            Ty::Dyn => "a user-data value",
        }
    }
}

fn ty_of(o: &Operand) -> Ty {
    match o {
        Operand::Prop(Prop::System(p)) => match p.ty() {
            SysPropType::Str => Ty::Str,
            SysPropType::Int => Ty::Num,
            SysPropType::Timestamp => Ty::Ts,
        },
        Operand::Prop(Prop::Custom(c)) => match c.ty {
            CustomType::String => Ty::Str,
            CustomType::Integer => Ty::Num,
            CustomType::Timestamp => Ty::Ts,
        },
        Operand::Prop(Prop::UserData(_)) => Ty::Dyn,
        Operand::Prop(Prop::TimeInQueue | Prop::Age) => Ty::Num,
        Operand::Lit(l) => match l {
            Literal::Null => Ty::Null,
            Literal::Bool(_) | Literal::Int(_) | Literal::Decimal(_) => Ty::Num,
            Literal::Str(_) => Ty::Str,
            Literal::Ts(_) | Literal::Now => Ty::Ts,
        },
    }
}

/// Turns a string literal compared with a timestamp into a timestamp literal.
fn coerce_ts(other: &Operand, lit: &mut Operand, pos: usize) -> Result<(), ConditionError> {
    if let (Ty::Ts, Operand::Lit(Literal::Str(s))) = (ty_of(other), &*lit) {
        *lit = Operand::Lit(Literal::Ts(parse_ts(s, pos)?));
    }
    Ok(())
}

/// Checks that `a` and `b` can be compared, converting string literals to timestamps where the
/// other side is a timestamp. The error is reported at `b`.
fn unify(a: &mut Operand, a_pos: usize, b: &mut Operand, b_pos: usize) -> Result<(), ConditionError> {
    coerce_ts(a, b, b_pos)?;
    coerce_ts(b, a, a_pos)?;
    let (ta, tb) = (ty_of(a), ty_of(b));
    if ta == tb || [ta, tb].iter().any(|t| matches!(t, Ty::Null | Ty::Dyn)) {
        return Ok(());
    }
    let hint = match (ta, tb) {
        (Ty::Ts, Ty::Num) | (Ty::Num, Ty::Ts) => "; write a time as TIMESTAMP '2026-01-01T00:00:00Z'",
        (Ty::Num, Ty::Str) if matches!(b, Operand::Lit(Literal::Str(s)) if s.trim().parse::<f64>().is_ok()) => {
            "; remove the quotes to write a number"
        }
        _ => "",
    };
    Err(err(
        b_pos,
        format!(
            "cannot compare {a} ({}) with {b} ({}){hint}",
            ta.name(),
            tb.name()
        ),
    ))
}
