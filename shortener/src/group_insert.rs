//! Group insert: the links of concurrent create requests go to PostgreSQL in one multi-row statement and one
//! commit, the way PostgreSQL's group commit shares a WAL flush. Every statement and commit costs the primary
//! far more than a row does (single creates measured ~2k/s with the machine busy inside PostgreSQL, batches of
//! 1000 ~39k links/s), so under load requests queue here and the next free inserter takes everything queued.
//! With nothing queued a request goes alone at once: no timer, no added latency when idle.
//!
//! Between idle and saturated, creates paced a few milliseconds apart never found company in the queue, and each
//! paid a statement and a durable commit of its own: at 400 creates/s, 7,937 statements for 8,000 links. The
//! commits' WAL flushes were what hurt (measured beside a 15k/s redirect: with asynchronous commit as a probe,
//! PostgreSQL's CPU fell by a quarter and the redirect's p99 from 55–176 ms to 11–25 ms). So while creates keep
//! coming (one arrived less than [`BUSY_GAP`], or five lingers, before this group's first) a group still under
//! [`LINGER_BELOW_ROWS`] waits up to the linger (`--insert-linger-ms`) for more before it goes.
//!
//! Every statement carries its requests' deadline to PostgreSQL (see [`Store::insert_links`]): a request answered
//! 503 at its deadline must not have its links committed afterwards, or a client's retry would duplicate them.

use std::{borrow::Borrow, collections::HashMap, sync::Arc, time::Duration};

use database::DbError;
use links::{
    model::{Link, NewLink},
    store::Store,
};
use plumbing::chain::Chain;
use plumbing::tasks::{Need, Supervisor, Task};
use prometheus::{Histogram, HistogramOpts, Registry};
use tokio::{
    sync::{mpsc, oneshot, Mutex, Semaphore},
    time::Instant,
};

/// Most rows in one statement: a full batch request's worth.
const MAX_GROUP_ROWS: usize = 1000;

/// Requests of at least this many links are a group already: they go to the database at once, in parallel with
/// the inserters, instead of waiting for one (batch requests measured ~30% slower when queued).
const ALREADY_A_GROUP: usize = 64;

/// Requests waiting for an inserter; beyond this a request waits to be queued (backpressure, not memory).
const QUEUE_DEPTH: usize = 4096;

/// A request arriving this soon (or within five lingers, if longer) after the one before means creates keep
/// coming: its group may linger.
const BUSY_GAP: Duration = Duration::from_millis(20);
/// A group this large goes at once: lingering pays off only for the first few rows (a closed loop of clients,
/// all waiting on this group, would send nothing more while it lingered).
const LINGER_BELOW_ROWS: usize = 8;
/// How long shutdown waits for queued inserts to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// One request's links and where its answer goes.
struct Job {
    links: Vec<NewLink>,
    queued_at: Instant,
    deadline: Instant,
    answer: oneshot::Sender<Result<Vec<Link>, DbError>>,
}

/// The receiving end of the queue, with when the last request taken had arrived.
struct Queue {
    receiver: mpsc::Receiver<Job>,
    last_arrival: Option<Instant>,
    linger: Duration,
}

/// The queue in front of the inserters. Cloning shares it.
#[derive(Clone)]
pub struct GroupInserter {
    queue: mpsc::Sender<Job>,
    direct: Inserter,
    /// Direct inserts in flight at once: without a bound, a burst of batch requests would hold every pooled
    /// connection and starve single creates, key lookups and reads.
    direct_permits: Arc<Semaphore>,
}

/// The inserter tasks; they end once every [`GroupInserter`] is dropped and the queue is empty.
pub struct Inserters {
    tasks: Vec<Task>,
}

impl GroupInserter {
    /// Starts `inserters` tasks of `supervisor` (statements in flight at once; at least 1) inserting through
    /// `store`, and lets at most `direct_batches` (at least 1) large requests insert directly at once. A small
    /// group waits up to `linger` for company while creates keep coming (zero: never).
    /// `rows_per_statement` observes the size of every statement tried (see [`rows_per_statement`]).
    pub fn start(
        store: Store,
        inserters: usize,
        direct_batches: usize,
        linger: Duration,
        rows_per_statement: Histogram,
        supervisor: &Supervisor,
    ) -> (Self, Inserters) {
        let (queue, receiver) = mpsc::channel(QUEUE_DEPTH);
        let receiver = Arc::new(Mutex::new(Queue {
            receiver,
            last_arrival: None,
            linger,
        }));
        let direct = Inserter {
            store,
            rows_per_statement,
        };
        let tasks = (0..inserters.max(1))
            // Essential: once every inserter is gone, every create fails.
            .map(|_| {
                let inserter = direct.clone().run(Arc::clone(&receiver));
                supervisor.spawn("inserter", Need::Essential, inserter)
            })
            .collect();
        let direct_permits = Arc::new(Semaphore::new(direct_batches.max(1)));
        (
            Self {
                queue,
                direct,
                direct_permits,
            },
            Inserters { tasks },
        )
    }

    /// One of the few slots for work that holds a connection of its own for a whole statement or transaction
    /// (a direct batch insert, an idempotent create), waited for until `deadline` at most.
    ///
    /// # Errors
    /// [`DbError::Unavailable`] when no slot came free before the deadline.
    pub async fn direct_permit(
        &self,
        deadline: Instant,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, DbError> {
        tokio::time::timeout_at(deadline, self.direct_permits.acquire())
            .await
            .map_err(|_| DbError::unavailable("every direct insert slot stayed busy"))?
            .map_err(DbError::unavailable)
    }

    /// Requests queued and not yet taken by an inserter.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Inserts `links` (with whatever else is queued) and returns the ones inserted; a link whose code is taken
    /// or retired is left out, as in [`Store::insert_links`]. Committed when this returns `Ok`; never committed
    /// after `deadline` (PostgreSQL gives up on the statement before it).
    ///
    /// # Errors
    /// When the database fails, the deadline comes first, or the inserters have stopped (shutdown).
    pub async fn insert(
        &self,
        links: Vec<NewLink>,
        deadline: Instant,
    ) -> Result<Vec<Link>, DbError> {
        if links.len() >= ALREADY_A_GROUP {
            let _permit = self.direct_permit(deadline).await?;
            return self.direct.insert(&links, deadline).await;
        }
        let (answer, answered) = oneshot::channel();
        let stopped = || DbError::unavailable("the inserters have stopped (shutting down)");
        self.queue
            .send(Job {
                links,
                queued_at: Instant::now(),
                deadline,
                answer,
            })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

impl Inserters {
    /// Waits until the queue is drained (bounded), once the server that held the [`GroupInserter`]s is gone.
    pub async fn stopped(self) {
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        for task in self.tasks {
            if tokio::time::timeout_at(deadline, task.stopped())
                .await
                .is_err()
            {
                tracing::warn!("inserts still queued at shutdown were abandoned");
                return;
            }
        }
    }
}

/// The histogram of rows per insert statement, registered: how well concurrent creates are being grouped.
///
/// # Errors
/// When the name is already registered.
pub fn rows_per_statement(registry: &Registry) -> prometheus::Result<Histogram> {
    let histogram = Histogram::with_opts(
        HistogramOpts::new(
            "shortener_insert_statement_rows",
            "Links per insert statement (concurrent creates share one)",
        )
        .buckets(prometheus::exponential_buckets(1.0, 2.0, 11)?),
    )?;
    registry.register(Box::new(histogram.clone()))?;
    Ok(histogram)
}

#[derive(Clone)]
struct Inserter {
    store: Store,
    rows_per_statement: Histogram,
}

impl Inserter {
    async fn run(self, receiver: Arc<Mutex<Queue>>) {
        while let Some(jobs) = next_group(&receiver).await {
            // A request that was already answered (its deadline passed, the client left) must not create a link
            // behind its back: the client saw an error and may well retry.
            // One whose deadline leaves PostgreSQL no time is answered at once, so that it cannot cut the
            // statement of the whole group short (the group is bounded by its earliest deadline).
            let (jobs, too_late): (Vec<Job>, Vec<Job>) = jobs
                .into_iter()
                .filter(|job| !job.answer.is_closed())
                .partition(|job| crate::deadline::server_budget(job.deadline).is_some());
            for job in too_late {
                let _ = job.answer.send(Err(DbError::unavailable(
                    "the request deadline left no time to insert",
                )));
            }
            if !jobs.is_empty() {
                self.insert_group(jobs).await;
            }
        }
    }

    async fn insert_group(&self, mut jobs: Vec<Job>) {
        if jobs.len() == 1 {
            if let Some(job) = jobs.pop() {
                self.insert_alone(job).await;
            }
            return;
        }
        let rows: Vec<&NewLink> = jobs.iter().flat_map(|job| &job.links).collect();
        // The earliest deadline bounds the group: no request may see its links committed after its own.
        let deadline = jobs
            .iter()
            .map(|job| job.deadline)
            .min()
            .unwrap_or_else(Instant::now);
        match self.insert(&rows, deadline).await {
            Ok(inserted) => answer_each(jobs, inserted),
            Err(DbError::Unavailable(reason)) => {
                for job in jobs {
                    let _ = job.answer.send(Err(DbError::Unavailable(reason.clone())));
                }
            }
            // A statement error belongs to some row (a key deleted meanwhile, say): retry each request alone,
            // so only its own request fails.
            Err(error) => {
                tracing::warn!(error = %Chain(&error), requests = jobs.len(), "group insert failed; inserting each request alone");
                for job in jobs {
                    self.insert_alone(job).await;
                }
            }
        }
    }

    async fn insert_alone(&self, job: Job) {
        let result = self.insert(&job.links, job.deadline).await;
        let _ = job.answer.send(result);
    }

    /// Inserts `rows`, bounded on both sides by `deadline` (see [`crate::deadline::server_budget`]): PostgreSQL cancels the
    /// statement (or its lock wait) itself, and a hung connection cannot hold the inserter past it.
    async fn insert<L: Borrow<NewLink> + Sync>(
        &self,
        rows: &[L],
        deadline: Instant,
    ) -> Result<Vec<Link>, DbError> {
        let Some(within) = crate::deadline::server_budget(deadline) else {
            return Err(DbError::unavailable(
                "the request deadline left no time to insert",
            ));
        };
        #[expect(clippy::cast_precision_loss, reason = "at most 1000 rows")]
        self.rows_per_statement.observe(rows.len() as f64);
        // PostgreSQL's own cancellation normally ends a slow insert; this only frees the inserter from a hung
        // connection (whose transaction then never commits).
        tokio::time::timeout_at(deadline, self.store.insert_links(rows, within))
            .await
            .unwrap_or_else(|_| {
                Err(DbError::unavailable(format!(
                    "an insert took over {within:?}"
                )))
            })
    }
}

/// The first job to arrive and every job already queued behind it, up to [`MAX_GROUP_ROWS`] rows; while creates
/// keep coming, a group still under [`LINGER_BELOW_ROWS`] also takes what arrives within the linger. The lock is
/// held only while taking jobs, so the next inserter gathers the following group while this one writes.
async fn next_group(queue: &Mutex<Queue>) -> Option<Vec<Job>> {
    let mut queue = queue.lock().await;
    let first = queue.receiver.recv().await?;
    let busy_gap = BUSY_GAP.max(queue.linger.saturating_mul(5));
    let busy = queue
        .last_arrival
        .is_some_and(|last| first.queued_at.saturating_duration_since(last) < busy_gap);
    let linger_until = (busy && !queue.linger.is_zero()).then(|| Instant::now() + queue.linger);
    let mut rows = first.links.len();
    let mut jobs = vec![first];
    while rows < MAX_GROUP_ROWS {
        let job = match queue.receiver.try_recv() {
            Ok(job) => job,
            Err(mpsc::error::TryRecvError::Empty) => match linger_until {
                Some(until) if rows < LINGER_BELOW_ROWS => {
                    match tokio::time::timeout_at(until, queue.receiver.recv()).await {
                        Ok(Some(job)) => job,
                        _ => break,
                    }
                }
                _ => break,
            },
            Err(mpsc::error::TryRecvError::Disconnected) => break,
        };
        rows += job.links.len();
        jobs.push(job);
    }
    queue.last_arrival = jobs.last().map(|job| job.queued_at);
    Some(jobs)
}

/// Hands each request the links it asked for (by ID); rows that were not inserted are simply absent.
fn answer_each(jobs: Vec<Job>, inserted: Vec<Link>) {
    let mut by_id: HashMap<i64, Link> = inserted.into_iter().map(|link| (link.id, link)).collect();
    for job in jobs {
        let links = job
            .links
            .iter()
            .filter_map(|link| by_id.remove(&link.id))
            .collect();
        let _ = job.answer.send(Ok(links));
    }
}
