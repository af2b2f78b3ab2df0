//! Splits condition text into tokens with their byte positions. Keywords are not recognised
//! here (they are bare identifiers the parser matches case-insensitively), so a quoted
//! identifier such as `"AND"` can never be taken for a keyword. Never panics on any input.

use super::ConditionError;
use super::ast::CmpOp;

#[derive(Clone, PartialEq, Debug)]
pub(crate) enum Tok {
    /// A bare (`quoted == false`) or double-quoted identifier, unescaped.
    Ident {
        name: String,
        quoted: bool,
    },
    Str(String),
    Int(i64),
    Decimal(f64),
    LParen,
    RParen,
    Comma,
    Op(CmpOp),
    End,
}

#[derive(Clone, PartialEq, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offset of the first character.
    pub pos: usize,
    /// Byte offset just past the last character.
    pub end: usize,
}

impl Token {
    /// Whether this is the bare keyword `kw` (ASCII case-insensitive).
    pub fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Ident { name, quoted: false } if name.eq_ignore_ascii_case(kw))
    }

    /// How error messages name this token: `end of text`, `'AND'`, `string 'abc'`.
    pub fn describe(&self, text: &str) -> String {
        if self.tok == Tok::End {
            return "end of text".to_owned();
        }
        let src = text.get(self.pos..self.end).unwrap_or("");
        let short: String = src.chars().take(40).collect();
        let ellipsis = if short.len() < src.len() { "…" } else { "" };
        match self.tok {
            Tok::Str(_) => format!("string {short}{ellipsis}"),
            _ => format!("'{short}{ellipsis}'"),
        }
    }
}

fn err(pos: usize, message: impl Into<String>) -> ConditionError {
    ConditionError {
        pos,
        message: message.into(),
    }
}

/// Tokenizes the whole text; the last token is always [`Tok::End`].
pub(crate) fn lex(text: &str) -> Result<Vec<Token>, ConditionError> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let tok = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'=' | b'!' | b'<' | b'>' => {
                while i < b.len() && matches!(b[i], b'=' | b'!' | b'<' | b'>') {
                    i += 1;
                }
                Tok::Op(
                    operator(&text[start..i])
                        .ok_or_else(|| err(start, format!("unknown operator '{}'", &text[start..i])))?,
                )
            }
            b'\'' => {
                let (s, next) = quoted(text, start, b'\'')
                    .ok_or_else(|| err(start, "unterminated string: a closing ' is missing"))?;
                i = next;
                Tok::Str(s)
            }
            b'"' => {
                let (name, next) = quoted(text, start, b'"')
                    .ok_or_else(|| err(start, "unterminated quoted name: a closing \" is missing"))?;
                if name.is_empty() {
                    return Err(err(start, "empty quoted name \"\""));
                }
                i = next;
                Tok::Ident { name, quoted: true }
            }
            b'0'..=b'9' => {
                i = number_end(b, i);
                number(text, start, i)?
            }
            b'-' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i = number_end(b, i + 1);
                number(text, start, i)?
            }
            b'A'..=b'Z' | b'a'..=b'z' | b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let name = text[start..i].to_owned();
                // The product family writes `_time_in_queue[]`; the brackets mean nothing here.
                if b.get(i) == Some(&b'[') && b.get(i + 1) == Some(&b']') {
                    i += 2;
                }
                Tok::Ident { name, quoted: false }
            }
            _ => {
                let ch = text[start..].chars().next().unwrap_or('?');
                return Err(err(start, format!("unexpected character {ch:?}")));
            }
        };
        out.push(Token {
            tok,
            pos: start,
            end: i,
        });
    }
    out.push(Token {
        tok: Tok::End,
        pos: b.len(),
        end: b.len(),
    });
    Ok(out)
}

fn operator(s: &str) -> Option<CmpOp> {
    Some(match s {
        "=" => CmpOp::Eq,
        "!=" | "<>" => CmpOp::Ne,
        "<" => CmpOp::Lt,
        "<=" => CmpOp::Le,
        ">" => CmpOp::Gt,
        ">=" => CmpOp::Ge,
        _ => return None,
    })
}

/// Reads a `q`-quoted text starting at `start` (which holds `q`), where a doubled `q` stands for
/// one. Returns the unescaped text and the offset after the closing quote.
fn quoted(text: &str, start: usize, q: u8) -> Option<(String, usize)> {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = start + 1;
    let mut run = i;
    loop {
        let at = i + b.get(i..)?.iter().position(|&c| c == q)?;
        out.push_str(&text[run..at]);
        if b.get(at + 1) == Some(&q) {
            out.push(q as char);
            i = at + 2;
            run = i;
        } else {
            return Some((out, at + 1));
        }
    }
}

/// End of `digits [. digits] [e [+-] digits]` from `i`; letters right after are left for the
/// parser to complain about.
fn number_end(b: &[u8], mut i: usize) -> usize {
    let digits = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    i = digits(i);
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i = digits(i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        if b.get(i + 1 + sign).is_some_and(u8::is_ascii_digit) {
            i = digits(i + 1 + sign);
        }
    }
    i
}

fn number(text: &str, start: usize, end: usize) -> Result<Tok, ConditionError> {
    let s = &text[start..end];
    if s.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
        return s
            .parse()
            .map(Tok::Int)
            .map_err(|_| err(start, format!("integer {s} is out of range (64-bit signed)")));
    }
    match s.parse::<f64>() {
        Ok(d) if d.is_finite() => Ok(Tok::Decimal(d)),
        _ => Err(err(start, format!("number {s} is out of range"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Tok> {
        lex(text)
            .map(|v| v.into_iter().map(|t| t.tok).collect())
            .unwrap_or_default()
    }

    #[test]
    fn tokens() {
        let id = |n: &str, quoted| Tok::Ident {
            name: n.to_owned(),
            quoted,
        };
        assert_eq!(
            kinds("a>=-3 AND \"x \"\"y\"\"\" <> 'it''s' 1.5e3 _time_in_queue[]"),
            vec![
                id("a", false),
                Tok::Op(CmpOp::Ge),
                Tok::Int(-3),
                id("AND", false),
                id("x \"y\"", true),
                Tok::Op(CmpOp::Ne),
                Tok::Str("it's".to_owned()),
                Tok::Decimal(1500.0),
                id("_time_in_queue", false),
                Tok::End,
            ]
        );
    }

    #[test]
    fn errors_are_positioned() {
        let cases = [
            ("abc == 1", 4, "unknown operator '=='"),
            ("a = 'x", 4, "unterminated string: a closing ' is missing"),
            (
                "a = 99999999999999999999",
                4,
                "integer 99999999999999999999 is out of range (64-bit signed)",
            ),
            ("a ; 1", 2, "unexpected character ';'"),
            ("\"\" = 1", 0, "empty quoted name \"\""),
            ("é", 0, "unexpected character 'é'"),
        ];
        for (text, pos, message) in cases {
            assert_eq!(lex(text), Err(err(pos, message)), "{text}");
        }
    }
}
