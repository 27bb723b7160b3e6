//! The flags of webhook delivery: how failed deliveries are retried, and how long before they are given up.

use std::time::Duration;

use super::RetryPolicy;

/// Webhook delivery.
#[derive(Debug, Clone, clap::Args)]
pub struct DeliveryArgs {
    /// Milliseconds before the first retry of a failed delivery; each further one waits twice as long (a random
    /// point in the upper half of that wait, so receivers that come back are not hit by every sender at once).
    #[arg(long, env = "WEBHOOK_RETRY_FIRST_MS", default_value_t = 1_000)]
    pub webhook_retry_first_ms: u64,
    /// The longest wait between retries, in milliseconds.
    #[arg(long, env = "WEBHOOK_RETRY_LONGEST_MS", default_value_t = 600_000)]
    pub webhook_retry_longest_ms: u64,
    /// Seconds after its first failure that a delivery is given up (dropped, counted), and that a webhook failing
    /// all along is paused.
    #[arg(long, env = "WEBHOOK_GIVE_UP_SECS", default_value_t = 86_400)]
    pub webhook_give_up_secs: u64,
}

impl Default for DeliveryArgs {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        Self {
            webhook_retry_first_ms: u64::try_from(policy.first.as_millis()).unwrap_or(u64::MAX),
            webhook_retry_longest_ms: u64::try_from(policy.longest.as_millis()).unwrap_or(u64::MAX),
            webhook_give_up_secs: policy.give_up_after.as_secs(),
        }
    }
}

impl DeliveryArgs {
    /// The retry policy the flags say.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            first: Duration::from_millis(self.webhook_retry_first_ms.max(1)),
            longest: Duration::from_millis(self.webhook_retry_longest_ms.max(1)),
            give_up_after: Duration::from_secs(self.webhook_give_up_secs.max(1)),
        }
    }
}
