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
    fn the_hash_is_stable_and_hides_the_key() {
        let key = generate();
        assert_eq!(hash(&key), hash(&key));
        assert_ne!(hash(&key), hash(&generate()));
        assert_eq!(hash(&key).len(), 32);
    }
}
