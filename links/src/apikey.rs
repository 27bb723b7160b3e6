//! API keys: random, shown once, stored only as a SHA-256 hash. A fast hash is right here (unlike passwords):
//! keys carry 192 random bits, so there is nothing to brute-force, and a lookup must cost microseconds.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix that makes a snowlink key recognisable in logs and secret scanners.
pub const KEY_PREFIX: &str = "sl_";

/// A new random key: `sl_` and 48 hex digits.
pub fn generate() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// Whether `key` has the shape [`generate`] gives every key: anything else is refused without a database query.
pub fn is_well_formed(key: &str) -> bool {
    key.strip_prefix(KEY_PREFIX).is_some_and(|digits| {
        digits.len() == 48
            && digits
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The stored form of a key.
pub fn hash(key: &str) -> Vec<u8> {
    Sha256::digest(key.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_prefixed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 48);
    }

    #[test]
    fn only_the_shape_of_generated_keys_is_well_formed() {
        assert!(is_well_formed(&generate()));
        for bad in [
            "",
            "sl_",
            "sl_not_a_key",
            &generate().to_uppercase(),
            &format!("{}0", generate()),
        ] {
            assert!(!is_well_formed(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_hash_is_stable_and_hides_the_key() {
        let key = generate();
        assert_eq!(hash(&key), hash(&key));
        assert_ne!(hash(&key), hash(&generate()));
        assert_eq!(hash(&key).len(), 32);
    }
}
