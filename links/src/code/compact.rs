//! Compact codes: 7 characters for the first 62^7 (3.5 × 10^12) links. A number `n` that the ID service leased
//! to this process, never issued twice, goes through a keyed permutation and is written in base62, left-padded:
//! `code = base62(P_k(n))`. Past 62^7 numbers the next 62^8 get 8 characters (a permutation of their own range),
//! and so on up to 10, so a code's length alone says which range it is from, and codes of different lengths
//! never meet.
//!
//! Why a permutation and not the number itself: consecutive links must not have consecutive codes (anyone could
//! walk them), yet a bijection keeps "never the same number" as "never the same code", with no existence check.
//! The key ([`CodeKey`]) is what makes the order unguessable, so it is a secret; the database keeps only its
//! [`fingerprint`](CodeKey::fingerprint), to refuse a shortener started with another key (whose codes would
//! collide with the ones issued under the first).

use super::{feistel::Feistel, key::CodeKey};

/// Length of the shortest codes.
pub const MIN_LEN: usize = 7;
/// Length of the longest compact codes (beyond, numbers would meet the 10-character base62 IDs of the
/// snowflake style sooner than any install reaches them).
pub const MAX_LEN: usize = 10;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Numbers to codes and back under one key.
#[derive(Clone)]
pub struct CompactCodes {
    /// One permutation per code length, from [`MIN_LEN`].
    lengths: Vec<Feistel>,
}

impl CompactCodes {
    /// The codes `key` gives.
    pub fn new(key: &CodeKey) -> Self {
        let key = key.permutation_key();
        let lengths = (MIN_LEN..=MAX_LEN)
            .map(|len| Feistel::new(key, 62u64.pow(len as u32), len as u8))
            .collect();
        Self { lengths }
    }

    /// The code of number `n`; `None` past the last range (about 8.6 × 10^17 numbers).
    pub fn encode(&self, mut n: u64) -> Option<String> {
        for (feistel, len) in self.lengths.iter().zip(MIN_LEN..) {
            match feistel.permute(n) {
                Some(image) => return Some(base62_padded(image, len)),
                None => n -= feistel.domain(),
            }
        }
        None
    }

    /// The length of number `n`'s code, without making it; `None` past the last range.
    pub fn code_len(&self, mut n: u64) -> Option<usize> {
        for (feistel, len) in self.lengths.iter().zip(MIN_LEN..) {
            match n.checked_sub(feistel.domain()) {
                Some(rest) => n = rest,
                None => return Some(len),
            }
        }
        None
    }

    /// The number whose code is `code`; `None` for anything that is not a compact code (another length, a
    /// character outside base62).
    pub fn decode(&self, code: &str) -> Option<u64> {
        let index = code.len().checked_sub(MIN_LEN)?;
        let feistel = self.lengths.get(index)?;
        let offset: u64 = self.lengths[..index].iter().map(Feistel::domain).sum();
        Some(offset + feistel.invert(base62_value(code)?)?)
    }
}

fn base62_padded(mut value: u64, len: usize) -> String {
    let mut digits = vec![b'0'; len];
    for slot in digits.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    digits.into_iter().map(char::from).collect()
}

fn base62_value(code: &str) -> Option<u64> {
    code.bytes().try_fold(0u64, |value, byte| {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'A'..=b'Z' => byte - b'A' + 10,
            b'a'..=b'z' => byte - b'a' + 36,
            _ => return None,
        };
        value.checked_mul(62)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn codes() -> CompactCodes {
        CompactCodes::new(&CodeKey::from_hex(&"5a".repeat(16)).expect("a key"))
    }

    #[test]
    fn the_first_62_to_the_7_numbers_have_7_characters_and_the_next_8() {
        let codes = codes();
        let last7 = 62u64.pow(7) - 1;
        for n in [0, 1, 2, last7] {
            assert_eq!(codes.encode(n).expect("a code").len(), 7, "{n}");
        }
        for n in [last7 + 1, last7 + 62u64.pow(8)] {
            assert_eq!(codes.encode(n).expect("a code").len(), 8, "{n}");
        }
        assert_eq!(
            codes.encode(last7 + 62u64.pow(8) + 1).map(|c| c.len()),
            Some(9)
        );
        assert_eq!(codes.encode(u64::MAX), None);
        for n in [0, last7, last7 + 1, last7 + 62u64.pow(8) + 1, u64::MAX] {
            assert_eq!(
                codes.code_len(n),
                codes.encode(n).map(|code| code.len()),
                "{n}"
            );
        }
    }

    #[test]
    fn anything_but_a_compact_code_decodes_to_nothing() {
        let codes = codes();
        for junk in [
            "",
            "abc",
            "abcdef",
            "abc-def",
            "abcdefghijk",
            "ünicode",
            "abcdef_",
        ] {
            assert_eq!(codes.decode(junk), None, "{junk}");
        }
    }

    /// Spearman's rank correlation of two orders of the same items.
    fn rank_correlation(codes: &[String]) -> f64 {
        let mut by_code: Vec<usize> = (0..codes.len()).collect();
        by_code.sort_by(|a, b| codes[*a].cmp(&codes[*b]));
        let n = codes.len() as f64;
        let squares: f64 = by_code
            .iter()
            .enumerate()
            .map(|(rank, created)| (rank as f64 - *created as f64).powi(2))
            .sum();
        1.0 - 6.0 * squares / (n * (n * n - 1.0))
    }

    #[test]
    fn codes_of_consecutive_numbers_show_no_order() {
        let codes = codes();
        let start = 1_234_567;
        let issued: Vec<String> = (start..start + 100_000)
            .map(|n| codes.encode(n).expect("a code"))
            .collect();
        // Random orders of 100k items have a correlation of about ±0.003; the numbers themselves have 1.
        let correlation = rank_correlation(&issued);
        assert!(correlation.abs() < 0.02, "rank correlation {correlation}");
        // Chance shares a 3-character prefix once in 62^3 pairs (0.4 in 100k), a first character once in 62.
        let sharing = |len: usize| {
            issued
                .windows(2)
                .filter(|pair| pair[0][..len] == pair[1][..len])
                .count()
        };
        assert!(sharing(3) <= 5, "{} pairs share 3 characters", sharing(3));
        let first = sharing(1);
        assert!(
            (1_200..=2_000).contains(&first),
            "{first} pairs share the first character (chance: 1,613)"
        );
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(n in prop_oneof![0u64..62u64.pow(7), 0u64..900_000_000_000_000_000]) {
            let codes = codes();
            match codes.encode(n) {
                Some(code) => {
                    prop_assert!(code.bytes().all(|byte| byte.is_ascii_alphanumeric()));
                    prop_assert!(crate::code::is_plausible(&code));
                    prop_assert_eq!(codes.decode(&code), Some(n));
                }
                None => prop_assert!(n >= (MIN_LEN..=MAX_LEN).map(|len| 62u64.pow(len as u32)).sum::<u64>()),
            }
        }

        #[test]
        fn every_7_character_code_decodes_to_a_number_that_encodes_back(code in "[0-9A-Za-z]{7,10}") {
            let codes = codes();
            let n = codes.decode(&code).expect("every base62 string of these lengths is a code");
            prop_assert_eq!(codes.encode(n), Some(code));
        }
    }
}
