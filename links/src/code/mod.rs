//! Short codes, sharing one namespace with custom aliases: compact 7-character codes of numbers from leased
//! counter blocks ([`compact`], the default), or base62 (`0-9A-Za-z`) of a link's 64-bit ID (the snowflake
//! style, and every code issued before compact codes). Also the cheap plausibility check the redirect runs before
//! any lookup.

pub mod compact;
mod feistel;
pub mod key;

pub use compact::CompactCodes;
pub use key::{BadCodeKey, CodeKey, CodeKeyArgs};

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

/// Properties over every ID and any text, where the examples above pick a handful.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_id_round_trips_through_its_code(id in any::<u64>()) {
            prop_assert_eq!(decode(&encode(id)), Some(id));
        }

        #[test]
        fn a_generated_code_is_a_plausible_alphanumeric_code_of_at_most_11_chars(id in any::<u64>()) {
            let code = encode(id);
            prop_assert!((1..=11).contains(&code.len()), "{code}");
            prop_assert!(code.bytes().all(|byte| byte.is_ascii_alphanumeric()), "{code}");
            prop_assert!(is_plausible(&code), "{code}");
        }

        // The alphabet is in ASCII order, so codes sort like their IDs (shorter first): keyset cursors rely on it.
        #[test]
        fn codes_sort_like_their_ids(a in any::<u64>(), b in any::<u64>()) {
            let (code_a, code_b) = (encode(a), encode(b));
            prop_assert_eq!(a.cmp(&b), (code_a.len(), &code_a).cmp(&(code_b.len(), &code_b)));
        }

        #[test]
        fn decoding_any_text_never_panics_and_only_accepts_canonical_codes_up_to_leading_zeros(
            text in prop_oneof![any::<String>(), "[0-9A-Za-z]{0,13}", "[0-9A-Za-z_.-]{0,13}"]
        ) {
            if let Some(id) = decode(&text) {
                let canonical = text.trim_start_matches('0');
                prop_assert_eq!(encode(id), if canonical.is_empty() { "0" } else { canonical });
            }
        }

        #[test]
        fn plausible_codes_are_exactly_1_to_64_code_characters(
            text in prop_oneof![any::<String>(), "[A-Za-z0-9_-]{0,70}", "[A-Za-z0-9_./ü -]{0,70}"]
        ) {
            let expected = (1..=MAX_CODE_LEN).contains(&text.chars().count())
                && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            prop_assert_eq!(is_plausible(&text), expected, "{:?}", text);
        }
    }
}
