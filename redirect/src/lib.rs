//! The redirect service: snowlink's read path. `GET /{code}` answers the link's own 301/302/307/308 from an
//! in-process cache, then Redis, then a PostgreSQL read replica (confirming misses on the primary so replica lag
//! never turns a new link into a 404), filling the upper tiers on the way back, negative answers included.
//! Hits are counted in memory and flushed in batches; invalidations arrive over Redis pub/sub.
//!
//! # Layout
//! Three rooms and the frame around them:
//! - [`tiers`]: the read path for a code, fastest tier first (worker copies, local cache, Redis, replicas,
//!   primary).
//! - [`http`]: the route's handler, its answers and pages, and the bounds a client meets (unknown codes,
//!   password tries).
//! - [`hits`]: where a visit comes from, hit counting and the batched flush (with links ended at their visit
//!   limit).
//! - [`invalidation`]: the pub/sub subscriber that drops changed codes from the local cache.
//! - [`config`], [`metrics`], [`priority`] (the background threads run below the HTTP workers) and [`startup`]
//!   (building the service as a list of steps, and the order it stops in).
#![forbid(unsafe_code)]

pub mod clicks;
pub mod config;
pub mod hits;
pub mod http;
pub mod invalidation;
pub mod metrics;
pub mod priority;
pub mod startup;
pub mod tiers;
