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
//!
//! A compact code (7 characters, a keyed permutation of a counter number) says nothing about time, but with the
//! code key this process can tell which number it is, and every shortener announces the blocks of the counter it
//! issues from (`*start-end`) when it leases one and every few seconds while it issues from it. So a compact code
//! qualifies if its number lies in a block heard within [`LAG_WINDOW`] (or the code itself was announced). The
//! live blocks hold a few thousand numbers out of 3.5 × 10^12, so a random 7-character code is almost never one;
//! numbers of a live block that were not issued yet can be forged, and again the budget is what bounds them.
//! Blocks announced while the subscriber was not listening are announced again within
//! [`BLOCK_REANNOUNCE_GRACE`]; until then, as for Snowflake codes, any compact code qualifies.

use std::{
    collections::BTreeMap,
    ops::Range,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::Duration,
};

use idgen::Layout;
use links::code::CompactCodes;
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

/// How long after (re)subscribing every compact code qualifies: longer than the shortener's interval between
/// announcements of the blocks it issues from, so a block announced while this process was not listening has
/// been heard again by then.
pub const BLOCK_REANNOUNCE_GRACE: Duration = Duration::from_secs(15);

/// Most blocks remembered at once: a minute of leases from a hundred shorteners at the fastest lease rate, each
/// block kept by its start. Past it the blocks of the lowest numbers, the oldest, go first.
const MAX_BLOCKS: usize = 8_192;

/// The codes created within [`LAG_WINDOW`].
pub struct Freshness {
    layout: Layout,
    clock: SharedClock,
    aliases: Cache<Box<str>, ()>,
    /// Worker IDs whose codes were heard announced within [`LIVE_WORKER_WINDOW`].
    workers: Cache<u64, ()>,
    /// Tells which number a compact code is; `None` without the code key (then only announced compact codes
    /// qualify).
    compact: Option<CompactCodes>,
    /// Blocks of the code counter announced, by start: (end, when last heard in Unix ms).
    blocks: Mutex<BTreeMap<u64, (u64, u64)>>,
    /// The length of the codes of the highest number announced (7 until the counter passes 62^7): while blocks
    /// may have gone unheard, only compact codes up to this length qualify, not the 10-character codes of IDs.
    frontier_len: AtomicU64,
    /// Codes minted up to this time (Unix ms) may have been announced while the subscriber was not listening
    /// ([`DEAF`] while it is not).
    heard_after_ms: AtomicU64,
}

impl Freshness {
    /// Tells minted times with `layout`, as the generators write them, and compact codes' numbers with
    /// `compact`, against `clock`. Deaf until [`listening`](Self::listening).
    pub fn new(layout: Layout, compact: Option<CompactCodes>, clock: SharedClock) -> Self {
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
            compact,
            blocks: Mutex::new(BTreeMap::new()),
            frontier_len: AtomicU64::new(links::code::compact::MIN_LEN as u64),
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
        if let Some((_, worker)) = self.minted_recently(links::domain::code_of_key(code)) {
            self.workers.insert(worker, ());
        } else {
            self.aliases.insert(code.into(), ());
        }
    }

    /// Notes that a shortener issues compact codes from `block`.
    pub fn block_announced(&self, block: Range<u64>) {
        if let Some(len) = self
            .compact
            .as_ref()
            .and_then(|codes| codes.code_len(block.end - 1))
        {
            self.frontier_len.fetch_max(len as u64, Ordering::Relaxed);
        }
        let now = self.now_ms();
        let mut blocks = self
            .blocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        blocks.insert(block.start, (block.end, now));
        if blocks.len() > MAX_BLOCKS {
            blocks.retain(|_, (_, heard)| !outside_window(now, *heard));
        }
        while blocks.len() > MAX_BLOCKS {
            blocks.pop_first();
        }
    }

    /// Whether `code` may exist although a replica does not have it yet.
    pub fn may_lag(&self, code: &str) -> bool {
        // A link on another domain is keyed `host/code`; its code was minted like any other.
        let (_, bare) = links::domain::split_key(code);
        match self.minted_recently(bare) {
            Some((minted, worker)) => {
                let missed_up_to = self.heard_after_ms.load(Ordering::Acquire);
                minted <= missed_up_to.saturating_add(CLOCK_SKEW_MS)
                    || self.workers.contains_key(&worker)
            }
            None => self.aliases.contains_key(code) || self.in_a_live_block(bare),
        }
    }

    /// Whether `code` is a compact code of a number in a block heard within [`LAG_WINDOW`], or any compact code
    /// no longer than the highest number's while blocks may have been announced unheard.
    fn in_a_live_block(&self, code: &str) -> bool {
        let Some(number) = self.compact.as_ref().and_then(|codes| codes.decode(code)) else {
            return false;
        };
        let now = self.now_ms();
        let listening_since = self.heard_after_ms.load(Ordering::Acquire);
        let grace = u64::try_from(BLOCK_REANNOUNCE_GRACE.as_millis()).unwrap_or(u64::MAX);
        if now < listening_since.saturating_add(grace) {
            return code.len() as u64 <= self.frontier_len.load(Ordering::Relaxed);
        }
        let blocks = self
            .blocks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        blocks
            .range(..=number)
            .next_back()
            .is_some_and(|(_, (end, heard))| number < *end && !outside_window(now, *heard))
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

/// Whether something heard at `heard` (Unix ms) is older than [`LAG_WINDOW`] at `now`.
fn outside_window(now: u64, heard: u64) -> bool {
    now.saturating_sub(heard) > u64::try_from(LAG_WINDOW.as_millis()).unwrap_or(u64::MAX)
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
            Freshness::new(Layout::default(), Some(compact()), Arc::new(clock.clone())),
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

    fn compact() -> CompactCodes {
        CompactCodes::new(
            &links::code::CodeKey::from_hex(links::code::key::TEST_KEY).expect("a key"),
        )
    }

    /// Listening for longer than the grace, at `NOW` + 20 s.
    fn listening_past_the_grace() -> (Freshness, ManualClock) {
        let (fresh, clock) = at(NOW);
        fresh.listening();
        clock.advance(chrono::Duration::seconds(20));
        (fresh, clock)
    }

    #[test]
    fn a_compact_code_qualifies_while_its_block_was_heard_within_the_minute() {
        let (fresh, clock) = listening_past_the_grace();
        let codes = compact();
        let issued = codes.encode(5_000_123).expect("a code");
        assert!(!fresh.may_lag(&issued), "no block heard yet");
        fresh.block_announced(5_000_000..5_001_000);
        assert!(fresh.may_lag(&issued));
        assert!(
            !fresh.may_lag(&codes.encode(5_001_000).expect("a code")),
            "past the block's end"
        );
        assert!(
            !fresh.may_lag(&codes.encode(4_999_999).expect("a code")),
            "before its start"
        );
        clock.advance(chrono::Duration::seconds(61));
        assert!(!fresh.may_lag(&issued), "the block was not heard again");
        fresh.block_announced(5_000_000..5_001_000);
        assert!(fresh.may_lag(&issued), "heard again");
    }

    #[test]
    fn random_compact_codes_do_not_qualify_beside_live_blocks() {
        let (fresh, _) = listening_past_the_grace();
        for start in (0..100u64).map(|block| block * 1_000_000) {
            fresh.block_announced(start..start + 10_000);
        }
        // SplitMix64: random enough for codes a scanner makes up, and no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mixed = (state ^ (state >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            let mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            mixed ^ (mixed >> 31)
        };
        let alphabet = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let qualifying = (0..100_000)
            .filter(|_| {
                let code: String = (0..7)
                    .map(|_| char::from(alphabet[(next() % 62) as usize]))
                    .collect();
                fresh.may_lag(&code)
            })
            .count();
        assert_eq!(
            qualifying, 0,
            "{qualifying} of 100,000 random codes qualified"
        );
    }

    #[test]
    fn every_compact_code_qualifies_until_blocks_are_announced_again_after_subscribing() {
        let (fresh, clock) = at(NOW);
        let code = compact().encode(77).expect("a code");
        assert!(fresh.may_lag(&code), "deaf");
        fresh.listening();
        clock.advance(chrono::Duration::seconds(10));
        assert!(fresh.may_lag(&code), "within the grace");
        clock.advance(chrono::Duration::seconds(10));
        assert!(!fresh.may_lag(&code), "past the grace");
    }

    #[test]
    fn without_the_key_only_announced_compact_codes_qualify() {
        let clock = ManualClock::at(chrono::DateTime::from_timestamp_millis(NOW).expect("time"));
        let fresh = Freshness::new(Layout::default(), None, Arc::new(clock));
        let code = compact().encode(77).expect("a code");
        fresh.block_announced(0..1_000);
        assert!(!fresh.may_lag(&code));
        fresh.announced(&code);
        assert!(fresh.may_lag(&code));
    }

    #[test]
    fn remembered_blocks_are_bounded() {
        let (fresh, _) = listening_past_the_grace();
        for start in 0..(MAX_BLOCKS as u64 + 100) {
            fresh.block_announced(start * 10..start * 10 + 10);
        }
        assert_eq!(fresh.blocks.lock().expect("not poisoned").len(), MAX_BLOCKS);
    }

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
