//! A database failure as callers need to see it: unavailable (a 503, retried) or a failed statement, with the
//! server's or the pool's error kept as its source.

use std::{fmt, sync::Arc};

/// The cause of a [`DbError`], kept for the logs. Shared rather than owned, because one failed group insert
/// answers every request in the group with the same failure.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// A database failure as callers need to see it. Each message is short; the PostgreSQL or pool error that
/// caused it is its `source()`, so a log of the whole chain (see `plumbing::chain`) carries the server's words.
#[derive(Debug)]
pub enum DbError {
    /// The URL or the pool settings are invalid.
    Config(Cause),
    /// The database cannot be reached in time (connect, pool wait, closed connection): a 503 for clients.
    Unavailable(Cause),
    /// A statement failed on the server.
    Query(tokio_postgres::Error),
}

impl DbError {
    /// Whether the server refused a row as a duplicate (`unique_violation`).
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Query(error) if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION))
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Config(_) => "invalid database settings",
            Self::Unavailable(_) => "database unavailable",
            Self::Query(_) => "database query failed",
        })
    }
}

// By hand rather than derived: the source is the error inside the `Arc`, not the `Arc`, so that callers can
// downcast it (to a `tokio_postgres::Error`, say).
impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(cause) | Self::Unavailable(cause) => Some(&**cause),
            Self::Query(error) => Some(error),
        }
    }
}

impl DbError {
    /// [`DbError::Unavailable`] for a reason of our own (a timeout, a shutdown) or another error.
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(Arc::from(cause.into()))
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        if unavailable(&error) {
            Self::Unavailable(Arc::new(error))
        } else {
            Self::Query(error)
        }
    }
}

/// Whether an error means "not now" rather than "not this": no server error code (the connection itself failed);
/// a cancelled statement (our timeout); or what a server says around a failover: a connection failure reported
/// by the server (class 08), shutting down or starting up (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03
/// cannot_connect_now), or a write refused because the server is now a replica (25006 read_only_sql_transaction).
/// The client gets a 503 with Retry-After, and a retry reaches the new primary.
fn unavailable(error: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    let Some(code) = error.code() else {
        return true;
    };
    [
        SqlState::QUERY_CANCELED,
        SqlState::READ_ONLY_SQL_TRANSACTION,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
    ]
    .contains(code)
        || code.code().starts_with("08")
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(Arc::new(error))
    }
}
