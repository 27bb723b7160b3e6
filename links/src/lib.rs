//! The link domain shared by the shortener (writes) and the redirect (reads): what a link is, how its code is
//! made and checked, how it is stored in PostgreSQL and cached in Redis.
//! Reaching the databases (pools, TLS, failover, the migration runner) is the `database` crate's.
//!
//! # Layout
//! - [`model`]: `Link`, `NewLink` (a link to insert), `RedirectStatus`, and `Resolution` (what a redirect needs).
//! - [`code`]: compact codes (a keyed permutation of leased numbers) and base62 codes of IDs, the code key, and
//!   the cheap plausibility check the redirect runs before any lookup.
//! - [`code_key`]: the fingerprint of the code key the database keeps.
//! - [`domain`]: the hosts links live on, the key a link is stored under (`host/code` off the default domain), and
//!   the table each service keeps in memory.
//! - [`validate`]: long URL normalisation and alias rules, each refusal a variant of `Invalid`.
//! - [`routing`]: rules and variants: parsed from the API's JSON, stored, and evaluated per visitor in process.
//! - [`schema`]: the migrations in order, applied with `database::migrate`.
//! - [`store`]: `Store`, the way in, and the SQL on the hot paths: the redirect's lookup, and the create path's
//!   reuse lookup and multi-row insert (for single creates and batches alike).
//! - [`imports`]: links brought over from another shortener's export: taken codes, reusable links, the batch insert
//!   with creation times and visit totals.
//! - [`manage`]: an owner's links: read with hits, list, search, export, change, delete.
//! - [`takedown`]: the operator's view of a link (owner, state), disabling, enabling and freeing it.
//! - [`retired`]: tombstones: the cleanup's purge of expired and deleted links, freeing old tombstones.
//! - [`hits`]: `link_hits` and `link_hit_sources`: written by the redirect's flush (per day and by source, visit
//!   limits ended), and read back (in all, per day with zero days filled, by source).
//! - [`apikey`]: API keys: generation and hashing, and `api_keys`: the lookup, creating, listing, revoking.
//! - [`outbox`]: invalidations owed to Redis and the redirect replicas, queued with the change that needs them.
//! - [`idempotency`]: stored answers for `Idempotency-Key`, claimed and recorded with the links they answer for.
//! - [`cache`]: the Redis client and key names; the cached value codec, the invalidation protocol, the flags.
//! - [`password`]: Argon2id hashes of link passwords.
//! - [`webhooks`]: the event types and `webhooks`: an owner's webhooks, and their failing and paused states.
//!
//! # One way into the store
//! - Callers reach PostgreSQL through [`store::Store`], a pool: each method is one operation on a connection of
//!   its own (and a transaction of its own when its statements must commit together), and takes what it needs
//!   as arguments. Callers outside this crate write no SQL of their own.
//! - A statement that must run inside a caller's transaction (the create path's reuse lookup and insert, beside
//!   its `Idempotency-Key`) is a free function over the caller's client, `&impl GenericClient` (or a
//!   `&Transaction` where only a transaction makes it right: the claim's advisory lock), in the module of its
//!   subject; the `Store` method of the same operation calls it.
//! - Each module holds the statements of one subject, with its own `impl Store` block: `api_keys` in
//!   [`apikey`], hits in [`hits`], `cache_invalidations` in [`outbox`], `idempotency_keys` in [`idempotency`],
//!   `retired_codes` in [`retired`] (and the operator's [`takedown`]), `webhooks` in [`webhooks`], links by who
//!   asks ([`store`], [`manage`], [`takedown`]). A read of links that sums their hits on the way stays with the
//!   read.
#![forbid(unsafe_code)]

pub mod apikey;
pub mod cache;
pub mod code;
pub mod code_key;
pub mod domain;
pub mod hits;
pub mod idempotency;
pub mod imports;
pub mod manage;
pub mod model;
pub mod outbox;
pub mod password;
pub mod retired;
pub mod routing;
pub mod schema;
pub mod store;
pub mod takedown;
pub mod validate;
pub mod webhooks;
