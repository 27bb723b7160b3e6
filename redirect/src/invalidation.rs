//! The invalidation subscriber: a Redis client of its own (a subscribed connection can run no other command)
//! listening on the channel where the shortener announces created, deleted and expired codes. Each message
//! drops its code from the local cache at once; a changed (not created) code is also read from the primary for
//! a while, since replicas and Redis may still hold its old state. Messages published while the connection was down are lost, so
//! after every reconnect the whole local cache is dropped and refilled from Redis and PostgreSQL.
//!
//! Why a channel of our own rather than Redis's server-assisted client-side caching (`CLIENT TRACKING`): tracking
//! invalidates on writes to Redis keys, but the local cache also holds answers that came from PostgreSQL, and
//! what must drop an entry is a change in PostgreSQL (delete, expiry, create over a negative entry), which the
//! shortener announces whether or not its Redis write went through. In default mode Redis would also keep a
//! table of every key every replica read (bounded by `tracking-table-max-keys`, whose evictions invalidate at
//! random); in broadcast mode every replica's own fill of a key would invalidate that key on every other replica.
//! The channel costs one message per change and nothing per read.
//!
//! A node that dies with a crash closes the connection and fred reconnects at once; one that hangs or is cut off
//! closes nothing, and a subscriber would wait in silence for ever. So the subscriber pings every second and
//! reconnects after two pings without an answer. On a Redis Cluster the channel is a classic one (see
//! `links::cache` for why not sharded): any node delivers every message, so reconnecting to whichever answers is
//! enough.

use std::{sync::Arc, time::Duration};

use fred::{
    clients::Client,
    prelude::{ClientLike, EventInterface, PubsubInterface},
};
use links::cache::Announcement;
use plumbing::shutdown::Shutdown;

use crate::{
    clicks::watchers::Watchers,
    metrics::Metrics,
    tiers::{fresh::Freshness, local::LocalCache},
};

/// How often the subscriber checks that its connection still answers.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Heartbeats missed in a row before the connection is given up and made anew.
const MISSED_HEARTBEATS: u32 = 2;
/// Messages fred may hold for the subscriber before it counts as fallen behind (which drops the whole local
/// cache). fred's default, 32, was overrun by a single batch create (one announcement per link, published in one
/// pipeline) and, on a busy machine, by 400 single creates a second: every replica's cache was dropped several
/// times a second and its Zipf traffic went to Redis (p99 15 ms → 600 ms). 16,384 holds 16 full batches; tokio
/// allocates the slots up front, about 2.5 MiB.
const MESSAGE_BUFFER: usize = 16_384;

/// A connected (or connecting) subscriber.
pub struct Subscriber {
    client: Client,
    channel: String,
    timeout: Duration,
    /// Set while a forced reconnection runs in the background.
    reconnecting: Arc<std::sync::atomic::AtomicBool>,
    /// Whether the subscription made at start went through (else it is made on the first reconnect).
    subscribed: bool,
}

impl Subscriber {
    /// Builds the client, connects and subscribes. A Redis that is down now is not fatal: the subscription is
    /// made when the client reconnects.
    ///
    /// # Errors
    /// When the URL is invalid.
    pub async fn connect(options: &links::cache::CacheOptions) -> Result<Self, fred::error::Error> {
        let timeout = options.timeout;
        let client = options
            .client_builder()?
            .with_performance_config(|performance| {
                performance.broadcast_channel_capacity = MESSAGE_BUFFER;
            })
            .build()?;
        let mut subscriber = Self {
            client,
            channel: links::cache::invalidation_channel(&options.prefix),
            timeout,
            reconnecting: Arc::default(),
            subscribed: false,
        };
        let _reconnect_task = subscriber.client.connect();
        match tokio::time::timeout(timeout, subscriber.client.wait_for_connect()).await {
            Ok(Ok(())) => subscriber.subscribed = subscriber.subscribe().await,
            Ok(Err(error)) => {
                tracing::warn!(%error, "invalidation subscriber cannot reach redis yet")
            }
            Err(_) => tracing::warn!("invalidation subscriber: redis did not answer in time"),
        }
        Ok(subscriber)
    }

    /// Whether the subscription went through.
    async fn subscribe(&self) -> bool {
        match tokio::time::timeout(self.timeout, self.client.subscribe(&self.channel)).await {
            Ok(Ok(())) => {
                tracing::debug!(channel = %self.channel, "subscribed to invalidations");
                return true;
            }
            Ok(Err(error)) => tracing::warn!(%error, "cannot subscribe to invalidations"),
            Err(_) => tracing::warn!("subscribing to invalidations timed out"),
        }
        false
    }

    /// Applies messages to `local` (and notes created codes in `freshness`, and when announcements may have been
    /// missed) until `shutdown`, then closes the connection.
    pub async fn run(
        self,
        local: Arc<LocalCache>,
        freshness: Arc<Freshness>,
        metrics: Arc<Metrics>,
        watchers: Watchers,
        shutdown: Shutdown,
    ) {
        let mut messages = self.client.message_rx();
        let mut reconnects = self.client.reconnect_rx();
        // Only now does a receiver exist: what was published before is not heard.
        if self.subscribed {
            freshness.listening();
        }
        let code_scope = metrics.invalidations.with_label_values(&["code"]);
        let all_scope = metrics.invalidations.with_label_values(&["all"]);
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut missed = 0;
        loop {
            tokio::select! {
                () = shutdown.wait() => break,
                _ = heartbeat.tick() => missed = self.heartbeat(missed).await,
                message = messages.recv() => match message {
                    Ok(message) => {
                        if let Some(text) = message.value.as_str() {
                            match links::cache::announcement(&text) {
                                Announcement::Created(code) => {
                                    local.forget(code);
                                    freshness.announced(code);
                                }
                                Announcement::Changed(code) => local.invalidate(code),
                                Announcement::Block(block) => freshness.block_announced(block),
                                Announcement::Watchers => watchers.changed(),
                                Announcement::Unreadable => {}
                            }
                            code_scope.inc();
                        }
                    }
                    // Fell behind the broadcast buffer: some codes were skipped, so none can be trusted.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        freshness.listening();
                        local.invalidate_all();
                        all_scope.inc();
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                reconnected = reconnects.recv() => {
                    if matches!(reconnected, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        break;
                    }
                    tracing::info!("invalidation subscriber reconnected; dropping the local cache");
                    freshness.deaf();
                    local.invalidate_all();
                    all_scope.inc();
                    if self.subscribe().await {
                        freshness.listening();
                    }
                }
            }
        }
        let _ = tokio::time::timeout(self.timeout, self.client.quit()).await;
    }

    /// One ping on the subscribed connection; after [`MISSED_HEARTBEATS`] misses in a row, a forced
    /// reconnection in the background (which the reconnect branch of [`run`](Self::run) follows with dropping
    /// the local cache and subscribing again). Returns the misses in a row so far.
    async fn heartbeat(&self, missed: u32) -> u32 {
        // On a cluster fred sends SUBSCRIBE to the master of the slot of the client's id, and any other command
        // to any node: the ping takes the same slot, so that it tests the connection the messages come on.
        let options = fred::types::config::Options {
            cluster_hash: self.client.is_clustered().then(|| {
                fred::types::ClusterHash::Custom(fred::util::redis_keyslot(
                    self.client.id().as_bytes(),
                ))
            }),
            timeout: Some(HEARTBEAT),
            ..fred::types::config::Options::default()
        };
        let pinger = self.client.with_options(&options);
        let ping = pinger.ping::<fred::types::Value>(None);
        if let Ok(Ok(_)) = tokio::time::timeout(HEARTBEAT, ping).await {
            return 0;
        }
        let missed = missed + 1;
        if missed < MISSED_HEARTBEATS {
            return missed;
        }
        // One reconnection at a time: queued behind each other they would tear down the fresh connections.
        if !self
            .reconnecting
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            tracing::warn!(
                missed,
                "invalidation subscriber: redis stopped answering; reconnecting"
            );
            let (client, reconnecting) = (self.client.clone(), self.reconnecting.clone());
            // Bounded: fred keeps retrying by its reconnect policy; this bounds only how long one attempt is
            // waited for before the next heartbeat may start another.
            let bound = self.timeout.max(HEARTBEAT).saturating_mul(4);
            tokio::spawn(async move {
                if let Ok(Err(error)) =
                    tokio::time::timeout(bound, client.force_reconnection()).await
                {
                    tracing::warn!(%error, "invalidation subscriber: reconnecting failed");
                }
                reconnecting.store(false, std::sync::atomic::Ordering::Release);
            });
        }
        0
    }
}
