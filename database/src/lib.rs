//! Connections to PostgreSQL and the TLS they and Redis use: what every service needs to reach its databases,
//! whatever it stores there. The link schema and its SQL are in `links`, which builds on this.
//!
//! # Layout
//! Each module imports only those listed before it.
//! - [`error`]: `DbError`, a failure as callers need it: unavailable (a 503, retried) or a failed statement.
//! - [`tls`]: TLS to PostgreSQL (`sslmode`, `sslrootcert`) and Redis (`rediss://`), with rustls.
//! - [`failover`]: following the primary across a failover (no connection outlives a demotion), and which host
//!   is primary for `/readyz` and the `postgres_primary` gauge.
//! - [`pool`](mod@pool): PostgreSQL pools with timeouts, and the check that one answers.
//! - [`args`]: the PostgreSQL flags every service shares.
//! - [`transaction`]: transactions bounded server-side by the caller's deadline, and bounded reads.
//! - [`pool_metrics`]: PostgreSQL pool usage as Prometheus gauges.
//! - [`migrate`]: applying migrations safely on a big, busy database (no statement timeout, short lock timeouts
//!   retried, concurrent index builds outside a transaction), and the rules a new migration follows.
#![forbid(unsafe_code)]

pub mod args;
pub mod error;
pub mod failover;
pub mod migrate;
pub mod pool;
pub mod pool_metrics;
pub mod tls;
pub mod transaction;

pub use args::DatabaseArgs;
pub use error::DbError;
pub use pool::{check, pool, PoolOptions};
pub use transaction::{bound_transaction, read_within};
