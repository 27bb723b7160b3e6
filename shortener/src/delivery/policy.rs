//! When a failed delivery is tried again, and when it is given up.

use std::time::Duration;

use rand::Rng as _;

/// Exponential backoff with jitter, bounded, for a retention period.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait between attempts.
    pub longest: Duration,
    /// How long after the first failure a delivery is given up, and how long a webhook may fail before it is
    /// paused.
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(1),
            longest: Duration::from_secs(600),
            give_up_after: Duration::from_secs(86_400),
        }
    }
}

impl RetryPolicy {
    /// The wait after `attempts` failed attempts: `first` doubled per attempt up to `longest`, then a random
    /// point in its upper half, so receivers that come back are not hit by every sender at once.
    pub fn wait_after(&self, attempts: u32) -> Duration {
        let doubled = self
            .first
            .saturating_mul(1_u32 << attempts.saturating_sub(1).min(20));
        let full = doubled.min(self.longest);
        let half = full / 2;
        half + full
            .saturating_sub(half)
            .mul_f64(rand::rng().random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_longest_with_jitter_in_the_upper_half() {
        let policy = RetryPolicy {
            first: Duration::from_secs(1),
            longest: Duration::from_secs(60),
            give_up_after: Duration::from_secs(3600),
        };
        for (attempts, full) in [(1, 1), (2, 2), (3, 4), (7, 60), (40, 60)] {
            for _ in 0..50 {
                let wait = policy.wait_after(attempts);
                let full = Duration::from_secs(full);
                assert!(wait >= full / 2 && wait <= full, "{attempts}: {wait:?}");
            }
        }
    }
}
