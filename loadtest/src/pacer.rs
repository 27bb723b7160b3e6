//! Wakes open-loop connections at their send times, to about a tenth of a millisecond, from one thread that
//! sleeps between ticks. tokio's timer has 1 ms granularity, so the engine used to sleep to within a millisecond
//! and then spin (yield in a loop) until the send time: with 32 connections at tens of thousands of requests a
//! second every connection was always spinning, the load generator kept its core 100% busy, and anything else
//! runnable on that core (in `make bench`, PostgreSQL writing the redirect's hit counts) took turns with the
//! spinning instead of with the real work, so sends fell behind schedule and the run charged that to the server.
//! Here a waiting connection costs nothing until its tick, and a tick wakes every connection due by then.

use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError, Weak},
    task::{Context, Poll, Waker},
    thread,
    time::{Duration, Instant},
};

/// How long the pacer thread sleeps between ticks (the kernel adds its timer slack, ~50 µs): a send goes out at
/// most about this late, and its latency is measured from its intended time all the same (as wrk2 does), so the
/// ceiling and the redirect are charged alike. 50 µs woke the thread so often that the load generator's core was
/// as busy as with spinning (98% at 62k req/s); at 200 µs it was 68%, and the ceiling's p99 at that rate 2.8-7 ms
/// against 4.3 ms spinning.
const TICK: Duration = Duration::from_micros(200);

/// A connection waiting for its send time.
struct Waiting {
    at: Instant,
    waker: Waker,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

type Queue = Mutex<BinaryHeap<Reverse<Waiting>>>;

/// The clock open-loop connections wait on. Its thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct Pacer {
    queue: Arc<Queue>,
}

impl Pacer {
    /// Starts the pacer thread.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start() -> std::io::Result<Self> {
        let queue = Arc::new(Queue::default());
        let weak = Arc::downgrade(&queue);
        thread::Builder::new()
            .name("pacer".into())
            .spawn(move || run(&weak))?;
        Ok(Self { queue })
    }

    /// Ready at `at` (or a tick after it).
    pub fn until(&self, at: Instant) -> Until<'_> {
        Until { pacer: self, at }
    }
}

fn run(queue: &Weak<Queue>) {
    while let Some(queue) = queue.upgrade() {
        let now = Instant::now();
        let due: Vec<Waker> = {
            let mut waiting = queue.lock().unwrap_or_else(PoisonError::into_inner);
            let mut due = Vec::new();
            while waiting.peek().is_some_and(|first| first.0.at <= now) {
                if let Some(Reverse(first)) = waiting.pop() {
                    due.push(first.waker);
                }
            }
            due
        };
        drop(queue);
        due.into_iter().for_each(Waker::wake);
        thread::sleep(TICK);
    }
}

/// The future of [`Pacer::until`].
pub struct Until<'a> {
    pacer: &'a Pacer,
    at: Instant,
}

impl Future for Until<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        let waiting = Waiting {
            at: self.at,
            waker: cx.waker().clone(),
        };
        self.pacer
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Reverse(waiting));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn waiters_wake_in_order_at_or_after_their_time() {
        let pacer = Pacer::start().expect("pacer thread");
        let start = Instant::now();
        let offsets = [3_000u64, 500, 1_500, 200];
        let mut waits = tokio::task::JoinSet::new();
        for (index, micros) in offsets.into_iter().enumerate() {
            let pacer = pacer.clone();
            let at = start + Duration::from_micros(micros);
            waits.spawn(async move {
                pacer.until(at).await;
                (index, Instant::now() >= at)
            });
        }
        let mut order = Vec::new();
        while let Some(done) = waits.join_next().await {
            let (index, on_time) = done.expect("joined");
            assert!(on_time, "waiter {index} woke before its time");
            order.push(index);
        }
        assert_eq!(order, vec![3, 1, 2, 0]);
    }
}
