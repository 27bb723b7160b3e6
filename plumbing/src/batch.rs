//! Batching: concurrent calls share one round trip. Each call queues its key; a task started after the callers
//! already running on this thread sends every queued key in one batch (up to a size), and while batches are in
//! flight (up to a number) new keys wait for the next one, so the batches grow with the load instead of the round
//! trips. The redirect asks Redis this way: one `GET` per request through the client cost more than the rest of a
//! Redis-answered request (the profile is in the README's Benchmarks section, "Where the time goes").
//!
//! The batch runs in a task of its own, not in a caller's future, so a caller that goes away (its client
//! disconnected) neither cancels nor stalls the others' answers. The queue is bounded: past [`Limits::waiting`]
//! a call is refused at once (its caller degrades as it would on a failed round trip).

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::oneshot;

/// A boxed batch: one answer per key, in the keys' order.
pub type BatchFuture<V> = Pin<Box<dyn Future<Output = Vec<V>> + Send>>;

type Run<K, V> = dyn Fn(Vec<K>) -> BatchFuture<V> + Send + Sync;

/// How big batches get and how many wait.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Keys per batch, at most.
    pub batch: usize,
    /// Batches sent and not yet answered, at most.
    pub in_flight: usize,
    /// Keys queued and not yet in a batch, at most.
    pub waiting: usize,
}

/// Batches calls of one function.
pub struct Batcher<K, V> {
    inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for Batcher<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<K, V> {
    queue: Mutex<Queue<K, V>>,
    run: Box<Run<K, V>>,
    limits: Limits,
}

struct Queue<K, V> {
    /// Keys and, where the caller waits for it, where its answer goes.
    waiting: Vec<(K, Option<oneshot::Sender<V>>)>,
    /// A task that will take the next batch has been spawned and has not taken it yet.
    scheduled: bool,
    /// Batches sent and not yet answered.
    in_flight: usize,
}

impl<K, V> Queue<K, V> {
    /// Whether a task should be spawned for the waiting keys (and, if so, marks it spawned).
    fn schedule(&mut self, max_in_flight: usize) -> bool {
        if self.waiting.is_empty() || self.scheduled || self.in_flight >= max_in_flight {
            return false;
        }
        self.scheduled = true;
        true
    }
}

impl<K: Send + 'static, V: Send + 'static> Batcher<K, V> {
    /// Calls `run` with the keys of a batch at a time, within `limits`. `run` answers one value per key in order;
    /// a missing answer leaves its caller with `None`.
    pub fn new<F>(limits: Limits, run: F) -> Self
    where
        F: Fn(Vec<K>) -> BatchFuture<V> + Send + Sync + 'static,
    {
        Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(Queue {
                    waiting: Vec::new(),
                    scheduled: false,
                    in_flight: 0,
                }),
                run: Box::new(run),
                limits: Limits {
                    batch: limits.batch.max(1),
                    in_flight: limits.in_flight.max(1),
                    waiting: limits.waiting.max(1),
                },
            }),
        }
    }

    /// The answer for `key`, from the batch it joined; `None` when the queue is full, or that batch gave no answer
    /// for it (its task ended early, e.g. the runtime shutting down). Must be called within a tokio runtime.
    pub async fn call(&self, key: K) -> Option<V> {
        let (answer, answered) = oneshot::channel();
        if !self.queue(key, Some(answer)) {
            return None;
        }
        answered.await.ok()
    }

    /// Queues `key` for the next batch without waiting for its answer; `false` when the queue is full. Must be
    /// called within a tokio runtime.
    pub fn submit(&self, key: K) -> bool {
        self.queue(key, None)
    }

    fn queue(&self, key: K, answer: Option<oneshot::Sender<V>>) -> bool {
        let limits = self.inner.limits;
        let spawn = {
            let mut queue = self.inner.lock();
            if queue.waiting.len() >= limits.waiting {
                return false;
            }
            queue.waiting.push((key, answer));
            queue.schedule(limits.in_flight)
        };
        if spawn {
            self.spawn();
        }
        true
    }

    fn spawn(&self) {
        let inner = Arc::clone(&self.inner);
        // A spawned task runs after the tasks already woken on this thread: their keys join this batch.
        tokio::spawn(async move { Self { inner }.send_batch().await });
    }

    async fn send_batch(self) {
        let limits = self.inner.limits;
        let (keys, answers): (Vec<K>, Vec<Option<oneshot::Sender<V>>>) = {
            let mut queue = self.inner.lock();
            queue.scheduled = false;
            let take = queue.waiting.len().min(limits.batch);
            let batch = queue.waiting.drain(..take).unzip();
            queue.in_flight += 1;
            if queue.schedule(limits.in_flight) {
                self.spawn();
            }
            batch
        };
        if !keys.is_empty() {
            let values = (self.inner.run)(keys).await;
            for (answer, value) in answers.into_iter().zip(values) {
                // A caller that went away no longer listens; its answer is dropped.
                if let Some(answer) = answer {
                    let _ = answer.send(value);
                }
            }
        }
        let mut queue = self.inner.lock();
        queue.in_flight -= 1;
        if queue.schedule(limits.in_flight) {
            self.spawn();
        }
    }
}

impl<K, V> Inner<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<K, V>> {
        // Every change to the queue is complete before anything that could panic.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Limits with room for every test's keys.
    fn limits(batch: usize, in_flight: usize) -> Limits {
        Limits {
            batch,
            in_flight,
            waiting: 1_000,
        }
    }

    /// A batcher that doubles its keys and records each batch's size.
    fn doubling(limits: Limits) -> (Batcher<u32, u32>, Arc<Mutex<Vec<usize>>>) {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let batcher = Batcher::new(limits, move |keys: Vec<u32>| {
            seen.lock().expect("sizes").push(keys.len());
            Box::pin(async move {
                tokio::task::yield_now().await;
                keys.into_iter().map(|key| key * 2).collect()
            }) as BatchFuture<u32>
        });
        (batcher, sizes)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_calls_share_a_batch_and_each_gets_its_own_answer() {
        let (batcher, sizes) = doubling(limits(100, 1));
        let calls = (0..10).map(|key| batcher.call(key));
        let answers = futures_util::future::join_all(calls).await;
        assert_eq!(
            answers,
            (0..10).map(|key| Some(key * 2)).collect::<Vec<_>>()
        );
        assert_eq!(*sizes.lock().expect("sizes"), vec![10]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn batches_are_bounded_in_size_and_in_number_in_flight() {
        let (batcher, sizes) = doubling(limits(4, 2));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (counting, peak) = (Arc::clone(&in_flight), Arc::clone(&most));
        let watched = Batcher::new(limits(4, 2), move |keys: Vec<u32>| {
            let now = counting.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let counting = Arc::clone(&counting);
            Box::pin(async move {
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                counting.fetch_sub(1, Ordering::SeqCst);
                keys
            }) as BatchFuture<u32>
        });
        let answers = futures_util::future::join_all((0..10).map(|key| batcher.call(key))).await;
        assert!(answers.iter().all(Option::is_some));
        let sizes = sizes.lock().expect("sizes").clone();
        assert!(sizes.iter().all(|&size| size <= 4), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), 10);
        let echoed = futures_util::future::join_all((0..10).map(|key| watched.call(key))).await;
        assert_eq!(echoed, (0..10).map(Some).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_caller_that_goes_away_does_not_stop_the_others_answers() {
        let (batcher, _) = doubling(limits(100, 1));
        let gone = batcher.call(1);
        let stays = batcher.call(2);
        let answer = tokio::select! {
            biased;
            answer = stays => answer,
            _ = gone => unreachable!("the other call is polled first and its answer comes first"),
        };
        assert_eq!(answer, Some(4));
        // The batch held both keys; the one whose caller left was answered into nothing.
        assert_eq!(batcher.call(3).await, Some(6));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_batch_that_answers_too_few_leaves_the_rest_with_none() {
        let batcher = Batcher::new(limits(10, 1), |keys: Vec<u32>| {
            Box::pin(async move { keys.into_iter().take(1).collect() }) as BatchFuture<u32>
        });
        let answers = futures_util::future::join_all((0..3).map(|key| batcher.call(key))).await;
        assert_eq!(answers, vec![Some(0), None, None]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_refuses_at_once_and_submitted_keys_are_sent_unanswered() {
        let (batcher, sizes) = doubling(Limits {
            batch: 10,
            in_flight: 1,
            waiting: 2,
        });
        assert!(batcher.submit(1));
        assert!(batcher.submit(2));
        assert!(!batcher.submit(3), "a third key is past the bound");
        assert_eq!(
            batcher.call(4).await,
            None,
            "a call past the bound is refused"
        );
        // Once the batch has left the queue (its task has run) there is room again.
        tokio::task::yield_now().await;
        assert_eq!(batcher.call(5).await, Some(10));
        assert_eq!(*sizes.lock().expect("sizes"), vec![2, 1]);
    }
}
