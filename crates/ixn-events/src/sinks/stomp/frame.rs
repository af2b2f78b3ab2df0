//! STOMP 1.2 frames: encoding and an incremental decoder.
//!
//! The decoder takes the bytes received so far and returns either a whole frame, a heart-beat
//! (a bare end of line between frames) or "need more". It applies the 1.2 rules: `\r\n` or `\n`
//! line ends, header value escapes (`\r`, `\n`, `\c`, `\\`; any other escape is an error) except
//! in CONNECT and CONNECTED frames, the first of repeated headers wins, and a `content-length`
//! header makes the body binary (it may contain NUL); without it the body ends at the first NUL.
//! It does no I/O.

use std::fmt::Write as _;

/// Largest command and header block accepted; a larger one is a protocol error.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Largest body accepted.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One STOMP frame.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Frame {
    pub command: String,
    /// Headers in wire order; repeated names are kept, [`Frame::header`] returns the first.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What [`decode`] found at the start of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    Frame(Frame),
    /// A bare end of line: a heart-beat, or the optional end of line after a frame's NUL.
    HeartBeat,
}

/// Why received bytes are not a STOMP frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("header line without a colon: {0:?}")]
    HeaderWithoutColon(String),
    #[error("undefined escape sequence \\{0} in a header")]
    BadEscape(char),
    #[error("a header ends in the middle of an escape sequence")]
    DanglingEscape,
    #[error("frame text is not UTF-8")]
    NotUtf8,
    #[error("invalid content-length {0:?}")]
    BadContentLength(String),
    #[error("the body of content-length {0} is not followed by NUL")]
    MissingNul(usize),
    #[error("frame headers exceed {MAX_HEADER_BYTES} bytes")]
    HeadersTooLarge,
    #[error("frame body exceeds {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
}

impl Frame {
    pub fn new(command: impl Into<String>) -> Frame {
        Frame {
            command: command.into(),
            ..Frame::default()
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Frame {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Frame {
        self.body = body.into();
        self
    }

    /// The value of the first header with this name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Appends the wire form to `out`. A `content-length` header is added when the frame has a
    /// body and none was given, so bodies may hold any byte.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let escape = escapes_headers(&self.command);
        let mut text = String::with_capacity(64 + self.headers.len() * 32);
        text.push_str(&self.command);
        text.push('\n');
        for (name, value) in &self.headers {
            push_header_part(&mut text, name, escape);
            text.push(':');
            push_header_part(&mut text, value, escape);
            text.push('\n');
        }
        if !self.body.is_empty() && self.header("content-length").is_none() {
            let _ = writeln!(text, "content-length:{}", self.body.len());
        }
        text.push('\n');
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(&self.body);
        out.push(0);
    }

    /// The wire form as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// CONNECT and CONNECTED frames carry raw header values (for compatibility with STOMP 1.0).
fn escapes_headers(command: &str) -> bool {
    command != "CONNECT" && command != "CONNECTED"
}

fn push_header_part(out: &mut String, text: &str, escape: bool) {
    if !escape {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            ':' => out.push_str("\\c"),
            c => out.push(c),
        }
    }
}

fn unescape(raw: &str, escape: bool) -> Result<String, FrameError> {
    if !escape || !raw.contains('\\') {
        return Ok(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            Some(other) => return Err(FrameError::BadEscape(other)),
            None => return Err(FrameError::DanglingEscape),
        }
    }
    Ok(out)
}

/// Decodes the first frame or heart-beat of `buf`; `Ok(None)` when more bytes are needed.
/// Returns what was found and how many bytes it used.
pub fn decode(buf: &[u8]) -> Result<Option<(Decoded, usize)>, FrameError> {
    match buf {
        [] | [b'\r'] => return Ok(None),
        [b'\n', ..] => return Ok(Some((Decoded::HeartBeat, 1))),
        [b'\r', b'\n', ..] => return Ok(Some((Decoded::HeartBeat, 2))),
        _ => {}
    }
    let Some(header_end) = find_header_end(buf)? else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..header_end.lines_end]).map_err(|_| FrameError::NotUtf8)?;
    let mut lines = head
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let command = lines.next().unwrap_or_default().to_owned();
    let escape = escapes_headers(&command);
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(FrameError::HeaderWithoutColon(line.to_owned()));
        };
        headers.push((unescape(name, escape)?, unescape(value, escape)?));
    }
    let mut frame = Frame {
        command,
        headers,
        body: Vec::new(),
    };
    let body_start = header_end.body_start;
    let rest = &buf[body_start..];
    let used = match frame.header("content-length") {
        Some(length) => {
            let length: usize = length
                .trim()
                .parse()
                .map_err(|_| FrameError::BadContentLength(length.to_owned()))?;
            if length > MAX_BODY_BYTES {
                return Err(FrameError::BodyTooLarge);
            }
            if rest.len() <= length {
                return Ok(None);
            }
            if rest[length] != 0 {
                return Err(FrameError::MissingNul(length));
            }
            frame.body = rest[..length].to_vec();
            body_start + length + 1
        }
        None => match rest.iter().position(|b| *b == 0) {
            Some(nul) => {
                frame.body = rest[..nul].to_vec();
                body_start + nul + 1
            }
            None if rest.len() > MAX_BODY_BYTES => return Err(FrameError::BodyTooLarge),
            None => return Ok(None),
        },
    };
    Ok(Some((Decoded::Frame(frame), used)))
}

/// Where the header block ends: `lines_end` is the end of the last header line (without its
/// line end), `body_start` the first byte after the blank line.
struct HeaderEnd {
    lines_end: usize,
    body_start: usize,
}

fn find_header_end(buf: &[u8]) -> Result<Option<HeaderEnd>, FrameError> {
    let mut line_start = 0;
    let mut previous_line_end = 0;
    while let Some(offset) = buf[line_start..].iter().position(|b| *b == b'\n') {
        let newline = line_start + offset;
        let line = &buf[line_start..newline];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() && line_start > 0 {
            return Ok(Some(HeaderEnd {
                lines_end: previous_line_end,
                body_start: newline + 1,
            }));
        }
        previous_line_end = line_start + line.len();
        line_start = newline + 1;
        if line_start > MAX_HEADER_BYTES {
            return Err(FrameError::HeadersTooLarge);
        }
    }
    if buf.len() > MAX_HEADER_BYTES {
        return Err(FrameError::HeadersTooLarge);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(bytes: &[u8]) -> (Frame, usize) {
        match decode(bytes) {
            Ok(Some((Decoded::Frame(frame), used))) => (frame, used),
            other => panic!("expected a frame from {bytes:?}, got {other:?}"),
        }
    }

    /// Wire bytes, then the expected command, headers and body.
    type Case<'a> = (&'a [u8], &'a str, &'a [(&'a str, &'a str)], &'a [u8]);

    #[test]
    fn decodes_frames() {
        let cases: &[Case] = &[
            (
                b"RECEIPT\nreceipt-id:7\n\n\0",
                "RECEIPT",
                &[("receipt-id", "7")],
                b"",
            ),
            (b"MESSAGE\r\na:1\r\n\r\nhi\0", "MESSAGE", &[("a", "1")], b"hi"),
            (
                b"MESSAGE\ncontent-length:3\n\na\0b\0",
                "MESSAGE",
                &[("content-length", "3")],
                b"a\0b",
            ),
            (
                b"ERROR\nmessage:x\\cy\\\\z\\n\n\nbad\0",
                "ERROR",
                &[("message", "x:y\\z\n")],
                b"bad",
            ),
            (
                b"CONNECTED\nserver:a\\cb\n\n\0",
                "CONNECTED",
                &[("server", "a\\cb")],
                b"",
            ),
            (
                b"MESSAGE\nk:v:w\nk:second\n\n\0",
                "MESSAGE",
                &[("k", "v:w"), ("k", "second")],
                b"",
            ),
            (b"MESSAGE\nempty:\n\n\0", "MESSAGE", &[("empty", "")], b""),
        ];
        for (bytes, command, headers, body) in cases {
            let (decoded, used) = frame(bytes);
            assert_eq!(used, bytes.len(), "{bytes:?}");
            assert_eq!(decoded.command, *command);
            let expected: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            assert_eq!(decoded.headers, expected, "{bytes:?}");
            assert_eq!(decoded.body, *body);
        }
    }

    #[test]
    fn first_repeated_header_wins() {
        let (decoded, _) = frame(b"MESSAGE\nk:first\nk:second\n\n\0");
        assert_eq!(decoded.header("k"), Some("first"));
        assert_eq!(decoded.header("missing"), None);
    }

    #[test]
    fn heart_beats_and_frame_trailers() {
        assert_eq!(decode(b"\n"), Ok(Some((Decoded::HeartBeat, 1))));
        assert_eq!(decode(b"\r\nRECEIPT"), Ok(Some((Decoded::HeartBeat, 2))));
        assert_eq!(decode(b"\r"), Ok(None));
        assert_eq!(decode(b""), Ok(None));
        // A frame followed by its optional end of line and the next frame.
        let bytes = b"RECEIPT\nreceipt-id:1\n\n\0\nRECEIPT\nreceipt-id:2\n\n\0";
        let (first, used) = frame(bytes);
        assert_eq!(first.header("receipt-id"), Some("1"));
        assert_eq!(decode(&bytes[used..]), Ok(Some((Decoded::HeartBeat, 1))));
        let (second, rest) = frame(&bytes[used + 1..]);
        assert_eq!(second.header("receipt-id"), Some("2"));
        assert_eq!(used + 1 + rest, bytes.len());
    }

    #[test]
    fn incomplete_input_needs_more() {
        let whole = b"MESSAGE\ncontent-length:4\n\nab\0d\0";
        for end in 0..whole.len() {
            assert_eq!(decode(&whole[..end]), Ok(None), "prefix of {end} bytes");
        }
        let (decoded, used) = frame(whole);
        assert_eq!((decoded.body.as_slice(), used), (&b"ab\0d"[..], whole.len()));
        assert_eq!(decode(b"MESSAGE\n\nno nul yet"), Ok(None));
    }

    #[test]
    fn malformed_frames_are_errors() {
        let cases: &[(&[u8], FrameError)] = &[
            (
                b"MESSAGE\nnocolon\n\n\0",
                FrameError::HeaderWithoutColon("nocolon".into()),
            ),
            (b"MESSAGE\na:\\t\n\n\0", FrameError::BadEscape('t')),
            (b"MESSAGE\na:x\\\n\n\0", FrameError::DanglingEscape),
            (
                b"MESSAGE\ncontent-length:x\n\n\0",
                FrameError::BadContentLength("x".into()),
            ),
            (b"MESSAGE\ncontent-length:1\n\nab\0", FrameError::MissingNul(1)),
            (b"MESSAGE\na:\xff\n\n\0", FrameError::NotUtf8),
        ];
        for (bytes, expected) in cases {
            assert_eq!(decode(bytes).as_ref().err(), Some(expected), "{bytes:?}");
        }
        let huge = vec![b'a'; MAX_HEADER_BYTES + 2];
        assert_eq!(decode(&huge), Err(FrameError::HeadersTooLarge));
    }

    #[test]
    fn encoding_escapes_and_round_trips() {
        let send = Frame::new("SEND")
            .with_header("destination", "/queue/a")
            .with_header("odd:name", "line\nbreak\\back\rret")
            .with_body(&b"{\"a\":\0}"[..]);
        let bytes = send.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with(
            "SEND\ndestination:/queue/a\nodd\\cname:line\\nbreak\\\\back\\rret\ncontent-length:7\n\n"
        ));
        let (decoded, used) = frame(&bytes);
        assert_eq!(used, bytes.len());
        assert_eq!(decoded.header("odd:name"), Some("line\nbreak\\back\rret"));
        assert_eq!(decoded.body, send.body);

        // CONNECT values are sent as they are.
        let connect = Frame::new("CONNECT").with_header("passcode", "a:b");
        assert_eq!(connect.to_bytes(), b"CONNECT\npasscode:a:b\n\n\0");
    }
}
