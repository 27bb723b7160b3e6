//! Click and link events on their way from the process that sees them to the receivers that want them: what an
//! event is ([`event`]), and the durable queue between the redirect and shortener processes that take events
//! and the shortener processes that deliver them ([`queue`]: a Redis Stream read by a consumer group, the
//! retries due later, and the owners with a live stream open).
//!
//! Why a Redis Stream and not a PostgreSQL outbox: at 10,000 clicks a second an outbox is 10,000 inserts and as
//! many deletes a second on the primary, the one part of the system that does not scale out, for data that is
//! not the system of record; a stream is an append to memory that any number of shortener processes read in a
//! consumer group, each entry handed to one of them and kept, until acknowledged, across a restart of either
//! side (a crashed consumer's entries are claimed by another after a while). What it does not survive is Redis
//! losing its memory without persistence: run the Redis that holds it with `appendonly yes` where that matters.

pub mod event;
pub mod queue;

pub use event::{Click, Event, Kind};
pub use queue::{Queue, QueueError, Retry, Taken};
