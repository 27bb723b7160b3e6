//! `code_key`: the fingerprint of the key behind compact codes, recorded once, so that a shortener started with
//! another key refuses to start instead of reissuing codes already given out.

use database::DbError;

use crate::store::Store;

impl Store {
    /// Records `fingerprint` if no key was recorded yet, and returns the one recorded (ours, or the first
    /// shortener's when it differs).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn record_code_key(&self, fingerprint: &str) -> Result<String, DbError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO code_key (fingerprint) VALUES ($1) ON CONFLICT (singleton) DO NOTHING",
                &[&fingerprint],
            )
            .await?;
        let row = client
            .query_one("SELECT fingerprint FROM code_key", &[])
            .await?;
        Ok(row.get(0))
    }
}
