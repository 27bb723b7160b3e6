//! The link domain shared by the shortener (writes) and the redirect (reads): what a link is, how its code is
//! made and checked, how it is stored in PostgreSQL and cached in Redis.
//!
//! # Layout
//! - [`model`]: `Link`, `RedirectStatus`, and `Resolution` (what a redirect needs).
//! - [`code`]: base62 codes from IDs, and the cheap plausibility check the redirect runs before any lookup.
//! - [`validate`]: long URL normalisation and alias rules, each refusal a variant of `Invalid`.
//! - [`db`]: PostgreSQL pools with timeouts, and the list of migrations.
//! - [`migrate`]: applying migrations safely on a big, busy database (no statement timeout, short lock timeouts
//!   retried, concurrent index builds outside a transaction), and the rules a new migration follows.
//! - [`failover`]: following the primary across a failover (no connection outlives a demotion), and which host
//!   is primary for `/readyz` and the `postgres_primary` gauge.
//! - [`pool_metrics`]: PostgreSQL pool usage as Prometheus gauges.
//! - [`store`]: the SQL on the hot paths (redirect lookup, authentication, the reuse lookup).
//! - [`manage`]: the SQL that creates links (one multi-row insert, for single creates and batches alike) and
//!   manages them and keys: an owner's links, key administration.
//! - [`outbox`]: invalidations owed to Redis and the redirect replicas, queued with the change that needs them.
//! - [`takedown`]: the operator's view of a link (owner, state) and disabling or enabling it.
//! - [`idempotency`]: stored answers for `Idempotency-Key`, claimed and recorded with the links they answer for.
//! - [`stats`]: hits written by the redirect's flush (per day and by source, visit limits ended), and read back:
//!   per day (zero days filled), by source, and whether a caller may see a link.
//! - [`cache`]: the Redis client and key names; the cached value codec, the invalidation protocol, the flags.
//! - [`apikey`]: API key generation and hashing.
//! - [`password`]: Argon2id hashes of link passwords.
//! - [`chain`]: an error with its causes, for logs.
//! - [`tls`]: TLS to PostgreSQL (`sslmode`, `sslrootcert`) and Redis (`rediss://`), with rustls.
#![forbid(unsafe_code)]

pub mod apikey;
pub mod cache;
pub mod chain;
pub mod code;
pub mod db;
pub mod failover;
pub mod idempotency;
pub mod manage;
pub mod migrate;
pub mod model;
pub mod outbox;
pub mod password;
pub mod pool_metrics;
pub mod stats;
pub mod store;
pub mod takedown;
pub mod tls;
pub mod validate;
