//! The secret behind compact codes (`CODE_KEY`, or the file `CODE_KEY_FILE` names), and the fingerprint of it the
//! database keeps.

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};

/// Fewest hex digits a key may have: 128 bits.
const MIN_KEY_HEX: usize = 32;
/// Most hex digits a key may have: 1,024 bits.
const MAX_KEY_HEX: usize = 256;

/// The secret behind the permutation (`CODE_KEY`): 128 to 1,024 bits, given in hex.
#[derive(Clone)]
pub struct CodeKey(Vec<u8>);

/// Why a `CODE_KEY` was refused.
#[derive(Debug, thiserror::Error)]
#[error("CODE_KEY must be {MIN_KEY_HEX} to {MAX_KEY_HEX} hex digits (128 to 1,024 bits; `openssl rand -hex 32` makes one), an even number of them")]
pub struct BadCodeKey;

impl CodeKey {
    /// The key written as hex (surrounding whitespace ignored, as a key file ends with a newline).
    ///
    /// # Errors
    /// Too short, too long, or not hex.
    pub fn from_hex(text: &str) -> Result<Self, BadCodeKey> {
        let text = text.trim();
        if !(MIN_KEY_HEX..=MAX_KEY_HEX).contains(&text.len()) {
            return Err(BadCodeKey);
        }
        hex::decode(text).map(Self).map_err(|_| BadCodeKey)
    }

    /// What the database keeps to recognise the key, and nothing that helps recover it or the permutation: a
    /// domain-separated SHA-256, in hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.derive(b"snowlink/code-key/fingerprint"))
    }

    /// 128 bits for the permutation, independent of the fingerprint.
    pub(super) fn permutation_key(&self) -> [u8; 16] {
        let mut key = [0; 16];
        key.copy_from_slice(&self.derive(b"snowlink/code-key/permutation")[..16]);
        key
    }

    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(purpose);
        hash.update([0]);
        hash.update(&self.0);
        hash.finalize().into()
    }
}

impl fmt::Debug for CodeKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("CodeKey([REDACTED])")
    }
}

/// The key every test's settings share (`for_tests`), so the shortener and redirect of a test agree: public, so
/// never one to deploy.
pub const TEST_KEY: &str = "000102030405060708090a0b0c0d0e0f";

/// Where the key comes from: the shortener needs it to make codes, the redirect to tell which number a code has.
/// `CODE_KEY_FILE` names a file holding it instead (a mounted Secret; see `plumbing::env_files`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CodeKeyArgs {
    /// The secret key of compact codes: 32 to 256 hex digits (`openssl rand -hex 32`). Every shortener and
    /// redirect of a deployment needs the same one, for good: another key would reissue codes already given.
    #[arg(long, env = "CODE_KEY", hide_env_values = true)]
    pub code_key: Option<SecretString>,
}

impl CodeKeyArgs {
    /// Settings holding `key` (tests).
    pub fn with_key(key: &str) -> Self {
        Self {
            code_key: Some(key.to_owned().into()),
        }
    }

    /// The key, if one is given.
    ///
    /// # Errors
    /// A key that is no key.
    pub fn key(&self) -> Result<Option<CodeKey>, BadCodeKey> {
        self.code_key
            .as_ref()
            .map(|key| CodeKey::from_hex(key.expose_secret()))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_128_to_1024_bits_of_hex() {
        assert!(CodeKey::from_hex(&"ab".repeat(16)).is_ok());
        assert!(CodeKey::from_hex(&format!("{}\n", "ab".repeat(32))).is_ok());
        assert!(CodeKey::from_hex(&"ab".repeat(15)).is_err());
        assert!(CodeKey::from_hex(&"ab".repeat(129)).is_err());
        assert!(CodeKey::from_hex(&"zz".repeat(16)).is_err());
        assert!(CodeKey::from_hex(&format!("{}a", "ab".repeat(16))).is_err());
    }

    #[test]
    fn the_fingerprint_tells_keys_apart_and_hides_them() {
        let key = CodeKey::from_hex(&"ab".repeat(16)).expect("a key");
        let other = CodeKey::from_hex(&"ac".repeat(16)).expect("a key");
        assert_ne!(key.fingerprint(), other.fingerprint());
        assert!(!key.fingerprint().contains("abab"));
        assert_eq!(format!("{key:?}"), "CodeKey([REDACTED])");
    }

    #[test]
    fn no_key_given_is_none_and_a_bad_one_an_error() {
        assert!(CodeKeyArgs::default()
            .key()
            .expect("nothing to read")
            .is_none());
        assert!(CodeKeyArgs::with_key("abc").key().is_err());
        assert!(CodeKeyArgs::with_key(TEST_KEY)
            .key()
            .expect("a key")
            .is_some());
    }
}
