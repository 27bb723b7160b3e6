//! API keys: random, shown once, stored only as a SHA-256 hash, and every statement on `api_keys` (the lookup
//! that authenticates a request, creating, listing and revoking keys). A fast hash is right here (unlike
//! passwords): keys carry 192 random bits, so there is nothing to brute-force, and a lookup must cost microseconds.

use chrono::{DateTime, Utc};
use database::DbError;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::store::Store;

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

/// An API key as the operator sees it (never the key itself).
#[derive(Debug, Clone)]
pub struct ApiKeyInfo {
    /// Its ID (the owner ID of its links).
    pub id: i64,
    /// Whose it is.
    pub name: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Store {
    /// The owner ID of the live API key whose hash ([`hash`]) is `key_hash`.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn owner_of_key_hash(&self, key_hash: &[u8]) -> Result<Option<i64>, DbError> {
        let client = self.pool().get().await?;
        let statement = client
            .prepare_cached("SELECT id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .await?;
        let row = client.query_opt(&statement, &[&key_hash]).await?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Creates an API key named `name`; returns its ID and the key, which is not stored and cannot be shown again.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn create_api_key(&self, name: &str) -> Result<(i64, String), DbError> {
        let client = self.pool().get().await?;
        let key = generate();
        let row = client
            .query_one(
                "INSERT INTO api_keys (name, key_hash) VALUES ($1, $2) RETURNING id",
                &[&name, &hash(&key)],
            )
            .await?;
        Ok((row.get(0), key))
    }

    /// Every API key, oldest first.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, DbError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                "SELECT id, name, created_at, revoked_at FROM api_keys ORDER BY id",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| ApiKeyInfo {
                id: row.get(0),
                name: row.get(1),
                created_at: row.get(2),
                revoked_at: row.get(3),
            })
            .collect())
    }

    /// Revokes every live key named `name`; returns how many were revoked. Their links stay.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn revoke_api_keys(&self, name: &str) -> Result<u64, DbError> {
        let client = self.pool().get().await?;
        Ok(client
            .execute(
                "UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
                &[&name],
            )
            .await?)
    }
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
