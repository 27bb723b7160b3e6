//! Links a flush ended at their visit limit: once the visits it wrote take a link to its `max_hits`, the link is
//! marked exhausted and its invalidation queued in the same transaction as the hits (a failed flush keeps
//! neither, so its retry never counts twice), then delivered through Redis like a delete's, so every replica
//! answers 410 within a moment. (Before any flush, each process keeps the bound itself:
//! [`HitCounter::admit`](crate::hits::counter::HitCounter::admit).)

use std::time::Duration;

use links::{cache::RedisCache, outbox::Owed, store::Store};
use plumbing::chain::Chain;

/// Tells every replica, through Redis, that links reached their visit limit. What Redis does not take stays
/// in the outbox, which the shortener delivers once Redis is back. Redis is given `timeout` to take them.
pub(super) async fn invalidate(
    primary: &Store,
    cache: &RedisCache,
    timeout: Duration,
    exhausted: Vec<Owed>,
) {
    if exhausted.is_empty() {
        return;
    }
    let codes: Vec<String> = exhausted.iter().map(|owed| owed.code.clone()).collect();
    let delivered = tokio::time::timeout(timeout, cache.invalidate_all(&codes)).await;
    if !matches!(delivered, Ok(Ok(()))) {
        tracing::warn!(
            links = codes.len(),
            "links at their visit limit not invalidated yet; the outbox retries"
        );
        return;
    }
    if let Err(error) = primary.invalidations_delivered(&exhausted).await {
        tracing::warn!(error = %Chain(&error), "delivered invalidations stay in the outbox");
    }
}
