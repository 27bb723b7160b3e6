//! The link domain shared by the shortener (writes) and the redirect (reads): what a link is, how its code is
//! made and checked, how it is stored in PostgreSQL and cached in Redis.
//! Reaching the databases (pools, TLS, failover, the migration runner) is the `database` crate's.
//!
//! # Layout
//! - [`model`]: `Link`, `RedirectStatus`, and `Resolution` (what a redirect needs).
//! - [`code`]: base62 codes from IDs, and the cheap plausibility check the redirect runs before any lookup.
//! - [`validate`]: long URL normalisation and alias rules, with the Contract's error codes.
//! - [`schema`]: the migrations in order, applied with `database::migrate`.
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
#![forbid(unsafe_code)]

pub mod apikey;
pub mod cache;
pub mod code;
pub mod idempotency;
pub mod manage;
pub mod model;
pub mod outbox;
pub mod password;
pub mod schema;
pub mod stats;
pub mod store;
pub mod takedown;
pub mod validate;
