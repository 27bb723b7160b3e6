//! Short codes: base62 (`0-9A-Za-z`) of a link's 64-bit ID, sharing one namespace with custom aliases.

/// Longest code or alias that can exist; anything longer is rejected before any lookup.
pub const MAX_CODE_LEN: usize = 64;

/// The code of a generated link: base62 of its ID, most significant digit first.
pub fn encode(id: u64) -> String {
    base62::encode(id)
}

/// The ID of a base62 code; `None` for text that is not one.
pub fn decode(code: &str) -> Option<u64> {
    if code.is_empty() || code.len() > 11 {
        return None;
    }
    u64::try_from(base62::decode(code).ok()?).ok()
}

/// Whether `code` could name a link at all: 1–64 characters of `[A-Za-z0-9_-]`. The redirect answers 404 for
/// anything else without touching a backend, so junk paths cannot reach Redis or PostgreSQL.
pub fn is_plausible(code: &str) -> bool {
    !code.is_empty() && code.len() <= MAX_CODE_LEN && code.bytes().all(is_code_byte)
}

/// The characters codes and aliases are made of.
pub fn is_code_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_standard_base62_alphabet() {
        assert_eq!(encode(0), "0");
        assert_eq!(encode(61), "z");
        assert_eq!(encode(62), "10");
        assert_eq!(encode(u64::MAX), "LygHa16AHYF");
    }

    #[test]
    fn decode_inverts_encode_and_refuses_junk() {
        for id in [0, 1, 61, 62, 123_456_789, u64::MAX] {
            assert_eq!(decode(&encode(id)), Some(id));
        }
        assert_eq!(decode(""), None);
        assert_eq!(decode("a-b"), None);
        assert_eq!(decode("zzzzzzzzzzzz"), None);
    }

    #[test]
    fn distinct_ids_give_distinct_codes() {
        let codes: std::collections::HashSet<_> =
            (0..10_000u64).map(|n| encode(n * 7_919)).collect();
        assert_eq!(codes.len(), 10_000);
    }

    #[test]
    fn junk_paths_are_not_plausible_codes() {
        assert!(is_plausible("aZ09_-"));
        assert!(!is_plausible(""));
        assert!(!is_plausible("a.b"));
        assert!(!is_plausible("favicon.ico"));
        assert!(!is_plausible(&"a".repeat(65)));
        assert!(!is_plausible("ü"));
    }
}
