//! What one count is kept under (a link, a day, where the visit came from) and the maps that hold counts: the
//! shapes the counter, the pending counts and their rows share.

use std::collections::HashMap;

use super::visit::Device;

/// Shards of the counts, each behind its own mutex (and one map of the spares per shard).
pub(super) const SHARDS: usize = 32;

/// The referrer of a direct visit (no usable `Referer`).
pub(super) const DIRECT: u64 = 0;
/// The referrer of visits whose domains were past a bound.
pub(super) const OTHER: u64 = 1;

/// What one count is kept under: a link, a day, and where the visit came from. The referrer is a seeded hash of
/// its lower-cased domain (or [`DIRECT`], [`OTHER`]); the shard keeps the domain itself once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct VisitKey {
    pub(super) link_id: i64,
    /// The link has a visit limit: its hits are written every tick.
    pub(super) limited: bool,
    pub(super) day: i32,
    pub(super) device: Device,
    /// `[0, 0]` when no country header is configured.
    pub(super) country: [u8; 2],
    pub(super) referrer: u64,
    /// 1 + the index of the link's variant the visit went to; 0 for none.
    pub(super) variant: u8,
}

/// foldhash with a fixed seed for the counts: the keys' link ids are our own, never chosen by a request. The
/// referrer's hash inside a key comes from the counter's random seed, so a request cannot aim at a collision.
pub(super) type Counts = HashMap<VisitKey, u64, foldhash::fast::FixedState>;
pub(super) type Domains = HashMap<u64, Box<str>, foldhash::fast::FixedState>;

/// One shard's counts and the domains they name.
#[derive(Default)]
pub(super) struct Shard {
    pub(super) counts: Counts,
    pub(super) domains: Domains,
    pub(super) dropped: u64,
}
