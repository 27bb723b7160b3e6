//! Delivering events to webhooks: every shortener reads the queue in the consumer group (so delivery scales out
//! with the shortener), sends each event to every webhook of its owner that wants it, and acknowledges the entry
//! once each has it or has a retry scheduled ([`worker`]); failed deliveries come back with exponential backoff
//! and jitter until they succeed or a retention period (24 h) has passed; a webhook failing that long is paused.
//! Which webhooks there are is a table every shortener holds in memory ([`hooks`]). Link events are put on the
//! same queue by the API handlers ([`emit`]).

pub mod args;
pub mod emit;
pub mod hooks;
pub mod policy;
pub mod worker;

pub use args::DeliveryArgs;
pub use emit::Emitter;
pub use hooks::Hooks;
pub use policy::RetryPolicy;

use std::sync::Arc;

use links::{cache::RedisCache, store::Store};
use plumbing::tasks::{Need, Supervisor};
use prometheus::{IntCounterVec, Opts, Registry};

use crate::{live::LiveStreams, webhooks::send::Sender};

/// What the handlers use of events: the emitter of link events and the live streams.
pub struct Events {
    /// Puts link events on the queue.
    pub emitter: Emitter,
    /// The open live streams.
    pub live: LiveStreams,
}

/// Connects the queue, loads the webhooks and starts the delivery loops, the webhooks' reloader and the live
/// streams' follower, all stopping with `supervisor`.
///
/// # Errors
/// When the Redis URL is invalid or a series cannot be registered.
pub async fn start(
    args: &DeliveryArgs,
    redis: &links::cache::CacheOptions,
    (store, cache): (&Store, &RedisCache),
    sender: Arc<Sender>,
    supervisor: &Supervisor,
    registry: &Registry,
) -> anyhow::Result<Events> {
    let queue = events::Queue::start(redis, true)?;
    if let Err(error) = queue.ensure_group().await {
        tracing::warn!(%error, "the event queue's consumer group could not be made yet; retrying as it is read");
    }
    let hooks = Hooks::default();
    if let Err(error) = hooks.reload(store).await {
        tracing::warn!(%error, "the webhooks could not be read yet");
    }
    let stop = || {
        let shutdown = supervisor.shutdown().clone();
        async move { shutdown.wait().await }
    };
    // From the primary: a replica's older view, stored after this process's own reload following a change, would
    // undo it (a webhook created a moment ago would miss its first events).
    let reload = hooks.clone().keep_loaded(store.clone(), stop());
    let _reloader = supervisor.spawn("webhook_reloader", Need::Optional, reload);
    let cache = cache.clone();
    let announce: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        let cache = cache.clone();
        tokio::spawn(async move {
            if let Err(error) = cache
                .publish_invalidation(links::cache::WATCHERS_CHANGED)
                .await
            {
                tracing::warn!(%error, "announcing changed watchers failed; redirects read them within seconds");
            }
        });
    });
    let consumer = format!(
        "shortener-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let deliveries = worker::Deliveries::new(
        queue.clone(),
        hooks.clone(),
        sender,
        store.clone(),
        consumer,
        args.policy(),
        worker::DeliveryMetrics::register(registry)?,
        announce,
    );
    let _stream = supervisor.spawn(
        "webhook_delivery",
        Need::Optional,
        deliveries.clone().run_stream(stop()),
    );
    let _retries = supervisor.spawn(
        "webhook_retries",
        Need::Optional,
        deliveries.run_retries(stop()),
    );
    let live = LiveStreams::new(queue.clone());
    let _follower = supervisor.spawn("live_streams", Need::Optional, live.clone().run(stop()));
    let outcomes = IntCounterVec::new(
        Opts::new(
            "shortener_link_events_total",
            "Link events (link.created, link.updated, link.deleted) by outcome (queued, dropped_queue_down)",
        ),
        &["outcome"],
    )?;
    registry.register(Box::new(outcomes.clone()))?;
    Ok(Events {
        emitter: Emitter {
            queue,
            hooks,
            outcomes,
        },
        live,
    })
}
