//! Which codes a read replica may be missing only because it lags, and so may be confirmed on the primary before a
//! 404 (within the budget of [`crate::tiers::confirm`]): the ones created within the last minute. Any other code is
//! a 404 on the replica's word, so a flood of made-up codes (what a scanner sends) never reaches the primary.
//!
//! A generated code is base62 of a Snowflake ID, whose time field says when it was minted and whose worker field
//! says by which generator; an alias says nothing, so aliases are remembered from the `+CODE` announcements the
//! shortener publishes on create. Anyone can forge a code with the current time, so the time alone is not enough:
//! a generated code qualifies only if its worker ID is one that is minting now, i.e. one whose codes this process
//! heard announced within [`LIVE_WORKER_WINDOW`] (every create announces its code, so a worker that mints is heard
//! within moments). That is the cheapest sound source of live worker IDs: the announcements already arrive, one
//! message per create, and cost a map insert. Reading the leases from ZooKeeper would give every redirect replica
//! a ZooKeeper session, a dependency and a failure mode it does not have; asking a database which workers minted
//! lately is a query per replica and per interval, and a replica that lags is what the question is about.
//!
//! What the announcements cannot say is what the subscriber did not hear: until it is subscribed, and for codes
//! minted before its latest (re)subscription or before it fell behind its buffer, any worker's codes qualify by
//! their time alone, as they all did before (so a redirect that just started, or whose Redis connection came back,
//! never answers 404 for a new link that its replica has not replayed). A minute later those codes are no longer
//! fresh anyway. An alias announced while the subscriber was away is not known fresh, and may be a 404 for as long
//! as the replica lags (the local cache is dropped on every reconnect, so not for longer).
//!
//! A worker ID that is leased now and minting can still be read off any real code and forged with the current
//! time: such codes qualify, and only the budget of primary confirmations keeps them off the primary.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use idgen::Layout;
use moka::sync::Cache;
use plumbing::clock::SharedClock;

/// How long after its creation a code may still be missing from a replica. Replicas that lag longer than this
/// answer 404 for new codes until they catch up; the lag is a metric of its own in PostgreSQL.
pub const LAG_WINDOW: Duration = Duration::from_secs(60);

/// How long a worker ID counts as minting after its last code was heard. Longer than [`LAG_WINDOW`] so that a
/// generator that creates rarely, and whose newest code's announcement is late (the shortener's outbox retrying),
/// still has that code confirmed; short enough that a generator gone for good stops qualifying.
pub const LIVE_WORKER_WINDOW: Duration = Duration::from_secs(600);

/// How far ahead of this clock an ID's time may be and still count as minted now (generators' clocks differ).
const CLOCK_SKEW_MS: u64 = 5_000;

/// Most aliases remembered at once: a minute of alias creates at a rate no API key limit allows.
const MAX_ANNOUNCED_ALIASES: u64 = 100_000;

/// Most worker IDs remembered at once (the default layout has 1,024).
const MAX_WORKERS: u64 = 65_536;

/// Not subscribed: every fresh code qualifies whatever its worker.
const DEAF: u64 = u64::MAX;

/// The codes created within [`LAG_WINDOW`].
pub struct Freshness {
    layout: Layout,
    clock: SharedClock,
    aliases: Cache<Box<str>, ()>,
    /// Worker IDs whose codes were heard announced within [`LIVE_WORKER_WINDOW`].
    workers: Cache<u64, ()>,
    /// Codes minted up to this time (Unix ms) may have been announced while the subscriber was not listening
    /// ([`DEAF`] while it is not).
    heard_after_ms: AtomicU64,
}

impl Freshness {
    /// Tells minted times with `layout`, as the generators write them, against `clock`. Deaf until
    /// [`listening`](Self::listening).
    pub fn new(layout: Layout, clock: SharedClock) -> Self {
        Self {
            layout,
            clock,
            aliases: Cache::builder()
                .max_capacity(MAX_ANNOUNCED_ALIASES)
                .time_to_live(LAG_WINDOW)
                .build(),
            workers: Cache::builder()
                .max_capacity(layout.worker_count().min(MAX_WORKERS))
                .time_to_live(LIVE_WORKER_WINDOW)
                .build(),
            heard_after_ms: AtomicU64::new(DEAF),
        }
    }

    /// The subscriber hears every announcement from now on (it just subscribed, or fell behind and goes on):
    /// what was announced before may have been missed.
    pub fn listening(&self) {
        self.heard_after_ms.store(self.now_ms(), Ordering::Release);
    }

    /// The subscriber may be missing announcements from now on (its connection is being made anew).
    pub fn deaf(&self) {
        self.heard_after_ms.store(DEAF, Ordering::Release);
    }

    /// Notes that `code` was just created: it may lag for [`LAG_WINDOW`], and a generated code's worker is
    /// minting.
    pub fn announced(&self, code: &str) {
        if let Some((_, worker)) = self.minted_recently(code) {
            self.workers.insert(worker, ());
        } else {
            self.aliases.insert(code.into(), ());
        }
    }

    /// Whether `code` may exist although a replica does not have it yet.
    pub fn may_lag(&self, code: &str) -> bool {
        match self.minted_recently(code) {
            Some((minted, worker)) => {
                let missed_up_to = self.heard_after_ms.load(Ordering::Acquire);
                minted <= missed_up_to.saturating_add(CLOCK_SKEW_MS)
                    || self.workers.contains_key(&worker)
            }
            None => self.aliases.contains_key(code),
        }
    }

    /// When and by which worker `code` was minted, if it is a Snowflake ID of the last [`LAG_WINDOW`].
    fn minted_recently(&self, code: &str) -> Option<(u64, u64)> {
        let decoded = links::code::decode(code).and_then(|id| self.layout.decode(id))?;
        let now = self.now_ms();
        let window = u64::try_from(LAG_WINDOW.as_millis()).unwrap_or(u64::MAX);
        let minted = decoded.unix_ms;
        (minted <= now.saturating_add(CLOCK_SKEW_MS) && now.saturating_sub(minted) <= window)
            .then_some((minted, decoded.worker))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use plumbing::clock::ManualClock;

    use super::*;

    fn at(unix_ms: i64) -> (Freshness, ManualClock) {
        let clock =
            ManualClock::at(chrono::DateTime::from_timestamp_millis(unix_ms).expect("time"));
        (
            Freshness::new(Layout::default(), Arc::new(clock.clone())),
            clock,
        )
    }

    fn code_minted_at(unix_ms: u64) -> String {
        code_minted_by(unix_ms, 3)
    }

    fn code_minted_by(unix_ms: u64, worker: u64) -> String {
        let layout = Layout::default();
        links::code::encode(layout.compose(unix_ms - layout.epoch_ms(), worker, 7))
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn a_code_minted_within_the_minute_may_lag_and_an_older_one_may_not() {
        let (fresh, clock) = at(NOW);
        let code = code_minted_at(NOW as u64 - 1_000);
        assert!(fresh.may_lag(&code));
        clock.advance(chrono::Duration::seconds(60));
        assert!(!fresh.may_lag(&code));
    }

    #[test]
    fn made_up_codes_do_not_look_fresh() {
        let (fresh, _) = at(NOW);
        for junk in ["aZ3kP9qLm2", "zzzzzzzzzz", "0000000000", "my-alias", "x"] {
            assert!(!fresh.may_lag(junk), "{junk}");
        }
        let far_future = code_minted_at(NOW as u64 + 3_600_000);
        assert!(!fresh.may_lag(&far_future));
    }

    #[test]
    fn an_announced_alias_may_lag_for_the_window() {
        let (fresh, _) = at(NOW);
        assert!(!fresh.may_lag("launch-day"));
        fresh.announced("launch-day");
        assert!(fresh.may_lag("launch-day"));
    }

    #[test]
    fn once_listening_a_fresh_code_qualifies_only_if_its_worker_was_heard_minting() {
        let (fresh, clock) = at(NOW);
        fresh.listening();
        clock.advance(chrono::Duration::seconds(10));
        let now = NOW as u64 + 10_000;
        let forged = code_minted_by(now, 4);
        assert!(!fresh.may_lag(&forged), "nobody heard worker 4 mint");

        fresh.announced(&code_minted_by(now - 500, 4));

        assert!(fresh.may_lag(&forged));
        assert!(!fresh.may_lag(&code_minted_by(now, 5)));
    }

    #[test]
    fn codes_minted_before_the_subscription_qualify_whatever_their_worker() {
        let (fresh, clock) = at(NOW);
        fresh.listening();
        clock.advance(chrono::Duration::seconds(10));
        assert!(fresh.may_lag(&code_minted_by(NOW as u64 - 1_000, 6)));
        assert!(!fresh.may_lag(&code_minted_by(NOW as u64 + 9_000, 6)));
    }

    #[test]
    fn while_reconnecting_every_worker_qualifies_again() {
        let (fresh, clock) = at(NOW);
        fresh.listening();
        clock.advance(chrono::Duration::seconds(10));
        let code = code_minted_by(NOW as u64 + 9_000, 9);
        assert!(!fresh.may_lag(&code));

        fresh.deaf();

        assert!(fresh.may_lag(&code));
    }
}
