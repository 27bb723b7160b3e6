//! Which codes a read replica may be missing only because it lags: the ones created within the last minute.
//! Only those are confirmed on the primary before a 404; any other code is a 404 on the replica's word, so a
//! flood of made-up codes (what a scanner sends) never reaches the primary.
//!
//! A generated code is base62 of a Snowflake ID, whose time field says when it was minted; an alias says
//! nothing, so aliases are remembered from the `+CODE` announcements the shortener publishes on create. A
//! generated code whose announcement was missed (the subscriber was reconnecting) is still known fresh by its
//! time; an alias announced while the subscriber was away is not, and may be a 404 for as long as the replica
//! lags (the local cache is dropped on every reconnect, so not for longer).

use std::time::Duration;

use idgen::Layout;
use moka::sync::Cache;
use plumbing::clock::SharedClock;

/// How long after its creation a code may still be missing from a replica. Replicas that lag longer than this
/// answer 404 for new codes until they catch up; the lag is a metric of its own in PostgreSQL.
pub const LAG_WINDOW: Duration = Duration::from_secs(60);

/// How far ahead of this clock an ID's time may be and still count as minted now (generators' clocks differ).
const CLOCK_SKEW_MS: u64 = 5_000;

/// Most aliases remembered at once: a minute of alias creates at a rate no API key limit allows.
const MAX_ANNOUNCED_ALIASES: u64 = 100_000;

/// The codes created within [`LAG_WINDOW`].
pub struct Freshness {
    layout: Layout,
    clock: SharedClock,
    aliases: Cache<Box<str>, ()>,
}

impl Freshness {
    /// Tells minted times with `layout`, as the generators write them, against `clock`.
    pub fn new(layout: Layout, clock: SharedClock) -> Self {
        Self {
            layout,
            clock,
            aliases: Cache::builder()
                .max_capacity(MAX_ANNOUNCED_ALIASES)
                .time_to_live(LAG_WINDOW)
                .build(),
        }
    }

    /// Notes that `code` was just created. A generated code tells its own age, so only aliases are kept.
    pub fn announced(&self, code: &str) {
        if !self.minted_recently(code) {
            self.aliases.insert(code.into(), ());
        }
    }

    /// Whether `code` may exist although a replica does not have it yet.
    pub fn may_lag(&self, code: &str) -> bool {
        self.minted_recently(code) || self.aliases.contains_key(code)
    }

    fn minted_recently(&self, code: &str) -> bool {
        let Some(minted) = links::code::decode(code)
            .and_then(|id| self.layout.decode(id))
            .map(|decoded| decoded.unix_ms)
        else {
            return false;
        };
        let now = u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0);
        let window = u64::try_from(LAG_WINDOW.as_millis()).unwrap_or(u64::MAX);
        minted <= now.saturating_add(CLOCK_SKEW_MS) && now.saturating_sub(minted) <= window
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
        let layout = Layout::default();
        links::code::encode(layout.compose(unix_ms - layout.epoch_ms(), 3, 7))
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
}
