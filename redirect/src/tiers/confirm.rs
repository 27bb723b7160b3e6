//! The per-process budget of primary confirmations: a replica's 404 for a code that replica lag can explain is
//! asked again of the primary only while this token bucket has a token. Forged codes can be made to look fresh
//! (the current time, a worker ID read off any real code), so no test of the code itself keeps them off the
//! primary; this budget does: past it the replica's 404 stands, whatever the codes and however many clients send
//! them. A legitimate confirmation is rare (a code followed within moments of its creation, before the replica
//! has it and with Redis missing it too), so the default budget is far above what real traffic needs and far
//! below what the primary's pool could be made to do.
//!
//! Measured on `Instant` (an interval, not a date: see [`plumbing::clock`]); one lock per confirmation asked
//! for, which only replica misses of fresh-looking codes reach.

use std::{sync::Mutex, time::Instant};

/// A token bucket: `rate` tokens a second, at most `burst` kept.
pub struct Confirmations {
    rate: f64,
    burst: f64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Confirmations {
    /// `per_second` confirmations a second, and up to `burst` at once (at least one when the rate is not 0).
    /// Starts full.
    pub fn new(per_second: u32, burst: u32) -> Self {
        let burst = if per_second == 0 {
            0.0
        } else {
            f64::from(burst.max(1))
        };
        Self {
            rate: f64::from(per_second),
            burst,
            bucket: Mutex::new(Bucket {
                tokens: burst,
                refilled: Instant::now(),
            }),
        }
    }

    /// Takes a token if there is one: whether a confirmation may be made now.
    pub fn take(&self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&self, now: Instant) -> bool {
        if self.burst < 1.0 {
            return false;
        }
        // A poisoned lock only means another thread panicked between two float assignments: the bucket is
        // still a number of tokens, so it is used as it is.
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_granted_and_then_only_the_rate() {
        let budget = Confirmations::new(50, 10);
        let start = Instant::now();
        let granted = (0..100).filter(|_| budget.take_at(start)).count();
        assert_eq!(granted, 10);
        let later = start + Duration::from_millis(100);
        let granted = (0..100).filter(|_| budget.take_at(later)).count();
        assert_eq!(granted, 5, "50 a second for a tenth of a second");
    }

    #[test]
    fn tokens_do_not_pile_up_past_the_burst() {
        let budget = Confirmations::new(50, 10);
        let much_later = Instant::now() + Duration::from_secs(3_600);
        let granted = (0..1_000).filter(|_| budget.take_at(much_later)).count();
        assert_eq!(granted, 10);
    }

    #[test]
    fn a_rate_of_zero_grants_nothing() {
        let budget = Confirmations::new(0, 10);
        assert!(!budget.take());
    }
}
