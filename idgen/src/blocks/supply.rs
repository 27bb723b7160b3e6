//! The numbers a process holds: the current block, issued in order, and a spare wanted once half the current
//! one is used. And how big the next block is: twice the current one when it would last under a second, half
//! when it would last over a minute, so a process leases about once a second at most at any rate, and rarely
//! when idle. Plain state with no I/O, kept under one short lock by [`super::CodeBlocks`].

use std::{
    ops::Range,
    time::{Duration, Instant},
};

/// A block projected to last less than this is followed by one twice its size.
pub const GROW_BELOW: Duration = Duration::from_secs(1);
/// A block projected to last more than this is followed by one half its size.
pub const SHRINK_ABOVE: Duration = Duration::from_secs(60);

/// The current block and the spare.
#[derive(Debug)]
pub struct Supply {
    /// The block numbers are issued from.
    current: Range<u64>,
    /// The next number of `current` to issue.
    next: u64,
    /// When `current` began to be issued from, to tell how fast it goes.
    since: Instant,
    /// The block taken up once `current` is used up.
    spare: Option<Range<u64>>,
    min_block: u64,
    max_block: u64,
}

/// What one [`Supply::take_into`] did besides taking numbers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Took {
    /// A block was used up or the spare taken up: the live blocks changed.
    pub live_changed: bool,
    /// Half the current block is used and there is no spare: time to lease one.
    pub wants_spare: bool,
}

impl Supply {
    /// Starts issuing from `first`; blocks leased next are from `min_block` to `max_block` numbers.
    pub fn new(first: Range<u64>, min_block: u64, max_block: u64, now: Instant) -> Self {
        Self {
            next: first.start,
            current: first,
            since: now,
            spare: None,
            min_block,
            max_block,
        }
    }

    /// Moves numbers into `numbers` until it holds `count` or both blocks are used up; in increasing order within
    /// each block. `now` is asked only when the spare is taken up.
    pub fn take_into(
        &mut self,
        numbers: &mut Vec<u64>,
        count: usize,
        now: impl Fn() -> Instant,
    ) -> Took {
        let mut took = Took::default();
        let had_numbers = self.next < self.current.end;
        loop {
            let wanted = u64::try_from(count.saturating_sub(numbers.len())).unwrap_or(u64::MAX);
            let end = self.next.saturating_add(wanted).min(self.current.end);
            numbers.extend(self.next..end);
            self.next = end;
            if numbers.len() >= count {
                break;
            }
            let Some(spare) = self.spare.take() else {
                break;
            };
            self.next = spare.start;
            self.current = spare;
            self.since = now();
            took.live_changed = true;
        }
        took.live_changed |= had_numbers && self.next >= self.current.end;
        took.wants_spare = self.wants_spare();
        took
    }

    /// Whether a spare should be leased now: none is held and half the current block is used.
    pub fn wants_spare(&self) -> bool {
        self.spare.is_none() && self.used().saturating_mul(2) >= block_len(&self.current)
    }

    /// The size of the spare to lease now, from how fast the current block goes.
    pub fn next_size(&self, now: Instant) -> u64 {
        let (len, used) = (block_len(&self.current), self.used());
        let elapsed = now.saturating_duration_since(self.since);
        // Projected life of the current block at the rate it has been used so far.
        // None used yet: infinite (or NaN), so no end in sight.
        let pace = len as f64 / used as f64;
        let life =
            Duration::try_from_secs_f64(elapsed.as_secs_f64() * pace).unwrap_or(Duration::MAX);
        next_size(len, life, self.min_block, self.max_block)
    }

    /// Stores a newly leased spare.
    pub fn add_spare(&mut self, spare: Range<u64>) {
        self.spare = Some(spare);
    }

    /// The blocks numbers may still be issued from: the current one unless used up, and the spare.
    pub fn live(&self) -> Vec<Range<u64>> {
        let current = (self.next < self.current.end).then(|| self.current.clone());
        current.into_iter().chain(self.spare.clone()).collect()
    }

    fn used(&self) -> u64 {
        self.next - self.current.start
    }
}

fn block_len(block: &Range<u64>) -> u64 {
    block.end - block.start
}

/// The next block's size after one of `len` numbers projected to last `life`.
pub fn next_size(len: u64, life: Duration, min_block: u64, max_block: u64) -> u64 {
    let size = if life < GROW_BELOW {
        len.saturating_mul(2)
    } else if life > SHRINK_ABOVE {
        len / 2
    } else {
        len
    };
    size.clamp(min_block, max_block.max(min_block))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(supply: &mut Supply, count: usize) -> (Vec<u64>, Took) {
        let mut numbers = Vec::new();
        let took = supply.take_into(&mut numbers, count, Instant::now);
        (numbers, took)
    }

    #[test]
    fn numbers_come_in_order_and_run_on_into_the_spare() {
        let mut supply = Supply::new(10..14, 4, 100, Instant::now());
        supply.add_spare(100..104);

        let (numbers, took) = take(&mut supply, 6);

        assert_eq!(numbers, [10, 11, 12, 13, 100, 101]);
        assert!(took.live_changed);
        assert_eq!(
            supply.live(),
            vec![Range {
                start: 100,
                end: 104
            }]
        );
        assert!(!take(&mut supply, 1).1.live_changed);
    }

    #[test]
    fn a_spare_is_wanted_once_half_the_current_block_is_used() {
        let mut supply = Supply::new(0..10, 10, 100, Instant::now());

        assert!(!take(&mut supply, 4).1.wants_spare);
        assert!(take(&mut supply, 1).1.wants_spare);
        supply.add_spare(10..20);
        assert!(!supply.wants_spare());
    }

    #[test]
    fn with_both_blocks_used_up_it_stops_short() {
        let mut supply = Supply::new(0..3, 3, 3, Instant::now());

        let (numbers, took) = take(&mut supply, 5);

        assert_eq!(numbers, [0, 1, 2]);
        assert!(took.wants_spare);
        assert!(took.live_changed, "the used-up block is no longer live");
        assert!(supply.live().is_empty());
        assert!(!take(&mut supply, 1).1.live_changed);
    }

    #[test]
    fn blocks_double_when_fast_halve_when_slow_within_bounds() {
        let second = Duration::from_secs(1);
        assert_eq!(next_size(1_000, second / 10, 1_000, 1_500), 1_500);
        assert_eq!(next_size(1_000, second / 10, 1_000, 10_000), 2_000);
        assert_eq!(next_size(8_000, second * 10, 1_000, 10_000), 8_000);
        assert_eq!(next_size(8_000, second * 600, 1_000, 10_000), 4_000);
        assert_eq!(next_size(1_000, Duration::MAX, 1_000, 10_000), 1_000);
    }

    #[test]
    fn the_next_size_follows_the_current_blocks_pace() {
        let start = Instant::now();
        let mut supply = Supply::new(0..1_000, 1_000, 1_000_000, start);
        take(&mut supply, 500);

        assert_eq!(supply.next_size(start + Duration::from_millis(100)), 2_000);
        assert_eq!(supply.next_size(start + Duration::from_secs(10)), 1_000);
    }
}
