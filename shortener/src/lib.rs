//! The shortener: snowlink's write API. It validates a long URL, takes an ID from the embedded generator (worker
//! ID leased in ZooKeeper) and a code (a number from a leased block of the code counter, permuted), stores the link in PostgreSQL (durable before the 201) and writes it through to
//! Redis so the first redirect is already a cache hit.
//!
//! # Layout
//! - [`config`]: command line: `serve`, `migrate`, `keys`, `links`, `cleanup --once`, `domains`, `import`.
//! - [`startup`]: building and running the application.
//! - [`state`]: what handlers share.
//! - [`stores`]: connecting to PostgreSQL and migrating it, for `serve` and the other commands alike.
//! - [`codes`]: the codes of new links (compact or snowflake style), the code key's check, the block announcer.
//! - [`auth`]: the API-key extractors.
//! - [`key_cache`]: API key → owner in memory, dropped the moment any key changes.
//! - [`limits`]: per-IP, per-key and anonymous rate limits.
//! - [`hashing`]: password hashing within a process-wide bound and a per-key budget.
//! - [`deadline`]: 503 for requests a dependency makes too slow.
//! - [`idempotency`]: `Idempotency-Key`: a retried create gets the first answer, never a second link.
//! - [`group_insert`]: links of concurrent creates inserted by one statement and one commit.
//! - [`import`]: links brought over from another shortener's export file (`POST /v1/import`, `shortener import`).
//! - [`exports`]: how many CSV exports run at once, per key and in all.
//! - [`errors`]: every error a client can get, and every error code with its status.
//! - [`outbox`]: invalidations of deleted and disabled links, delivered at once and retried while Redis fails.
//! - [`takedown`]: the operator's `links show|disable|enable CODE`.
//! - [`domains`]: the operator's `domains add|list|remove`, and `GET /v1/domains`.
//! - [`cleanup`]: the purge of expired and deleted links, and the task running it on the leader.
//! - [`leader`]: leader election in ZooKeeper.
//! - [`qr`]: QR codes of short URLs as SVG or PNG.
//! - [`routes`]: one module per resource, and the web page.
//! - [`webhooks`]: the caller's webhooks over the API, the SSRF guard, signatures, and the sender.
//! - [`delivery`]: events delivered to webhooks from the queue, retried, and link events put on it.
//! - [`live`]: live streams of a link's click events.
#![forbid(unsafe_code)]

pub mod auth;
pub mod cleanup;
pub mod codes;
pub mod config;
pub mod deadline;
pub mod delivery;
pub mod domains;
pub mod errors;
pub mod exports;
pub mod group_insert;
pub mod hashing;
pub mod idempotency;
pub mod import;
pub mod key_cache;
pub mod leader;
pub mod limits;
pub mod live;
pub mod outbox;
pub mod qr;
pub mod routes;
pub mod startup;
pub mod state;
pub mod stores;
pub mod takedown;
pub mod webhooks;
