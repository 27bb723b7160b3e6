//! Hit counting: every redirect adds one to its visit's count in memory, and a background task writes all counts
//! to PostgreSQL's primary as batched upserts, so a popular link is never a hot row.
//!
//! Two lanes. The hits of links with a visit limit are written every tick (`--hits-flush-interval-ms`), so the
//! limit is enforced promptly. Everything else, where visits came from and the hits of every other link (almost
//! all of them), is summed in memory for a sources interval (`--hit-sources-flush-interval-ms`) and then written
//! a chunk at a time, spread over the next interval: a link visited all the time costs a few rows per sources
//! interval instead of one per tick, and the database sees a steady trickle instead of a burst each tick. (The
//! hits flush was the largest cost beside the redirect itself in `make bench`: ~17k upserts a second under
//! uniform traffic, 14-40 µs of PostgreSQL each on the core the load generator and Redis share.)
//!
//! - [`visit`]: where a hit comes from (referrer domain, device class, country), read off the request.
//! - [`counter`]: the in-memory counts, in shards, and the in-process bound on a limited link's visits.
//! - [`counts`]: what one count is kept under, and the maps that hold counts.
//! - [`pending`]: counts taken out and not yet written, in their two lanes, cut into chunks of whole links.
//! - [`rows`]: pending counts as the columns of the hits and sources upserts.
//! - [`flusher`]: the background task that writes them, every tick and paced over each sources interval.
//! - [`exhausted`]: links the flush ended at their visit limit, and how every replica learns it.

pub mod counter;
pub mod counts;
pub mod exhausted;
#[cfg(test)]
mod fixtures;
pub mod flusher;
pub mod pending;
pub mod rows;
pub mod visit;

pub use counter::HitCounter;
pub use flusher::Flusher;
