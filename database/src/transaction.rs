//! Transactions whose statements PostgreSQL itself cancels when the caller's deadline passes, and the read-only
//! transaction a request's reads go through.

use std::time::Duration;

use deadpool_postgres::Pool;

use crate::error::DbError;

/// Makes PostgreSQL cancel any statement, lock wait or idle gap of the transaction `tx` that outlasts `within`
/// (at least 1 ms: PostgreSQL reads 0 as "no limit"). `SET LOCAL` through `set_config(…, true)`, so the bound
/// ends with the transaction and a pooled connection goes back with the pool's own settings.
///
/// # Errors
/// When the database fails.
pub async fn bound_transaction(
    tx: &impl deadpool_postgres::GenericClient,
    within: Duration,
) -> Result<(), DbError> {
    let millis = within
        .as_millis()
        .clamp(1, u128::from(u32::MAX))
        .to_string();
    let statement = tx
        .prepare_cached(
            "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $1, true),
                    set_config('idle_in_transaction_session_timeout', $1, true)",
        )
        .await?;
    tx.query_one(&statement, &[&millis]).await?;
    Ok(())
}

/// Runs `read` in a read-only transaction whose statements PostgreSQL itself cancels after `within` (see
/// [`bound_transaction`]). A request's reads go through here with what is left of its deadline: a read the
/// request stopped waiting for would otherwise run on for the pool's whole statement timeout, holding its pooled
/// connection, and the next request to get that connection would queue behind it.
///
/// # Errors
/// When the database fails or the bound passes.
pub async fn read_within<T>(
    pool: &Pool,
    within: Duration,
    read: impl AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let mut client = pool.get().await?;
    let tx = client.build_transaction().read_only(true).start().await?;
    bound_transaction(&tx, within).await?;
    let value = read(&tx).await?;
    tx.commit().await?;
    Ok(value)
}
