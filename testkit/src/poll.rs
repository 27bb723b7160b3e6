//! Waiting for something asynchronous to become true (a flush, an invalidation, an election), with a deadline
//! that fails the test with what it waited for instead of hanging it.

use std::{future::Future, time::Duration};

/// How often the condition is checked: short next to the deadlines tests give, long enough not to busy the
/// services they are waiting on.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// What a check may answer: `bool` (holds or not) or `Option<T>` (the value once it is there), so one
/// [`eventually`] serves both waiting for a state and waiting for a value.
pub trait Settled {
    /// What [`eventually`] returns once the check holds.
    type Value;
    /// `Some` once the check holds.
    fn settled(self) -> Option<Self::Value>;
}

impl Settled for bool {
    type Value = ();

    fn settled(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Settled for Option<T> {
    type Value = T;

    fn settled(self) -> Option<T> {
        self
    }
}

/// Checks `condition` until it holds (`true`, or `Some(value)`) and returns its value; fails the test after
/// `within` with "timed out after … waiting until {what}". Checked once more at the deadline, so a slow check
/// that succeeds late still counts.
pub async fn eventually<F, Fut, S>(within: Duration, what: &str, mut condition: F) -> S::Value
where
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
    S: Settled,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let late = tokio::time::Instant::now() >= deadline;
        if let Some(value) = condition().await.settled() {
            return value;
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
    async fn returns_the_value_the_check_found() {
        let checks = AtomicU32::new(0);

        let found = eventually(Duration::from_secs(5), "a value", || async {
            let check = checks.fetch_add(1, Ordering::SeqCst);
            (check == 1).then_some(check * 10)
        })
        .await;

        assert_eq!(found, 10);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting until pigs fly")]
    async fn fails_with_what_it_waited_for() {
        eventually(Duration::from_millis(50), "pigs fly", || async { false }).await;
    }
}
