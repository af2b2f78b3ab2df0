//! The bound syntax tree of the condition language: every property name is already resolved to a
//! [`Prop`] and every literal has the type its comparison needs, so evaluation and SQL
//! compilation never see names or unchecked types. `Display` prints the canonical text, which
//! parses back to the same tree.

use std::fmt;

use crate::{CustomProperty, SysProp, Timestamp};

/// A property reference after name binding.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Prop {
    /// A system property (a column of its own).
    System(SysProp),
    /// A user-data key promoted to a typed column.
    Custom(CustomProperty),
    /// Any other user-data key (exact, case-sensitive); typed dynamically at evaluation.
    UserData(String),
    /// `_time_in_queue`: whole seconds since placed in the queue; NULL unless queued.
    TimeInQueue,
    /// `_age`: whole seconds since received (or submitted).
    Age,
}

/// A constant in a condition.
#[derive(Clone, PartialEq, Debug)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Decimal(f64),
    Str(String),
    Ts(Timestamp),
    /// `NOW()`: the evaluation time (so the condition is time dependent).
    Now,
}

/// One side of a comparison.
#[derive(Clone, PartialEq, Debug)]
pub enum Operand {
    Prop(Prop),
    Lit(Literal),
}

/// A comparison operator.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The SQL spelling (`<>` for not equal, accepted by every SQL dialect).
    pub fn as_sql(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A bound condition. The parser only produces [`Expr::Literal`] with `Bool` or `Null` (a
/// constant condition such as `TRUE`); `And`/`Or` hold two or more items.
#[derive(Clone, PartialEq, Debug)]
pub enum Expr {
    Literal(Literal),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        op: CmpOp,
        lhs: Operand,
        rhs: Operand,
    },
    In {
        operand: Operand,
        list: Vec<Operand>,
        negated: bool,
    },
    /// `pattern` uses `%`, `_` and `\` as the escape character (PostgreSQL's default).
    Like {
        operand: Operand,
        pattern: String,
        negated: bool,
    },
    IsNull {
        operand: Operand,
        negated: bool,
    },
    Between {
        operand: Operand,
        low: Operand,
        high: Operand,
        negated: bool,
    },
}

impl Expr {
    /// Calls `f` on every operand, depth first.
    pub fn for_each_operand(&self, f: &mut dyn FnMut(&Operand)) {
        match self {
            Expr::Literal(_) => {}
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| e.for_each_operand(f)),
            Expr::Not(e) => e.for_each_operand(f),
            Expr::Compare { lhs, rhs, .. } => {
                f(lhs);
                f(rhs);
            }
            Expr::In { operand, list, .. } => {
                f(operand);
                list.iter().for_each(&mut *f);
            }
            Expr::Like { operand, .. } | Expr::IsNull { operand, .. } => f(operand),
            Expr::Between {
                operand, low, high, ..
            } => {
                f(operand);
                f(low);
                f(high);
            }
        }
    }

    /// Whether the result can change with time alone (`_time_in_queue`, `_age`, `NOW()`).
    pub fn is_time_dependent(&self) -> bool {
        let mut found = false;
        self.for_each_operand(&mut |o| found |= o.is_time_dependent());
        found
    }
}

impl Operand {
    pub fn is_time_dependent(&self) -> bool {
        match self {
            Operand::Prop(p) => p.is_time_dependent(),
            Operand::Lit(l) => *l == Literal::Now,
        }
    }
}

impl Prop {
    pub fn is_time_dependent(&self) -> bool {
        matches!(self, Prop::TimeInQueue | Prop::Age)
    }
}

/// Writes `s` between `quote`s, doubling any `quote` inside (SQL style).
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str, quote: char) -> fmt::Result {
    write!(f, "{quote}")?;
    for c in s.chars() {
        if c == quote {
            write!(f, "{quote}")?;
        }
        write!(f, "{c}")?;
    }
    write!(f, "{quote}")
}

impl fmt::Display for Prop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Prop::System(p) => f.write_str(p.column()),
            Prop::Custom(c) => f.write_str(&c.name),
            Prop::UserData(k) => write_quoted(f, k, '"'),
            Prop::TimeInQueue => f.write_str("_time_in_queue"),
            Prop::Age => f.write_str("_age"),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("NULL"),
            Literal::Bool(true) => f.write_str("TRUE"),
            Literal::Bool(false) => f.write_str("FALSE"),
            Literal::Int(i) => write!(f, "{i}"),
            // `{:?}` always keeps a '.' or an exponent, so the text lexes back as a decimal.
            Literal::Decimal(d) => write!(f, "{d:?}"),
            Literal::Str(s) => write_quoted(f, s, '\''),
            Literal::Ts(t) => write!(f, "TIMESTAMP '{t}'"),
            Literal::Now => f.write_str("NOW()"),
        }
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Prop(p) => p.fmt(f),
            Operand::Lit(l) => l.fmt(f),
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_sql())
    }
}

/// Prints a sub-expression of AND, OR or NOT, in parentheses when it is itself AND or OR, so the
/// printed text parses back to the same tree.
fn write_child(f: &mut fmt::Formatter<'_>, e: &Expr) -> fmt::Result {
    match e {
        Expr::And(_) | Expr::Or(_) => write!(f, "({e})"),
        _ => write!(f, "{e}"),
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, items: &[Expr], sep: &str) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write_child(f, e)?;
    }
    Ok(())
}

fn not_kw(negated: bool) -> &'static str {
    if negated { "NOT " } else { "" }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(l) => l.fmt(f),
            Expr::And(items) => write_list(f, items, " AND "),
            Expr::Or(items) => write_list(f, items, " OR "),
            Expr::Not(e) => {
                f.write_str("NOT ")?;
                write_child(f, e)
            }
            Expr::Compare { op, lhs, rhs } => write!(f, "{lhs} {op} {rhs}"),
            Expr::In {
                operand,
                list,
                negated,
            } => {
                write!(f, "{operand} {}IN (", not_kw(*negated))?;
                for (i, o) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    o.fmt(f)?;
                }
                f.write_str(")")
            }
            Expr::Like {
                operand,
                pattern,
                negated,
            } => {
                write!(f, "{operand} {}LIKE ", not_kw(*negated))?;
                write_quoted(f, pattern, '\'')
            }
            Expr::IsNull { operand, negated } => write!(f, "{operand} IS {}NULL", not_kw(*negated)),
            Expr::Between {
                operand,
                low,
                high,
                negated,
            } => {
                write!(f, "{operand} {}BETWEEN {low} AND {high}", not_kw(*negated))
            }
        }
    }
}
