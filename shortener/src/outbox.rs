//! Delivering owed invalidations: after a delete, disable or enable has committed (with its row in the outbox, see
//! [`links::outbox`]), the code is dropped from Redis and announced to every redirect replica at once; if Redis
//! fails, the row stays and a background task on every instance retries with backoff until Redis is back. So a
//! Redis failure never leaves a cached redirect behind a 204: the answer is given once the change is durable, and
//! the invalidation is guaranteed, only later.
//!
//! Every instance drains (not only the cleanup leader), so delivery does not wait for an election; two instances
//! delivering the same row publish twice, which is harmless (an invalidation is idempotent).
//!
//! A row delivered at once is taken out of the outbox by the retry task's next round, with every other row
//! delivered since, in one statement: taken out one by one, each edit paid a second durable commit (at 400 edits/s,
//! 400 commits a second beside the edits' own). Until then a row stays owed, and a round of another instance may
//! deliver it again, which is harmless.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use database::DbError;
use links::{
    cache::{CacheError, RedisCache},
    outbox::Owed,
    store::Store,
};
use plumbing::chain::Chain;
use plumbing::{
    shutdown::Shutdown,
    tasks::{Need, Supervisor, Task},
};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

/// Owed invalidations delivered per round (one pipeline, one statement): bounds a round's memory and time.
const BATCH: i64 = 500;

/// How often an instance looks for invalidations another process queued (or one of its own that failed).
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Rows delivered at once waiting for the next round to take them out; past this, each is taken out at once (a
/// bound on memory while PostgreSQL is slow).
const HELD_ACKNOWLEDGEMENTS: usize = 4096;
/// Backoff between failed rounds while Redis (or PostgreSQL) is down: from the first to the last, doubling.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const LAST_BACKOFF: Duration = Duration::from_secs(5);

/// Why a round delivered nothing.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The outbox could not be read.
    #[error("cannot read the invalidation outbox")]
    Database(#[from] DbError),
    /// Redis did not take the invalidations.
    #[error("redis did not take the invalidations")]
    Redis(#[from] CacheError),
}

/// Delivers owed invalidations: at once after a change, and again from the outbox until it works.
#[derive(Clone)]
pub struct Invalidations {
    store: Store,
    cache: RedisCache,
    /// Deliveries by how (`at_once`, `retried`, `failed`).
    deliveries: IntCounterVec,
    /// Owed invalidations the last round found (at most one batch).
    owed: IntGauge,
    /// Rows delivered at once, to be taken out of the outbox together (see the module's doc).
    delivered: Arc<Mutex<Vec<Owed>>>,
}

impl Invalidations {
    /// Delivers through `cache`, with its series registered in `registry`.
    ///
    /// # Errors
    /// When the series are already registered.
    pub fn register(
        store: Store,
        cache: RedisCache,
        registry: &Registry,
    ) -> prometheus::Result<Self> {
        let deliveries = IntCounterVec::new(
            Opts::new(
                "shortener_invalidations_total",
                "Invalidations of changed links: delivered at once, delivered by a retry, or failed (queued)",
            ),
            &["how"],
        )?;
        let owed = IntGauge::new(
            "shortener_invalidations_owed",
            "Invalidations waiting in the outbox at the last retry round (at most one batch)",
        )?;
        registry.register(Box::new(deliveries.clone()))?;
        registry.register(Box::new(owed.clone()))?;
        Ok(Self {
            store,
            cache,
            deliveries,
            owed,
            delivered: Arc::default(),
        })
    }

    /// Delivers one invalidation whose change just committed; `false` when Redis did not take it, which is logged
    /// and counted, not an error: the outbox row stays and the retry task delivers it.
    pub async fn deliver(&self, owed: Owed) -> bool {
        if let Err(error) = self.cache.invalidate(&owed.code).await {
            self.deliveries.with_label_values(&["failed"]).inc();
            tracing::warn!(error = %Chain(&error), code = %owed.code, "invalidation not delivered; queued for retry");
            return false;
        }
        self.deliveries.with_label_values(&["at_once"]).inc();
        if let Some(owed) = self.hold(owed) {
            self.acknowledge(&[owed]).await;
        }
        true
    }

    /// Keeps a delivered row for the next round to take out; gives it back when enough are held already.
    fn hold(&self, owed: Owed) -> Option<Owed> {
        let mut held = self
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if held.len() >= HELD_ACKNOWLEDGEMENTS {
            return Some(owed);
        }
        held.push(owed);
        None
    }

    /// Takes every held row out of the outbox, in one statement.
    async fn acknowledge_held(&self) {
        let held = std::mem::take(
            &mut *self
                .delivered
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        if !held.is_empty() {
            self.acknowledge(&held).await;
        }
    }

    /// One round: up to [`BATCH`] owed invalidations dropped from Redis and announced in one pipeline, then taken
    /// out of the outbox. Returns how many were delivered.
    ///
    /// # Errors
    /// When the outbox cannot be read or Redis fails; the rows stay for the next round.
    pub async fn drain_once(&self) -> Result<usize, DrainError> {
        let owed = self.store.owed_invalidations(BATCH).await?;
        self.owed.set(i64::try_from(owed.len()).unwrap_or(i64::MAX));
        if owed.is_empty() {
            return Ok(0);
        }
        let codes: Vec<String> = owed.iter().map(|owed| owed.code.clone()).collect();
        self.cache.invalidate_all(&codes).await?;
        self.deliveries
            .with_label_values(&["retried"])
            .inc_by(owed.len() as u64);
        self.acknowledge(&owed).await;
        Ok(owed.len())
    }

    /// Takes delivered rows out; if that fails they are delivered again later, which is harmless.
    async fn acknowledge(&self, delivered: &[Owed]) {
        if let Err(error) = self.store.invalidations_delivered(delivered).await {
            tracing::warn!(error = %Chain(&error), "delivered invalidations stay queued; they will be sent again");
        }
    }

    /// Takes what was delivered out of the outbox and closes the Redis connection (a command that delivered once
    /// and exits).
    pub async fn quit(&self) {
        self.acknowledge_held().await;
        self.cache.quit().await;
    }

    /// Starts the retry task in `supervisor`: a round every [`POLL_EVERY`], at once while full batches come back,
    /// with backoff while rounds fail; each round first takes out the rows delivered at once since the last. It
    /// stops on shutdown after its round in flight, taking out what was delivered meanwhile.
    pub fn start_retrying(&self, supervisor: &Supervisor) -> Task {
        supervisor.spawn(
            "invalidation_outbox",
            Need::Optional,
            self.clone().retry(supervisor.shutdown().clone()),
        )
    }

    async fn retry(self, shutdown: Shutdown) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            self.acknowledge_held().await;
            let wait = match self.drain_once().await {
                Ok(delivered) if i64::try_from(delivered).unwrap_or(i64::MAX) >= BATCH => {
                    Duration::ZERO
                }
                Ok(_) => {
                    backoff = FIRST_BACKOFF;
                    POLL_EVERY
                }
                Err(error) => {
                    if backoff == FIRST_BACKOFF {
                        tracing::warn!(error = %Chain(&error), "owed invalidations not delivered; retrying with backoff");
                    }
                    let wait = backoff;
                    backoff = (backoff * 2).min(LAST_BACKOFF);
                    wait
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.wait() => break,
            }
        }
        self.acknowledge_held().await;
    }
}
