//! Waiting for something asynchronous to become true (a flush, an invalidation, an election), with a deadline
//! that fails the test with what it waited for instead of hanging it.

use std::{future::Future, time::Duration};

/// How often the condition is checked: short next to the deadlines tests give, long enough not to busy the
/// services they are waiting on.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// Checks `condition` until it holds; fails the test after `within` with "timed out after … waiting until
/// {what}". Checked once more at the deadline, so a slow check that succeeds late still counts.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let late = tokio::time::Instant::now() >= deadline;
        if condition().await {
            return;
        }
        assert!(!late, "timed out after {within:?} waiting until {what}");
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_once_the_condition_holds() {
        let checks = AtomicU32::new(0);

        eventually(Duration::from_secs(5), "the third check", || async {
            checks.fetch_add(1, Ordering::SeqCst) == 2
        })
        .await;

        assert_eq!(checks.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting until pigs fly")]
    async fn fails_with_what_it_waited_for() {
        eventually(Duration::from_millis(50), "pigs fly", || async { false }).await;
    }
}
