//! Counting hits: where a visit comes from, read off the request, its count kept in memory, and the background
//! task that writes the counts to PostgreSQL in batches and ends links at their visit limit.
//!
//! - [`visit`]: where a hit comes from (referrer domain, device class, country), read off the request.
//! - [`counter`]: the in-memory counts and the batched flush.

pub mod counter;
pub mod visit;
