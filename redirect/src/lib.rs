//! The redirect service: snowlink's read path. `GET /{code}` answers the link's own 301/302/307/308 from Redis,
//! or on a miss from a PostgreSQL read replica (confirming misses on the primary so replica lag never turns a
//! new link into a 404), and fills Redis on the way back, negative answers included.
//!
//! # Layout
//! - [`config`]: command line.
//! - [`lookup`]: the tiers behind a code, and how each failure degrades.
//! - [`answer`]: turning a target into an HTTP answer (status, Location, caching headers, 404/410 bodies).
//! - [`startup`]: building and running the application.
#![forbid(unsafe_code)]

pub mod answer;
pub mod config;
pub mod lookup;
pub mod startup;
