//! API key material: SHA-256 digests, hex decoding and constant-time comparison.
//!
//! Keys are only ever held as digests, so comparing a presented key costs one hash and a
//! fixed-length comparison whatever the stored key looked like.

use sha2::{Digest, Sha256};

pub(crate) type KeyDigest = [u8; 32];

/// Shortest clear-text key accepted from a configuration file.
pub(crate) const MIN_KEY_LEN: usize = 16;

pub(crate) fn digest(key: &str) -> KeyDigest {
    Sha256::digest(key.as_bytes()).into()
}

/// Equality whose time depends only on the length, not on where the first difference is.
pub(crate) fn ct_eq(a: &KeyDigest, b: &KeyDigest) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Decodes 64 hexadecimal digits (either case).
pub(crate) fn parse_hex_digest(s: &str) -> Option<KeyDigest> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_known_vector() {
        // SHA-256("abc") from FIPS 180-2.
        let expected = parse_hex_digest("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            .unwrap_or_default();
        assert_eq!(digest("abc"), expected);
        assert_ne!(expected, [0u8; 32]);
    }

    #[test]
    fn hex_parsing() {
        let cases = [
            ("00".repeat(32), Some([0u8; 32])),
            ("FF".repeat(32), Some([255u8; 32])),
            ("ff".repeat(31), None),
            (format!("{}g0", "00".repeat(31)), None),
            (format!("{}é", "0".repeat(62)), None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_hex_digest(&text), expected, "{text}");
        }
    }

    #[test]
    fn constant_time_equality() {
        let a = digest("one key of some length");
        let mut b = a;
        assert!(ct_eq(&a, &b));
        b[31] ^= 1;
        assert!(!ct_eq(&a, &b));
    }
}
