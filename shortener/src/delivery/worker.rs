//! The delivery loops of one shortener: the stream (new events, and entries a dead consumer left behind) and the
//! retries that have come due. Each delivery is bounded by the sender's timeout (5 s) and the process's bound on
//! deliveries in flight; failures are scheduled again by the [`RetryPolicy`], and an event is acknowledged only
//! once each of its webhooks has it or has a retry scheduled, so a shortener that dies mid-way leaves its entries
//! to be claimed by another (at least once; receivers dedupe on the event id).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use actix_web::web::Bytes;
use chrono::{DateTime, Utc};
use events::{Queue, Retry, Taken};
use links::{store::Store, webhooks::Webhook};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use tokio::{sync::Semaphore, task::JoinSet};

use super::{Hooks, RetryPolicy};
use crate::webhooks::send::Sender;

/// Entries taken from the stream per read.
const TAKE: u64 = 500;
/// How long a read waits for new entries.
const WAIT: Duration = Duration::from_secs(1);
/// An entry another consumer took and has not acknowledged for this long is claimed (its shortener died).
const STALE_AFTER: Duration = Duration::from_secs(60);
/// How often stale entries are looked for.
const CLAIM_EVERY: Duration = Duration::from_secs(15);
/// How often due retries are looked for.
const RETRIES_EVERY: Duration = Duration::from_millis(250);
/// A retry taken is leased this long: if its shortener dies, it comes due again then.
const LEASE: Duration = Duration::from_secs(60);
/// Deliveries in flight in the process, at most.
pub const IN_FLIGHT: usize = 256;

/// What became of deliveries.
#[derive(Clone)]
pub struct DeliveryMetrics {
    /// `shortener_webhook_deliveries_total{outcome}`: delivered, failed (retried), dropped_expired,
    /// dropped_paused, dropped_retries_full, dropped_cut (cut from the stream before delivery).
    pub outcomes: IntCounterVec,
    /// `shortener_webhook_retries_waiting`.
    pub waiting: IntGauge,
}

impl DeliveryMetrics {
    /// Registers the series.
    ///
    /// # Errors
    /// When they are registered already.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "shortener_webhook_deliveries_total",
                "Webhook deliveries by outcome (delivered, failed, dropped_expired, dropped_paused, dropped_retries_full, dropped_cut)",
            ),
            &["outcome"],
        )?;
        let waiting = IntGauge::new(
            "shortener_webhook_retries_waiting",
            "Deliveries waiting for a retry (all shorteners)",
        )?;
        registry.register(Box::new(outcomes.clone()))?;
        registry.register(Box::new(waiting.clone()))?;
        Ok(Self { outcomes, waiting })
    }

    fn count(&self, outcome: &str, by: u64) {
        self.outcomes.with_label_values(&[outcome]).inc_by(by);
    }
}

/// One shortener's deliveries.
#[derive(Clone)]
pub struct Deliveries {
    /// The queue.
    pub queue: Queue,
    /// The webhooks.
    pub hooks: Hooks,
    /// Sends one event to one webhook.
    pub sender: Arc<Sender>,
    /// Where webhooks are marked failing and paused.
    pub store: Store,
    /// This process's name in the consumer group.
    pub consumer: String,
    /// Backoff and retention.
    pub policy: RetryPolicy,
    /// Series.
    pub metrics: DeliveryMetrics,
    /// Tells every redirect that the owners taking click events changed (a webhook paused).
    pub announce: Arc<dyn Fn() + Send + Sync>,
    in_flight: Arc<Semaphore>,
    /// Webhooks this process saw failing and not yet recovering, so a state change is written once.
    failing: Arc<Mutex<HashSet<i64>>>,
}

/// What one attempt did.
enum Attempt {
    Delivered,
    Failed,
}

impl Deliveries {
    /// Deliveries through `sender`, bounded by [`IN_FLIGHT`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        queue: Queue,
        hooks: Hooks,
        sender: Arc<Sender>,
        store: Store,
        consumer: String,
        policy: RetryPolicy,
        metrics: DeliveryMetrics,
        announce: Arc<dyn Fn() + Send + Sync>,
    ) -> Self {
        Self {
            queue,
            hooks,
            sender,
            store,
            consumer,
            policy,
            metrics,
            announce,
            in_flight: Arc::new(Semaphore::new(IN_FLIGHT)),
            failing: Arc::default(),
        }
    }

    /// Reads the stream until `stop` completes. A read is never raced against a timer: an entry Redis handed
    /// to a read that was then dropped would wait, unacknowledged, until it is claimed as stale. Only the stop
    /// drops one (its entries are claimed by another shortener, or by this one after a restart).
    pub async fn run_stream(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut next_claim = tokio::time::Instant::now();
        loop {
            if tokio::time::Instant::now() >= next_claim {
                self.claim_stale().await;
                next_claim = tokio::time::Instant::now() + CLAIM_EVERY;
            }
            tokio::select! {
                () = &mut stop => return,
                taken = self.queue.take(&self.consumer, TAKE, WAIT) => match taken {
                    Ok(taken) => self.deliver_taken(taken).await,
                    Err(error) => {
                        tracing::warn!(%error, "reading the event queue failed");
                        tokio::time::sleep(WAIT).await;
                    }
                },
            }
        }
    }

    /// Takes due retries until `stop` completes.
    pub async fn run_retries(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut every = tokio::time::interval(RETRIES_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rounds = 0_u32;
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = every.tick() => {
                    self.retry_due().await;
                    rounds = rounds.wrapping_add(1);
                    if rounds.is_multiple_of(20) {
                        if let Ok(waiting) = self.queue.retries_waiting().await {
                            self.metrics.waiting.set(i64::try_from(waiting).unwrap_or(i64::MAX));
                        }
                    }
                }
            }
        }
    }

    async fn claim_stale(&self) {
        match self
            .queue
            .claim_stale(&self.consumer, STALE_AFTER, TAKE)
            .await
        {
            Ok((taken, cut)) => {
                self.metrics.count("dropped_cut", cut as u64);
                if !taken.is_empty() {
                    tracing::info!(
                        count = taken.len(),
                        "delivering events a stopped shortener had taken"
                    );
                    self.deliver_taken(taken).await;
                }
            }
            Err(error) => tracing::warn!(%error, "claiming stale events failed"),
        }
    }

    /// Delivers `taken` to every webhook that wants each, then acknowledges those each of whose webhooks has it
    /// or has a retry scheduled (the others are handed out again after [`STALE_AFTER`]).
    async fn deliver_taken(&self, taken: Vec<Taken>) {
        let mut attempts = JoinSet::new();
        let mut entries = Vec::with_capacity(taken.len());
        for (index, Taken { entry, event }) in taken.into_iter().enumerate() {
            entries.push(entry);
            let mut hooks = self.hooks.wanting(event.owner, event.kind);
            if hooks.is_empty() {
                // The event was queued for a webhook this table does not have yet (the redirect or another
                // shortener heard of it first).
                self.hooks.reload_for_miss(&self.store).await;
                hooks = self.hooks.wanting(event.owner, event.kind);
            }
            for hook in hooks {
                let job = Retry {
                    hook: hook.id,
                    first_failed_ms: 0,
                    attempts: 0,
                    event: event.clone(),
                };
                let this = self.clone();
                let permit = self.in_flight.clone().acquire_owned().await;
                attempts.spawn(async move {
                    let _permit = permit;
                    (index, this.attempt(&hook, job).await)
                });
            }
        }
        let mut unsettled = HashSet::new();
        while let Some(attempt) = attempts.join_next().await {
            match attempt {
                Ok((_, true)) => {}
                Ok((index, false)) => {
                    unsettled.insert(index);
                }
                Err(error) => tracing::warn!(%error, "a delivery task failed"),
            }
        }
        let entries: Vec<String> = entries
            .into_iter()
            .enumerate()
            .filter(|(index, _)| !unsettled.contains(index))
            .map(|(_, entry)| entry)
            .collect();
        if let Err(error) = self.queue.ack(&entries).await {
            tracing::warn!(%error, "acknowledging delivered events failed; they will be delivered again");
        }
    }

    async fn retry_due(&self) {
        let due = match self.queue.due(Utc::now(), LEASE, TAKE).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "reading due retries failed");
                return;
            }
        };
        let mut attempts = JoinSet::new();
        for job in due {
            let this = self.clone();
            let permit = self.in_flight.clone().acquire_owned().await;
            attempts.spawn(async move {
                let _permit = permit;
                this.retry(job).await;
            });
        }
        while attempts.join_next().await.is_some() {}
    }

    /// One due retry: given up past the retention period or when its webhook is gone or paused.
    async fn retry(&self, job: Retry) {
        let now = Utc::now();
        let hook = match self.hooks.get(job.event.owner, job.hook) {
            Some(hook) => hook,
            None => {
                self.metrics.count("dropped_paused", 1);
                self.finish(&job).await;
                return;
            }
        };
        if self.expired(job.first_failed_ms, now) {
            self.metrics.count("dropped_expired", 1);
            self.finish(&job).await;
            self.pause_if_failing_too_long(&hook, now).await;
            return;
        }
        self.attempt(&hook, job).await;
    }

    /// Sends `job`'s event to `hook`: done, or scheduled again. `false` when it is neither (Redis failed to
    /// schedule it).
    async fn attempt(&self, hook: &Webhook, mut job: Retry) -> bool {
        let body = Bytes::from(job.event.body.clone());
        let outcome = match self
            .sender
            .send(&hook.url, &hook.secret, &job.event.id, body)
            .await
        {
            Ok(()) => Attempt::Delivered,
            Err(error) => {
                tracing::debug!(hook = hook.id, %error, "webhook delivery failed");
                Attempt::Failed
            }
        };
        match outcome {
            Attempt::Delivered => {
                self.metrics.count("delivered", 1);
                if job.attempts > 0 {
                    self.finish(&job).await;
                }
                self.recovered(hook).await;
                true
            }
            Attempt::Failed => {
                self.metrics.count("failed", 1);
                let now = Utc::now();
                if job.attempts == 0 {
                    job.first_failed_ms = now.timestamp_millis();
                }
                job.attempts += 1;
                self.failed(hook, now).await;
                self.schedule(&job, now).await
            }
        }
    }

    /// `false` when Redis failed: an event from the stream is then not acknowledged and is handed out again;
    /// a retry's lease brings it back.
    async fn schedule(&self, job: &Retry, now: DateTime<Utc>) -> bool {
        let wait = self.policy.wait_after(job.attempts);
        let due = now + chrono::Duration::from_std(wait).unwrap_or_default();
        match self.queue.schedule(job, due).await {
            Ok(true) => true,
            Ok(false) => {
                self.metrics.count("dropped_retries_full", 1);
                self.finish(job).await;
                true
            }
            Err(error) => {
                tracing::warn!(%error, "scheduling a retry failed");
                false
            }
        }
    }

    async fn finish(&self, job: &Retry) {
        if let Err(error) = self.queue.finish(job).await {
            tracing::warn!(%error, "removing a finished retry failed; it may be sent again");
        }
    }

    fn expired(&self, first_failed_ms: i64, now: DateTime<Utc>) -> bool {
        let retention = i64::try_from(self.policy.give_up_after.as_millis()).unwrap_or(i64::MAX);
        first_failed_ms > 0 && now.timestamp_millis() - first_failed_ms >= retention
    }

    /// Notes a failure of `hook`: the first one this process sees is written (`failing_since`), and a webhook
    /// failing for the retention period is paused.
    async fn failed(&self, hook: &Webhook, now: DateTime<Utc>) {
        let first_here = self
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(hook.id);
        if first_here && hook.failing_since.is_none() {
            if let Err(error) = self.store.webhook_failed(hook.id).await {
                tracing::warn!(%error, "marking a webhook failing failed");
            }
        }
        self.pause_if_failing_too_long(hook, now).await;
    }

    async fn recovered(&self, hook: &Webhook) {
        let was_failing = self
            .failing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&hook.id);
        if was_failing || hook.failing_since.is_some() {
            if let Err(error) = self.store.webhook_recovered(hook.id).await {
                tracing::warn!(%error, "marking a webhook recovered failed");
            }
        }
    }

    async fn pause_if_failing_too_long(&self, hook: &Webhook, now: DateTime<Utc>) {
        let Some(since) = hook.failing_since else {
            return;
        };
        if !self.expired(since.timestamp_millis(), now) {
            return;
        }
        tracing::warn!(hook = hook.id, %since, "pausing a webhook that has failed for the retention period");
        if let Err(error) = self.store.pause_webhook(hook.id).await {
            tracing::warn!(%error, "pausing a webhook failed");
            return;
        }
        if let Err(error) = self.hooks.reload(&self.store).await {
            tracing::warn!(%error, "reloading the webhooks failed");
        }
        (self.announce)();
    }
}
