//! The redirect service: snowlink's read path. `GET /{code}` answers the link's own 301/302/307/308 from an
//! in-process cache, then Redis, then a PostgreSQL read replica (confirming misses on the primary so replica lag
//! never turns a new link into a 404), filling the upper tiers on the way back, negative answers included.
//! Hits are counted in memory and flushed in batches; invalidations arrive over Redis pub/sub.
//!
//! # Layout
//! - [`config`]: command line.
//! - [`resolver`]: the read path for one code (local cache, single flight, lower tiers).
//! - [`local`]: the in-process cache.
//! - [`front`]: each HTTP worker's own copies of the links it answered lately, in front of [`local`].
//! - [`fresh`]: which codes a replica may be missing only because it lags (confirmed on the primary).
//! - [`confirm`]: the per-process budget of those confirmations.
//! - [`misses`]: the bound on unknown codes per client (429 past it).
//! - [`lookup`]: the tiers below the local cache, and how each failure degrades.
//! - [`invalidation`]: the pub/sub subscriber that drops changed codes from the local cache.
//! - [`priority`]: the background threads run below the HTTP workers.
//! - [`visit`]: where a hit comes from (referrer domain, device class, country), read off the request.
//! - [`hits`]: hit counting and the batched flush (with the sources, and links ended at their visit limit).
//! - [`metrics`]: the Prometheus series, resolved once for the hot path.
//! - [`answer`]: turning a target into an HTTP answer (status, Location, caching headers, 404/410 bodies).
//! - [`pages`]: the password form and the preview page.
//! - [`unlock`]: `POST /{code}`, a password try on a protected link, bounded per client and link.
//! - [`tries`]: the bound on password tries per link, whoever makes them, with a lock that backs off.
//! - [`follow`]: the handler of `GET`/`HEAD`/`POST /{code}` and `GET /{code}+`, and the state it shares.
//! - [`startup`]: building the service as a list of steps, and the order it stops in.
#![forbid(unsafe_code)]

pub mod answer;
pub mod config;
pub mod confirm;
pub mod follow;
pub mod fresh;
pub mod front;
pub mod hits;
pub mod invalidation;
pub mod local;
pub mod lookup;
pub mod metrics;
pub mod misses;
pub mod pages;
pub mod priority;
pub mod resolver;
pub mod startup;
pub mod tries;
pub mod unlock;
pub mod visit;
