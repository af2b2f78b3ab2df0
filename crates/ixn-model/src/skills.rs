//! Skill expressions: which agents a routing target wants, by skill level.
//!
//! Grammar: `expr := term ('|' term)*`, `term := factor ('&' factor)*`,
//! `factor := '!' factor | '(' expr ')' | skill (op level)?`, `op := >= > <= < = !=`.
//! A bare skill name means level ≥ 1; a skill the agent lacks has level 0. `and`, `or` and
//! `not` are accepted for `&`, `|` and `!`.

use std::fmt;

/// A parsed skill expression.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SkillExpr {
    Cmp { skill: String, op: CmpOp, level: u32 },
    And(Box<SkillExpr>, Box<SkillExpr>),
    Or(Box<SkillExpr>, Box<SkillExpr>),
    Not(Box<SkillExpr>),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CmpOp {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

impl CmpOp {
    fn holds(self, a: u32, b: u32) -> bool {
        match self {
            CmpOp::Ge => a >= b,
            CmpOp::Gt => a > b,
            CmpOp::Le => a <= b,
            CmpOp::Lt => a < b,
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Ge => ">=",
            CmpOp::Gt => ">",
            CmpOp::Le => "<=",
            CmpOp::Lt => "<",
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Tok {
    Name(String),
    Num(u32),
    Op(CmpOp),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => (out.push(Tok::Open), i += 1).1,
            ')' => (out.push(Tok::Close), i += 1).1,
            '&' => (out.push(Tok::And), i += if next == Some('&') { 2 } else { 1 }).1,
            '|' => (out.push(Tok::Or), i += if next == Some('|') { 2 } else { 1 }).1,
            '!' if next == Some('=') => (out.push(Tok::Op(CmpOp::Ne)), i += 2).1,
            '!' => (out.push(Tok::Not), i += 1).1,
            '>' | '<' => {
                let eq = next == Some('=');
                let op = match (c, eq) {
                    ('>', true) => CmpOp::Ge,
                    ('>', false) => CmpOp::Gt,
                    ('<', true) => CmpOp::Le,
                    _ => CmpOp::Lt,
                };
                out.push(Tok::Op(op));
                i += if eq { 2 } else { 1 };
            }
            '=' => {
                (
                    out.push(Tok::Op(CmpOp::Eq)),
                    i += if next == Some('=') { 2 } else { 1 },
                )
                    .1
            }
            c if c.is_ascii_digit() => {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                let n = s.parse().map_err(|_| format!("level {s} is too large"))?;
                out.push(Tok::Num(n));
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || "_-.".contains(chars[i])) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(match word.to_ascii_lowercase().as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Name(word),
                });
            }
            other => return Err(format!("unexpected character {other:?} at {}", i + 1)),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

/// Deepest nesting accepted (a guard against stack exhaustion on hostile input).
const MAX_DEPTH: usize = 64;

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn expr(&mut self) -> Result<SkillExpr, String> {
        let mut left = self.term()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = SkillExpr::Or(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<SkillExpr, String> {
        let mut left = self.factor()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            left = SkillExpr::And(Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<SkillExpr, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH}"));
        }
        let result = match self.next() {
            Some(Tok::Not) => Ok(SkillExpr::Not(Box::new(self.factor()?))),
            Some(Tok::Open) => {
                let e = self.expr()?;
                match self.next() {
                    Some(Tok::Close) => Ok(e),
                    _ => Err("missing )".to_owned()),
                }
            }
            Some(Tok::Name(skill)) => {
                if let Some(Tok::Op(op)) = self.peek().cloned() {
                    self.pos += 1;
                    match self.next() {
                        Some(Tok::Num(level)) => Ok(SkillExpr::Cmp { skill, op, level }),
                        _ => Err(format!("a level must follow {skill} {}", op.as_str())),
                    }
                } else {
                    Ok(SkillExpr::Cmp {
                        skill,
                        op: CmpOp::Ge,
                        level: 1,
                    })
                }
            }
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("the expression ends too early".to_owned()),
        };
        self.depth -= 1;
        result
    }
}

impl SkillExpr {
    /// Parses an expression; the error says what is wrong.
    pub fn parse(text: &str) -> Result<SkillExpr, String> {
        let toks = lex(text)?;
        if toks.is_empty() {
            return Err("the skill expression is empty".to_owned());
        }
        let mut p = Parser {
            toks,
            pos: 0,
            depth: 0,
        };
        let e = p.expr()?;
        if p.pos < p.toks.len() {
            return Err(format!("unexpected {:?} after the expression", p.toks[p.pos]));
        }
        Ok(e)
    }

    /// Whether an agent with these skill levels (`level(name)`, 0 when absent) matches.
    pub fn matches(&self, level: &impl Fn(&str) -> u32) -> bool {
        match self {
            SkillExpr::Cmp { skill, op, level: l } => op.holds(level(skill), *l),
            SkillExpr::And(a, b) => a.matches(level) && b.matches(level),
            SkillExpr::Or(a, b) => a.matches(level) || b.matches(level),
            SkillExpr::Not(a) => !a.matches(level),
        }
    }

    /// Sum of the agent's levels of every skill the expression names (for best-skill).
    pub fn score(&self, level: &impl Fn(&str) -> u32) -> u64 {
        let mut names = Vec::new();
        self.names(&mut names);
        names.sort_unstable();
        names.dedup();
        names.iter().map(|n| u64::from(level(n))).sum()
    }

    fn names<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            SkillExpr::Cmp { skill, .. } => out.push(skill),
            SkillExpr::And(a, b) | SkillExpr::Or(a, b) => {
                a.names(out);
                b.names(out);
            }
            SkillExpr::Not(a) => a.names(out),
        }
    }
}

impl fmt::Display for SkillExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkillExpr::Cmp { skill, op, level } => write!(f, "{skill} {} {level}", op.as_str()),
            SkillExpr::And(a, b) => write!(f, "({a} & {b})"),
            SkillExpr::Or(a, b) => write!(f, "({a} | {b})"),
            SkillExpr::Not(a) => write!(f, "!{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent<'a>(skills: &'a [(&'a str, u32)]) -> impl Fn(&str) -> u32 + 'a {
        move |n| skills.iter().find(|(s, _)| *s == n).map_or(0, |(_, l)| *l)
    }

    #[test]
    fn parses_and_matches() {
        let e = SkillExpr::parse("english >= 5 & (sales | support >= 3)").unwrap();
        assert!(e.matches(&agent(&[("english", 7), ("sales", 1)])));
        assert!(e.matches(&agent(&[("english", 5), ("support", 3)])));
        assert!(!e.matches(&agent(&[("english", 4), ("sales", 9)])));
        assert!(!e.matches(&agent(&[("english", 9), ("support", 2)])));
        assert_eq!(e.score(&agent(&[("english", 7), ("sales", 2)])), 9);
        let n = SkillExpr::parse("not french and english = 3").unwrap();
        assert!(n.matches(&agent(&[("english", 3)])));
        assert!(!n.matches(&agent(&[("english", 3), ("french", 1)])));
        // Display round-trips.
        assert_eq!(SkillExpr::parse(&e.to_string()).unwrap(), e);
    }

    #[test]
    fn errors_are_clear() {
        for (text, want) in [
            ("", "empty"),
            ("english >=", "level must follow"),
            ("(english", "missing )"),
            ("english $ 3", "unexpected character"),
            ("english 3", "after the expression"),
            ("99999999999 > 1", "too large"),
        ] {
            let err = SkillExpr::parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(SkillExpr::parse(&deep).unwrap_err().contains("nested"));
    }
}
