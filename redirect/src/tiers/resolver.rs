//! The whole read path for one code: the in-process cache first; on a miss, one coalesced lookup through the
//! lower tiers, whose answer fills the local cache.

use std::sync::Arc;

use plumbing::flight::SingleFlight;

use super::{
    local::{Entry, LocalCache},
    lookup::{Tiers, Unavailable, WorkerRedis},
};
use crate::metrics::Metrics;

/// What a lookup shares with the requests that waited on it.
pub type Resolved = Result<Arc<Entry>, Unavailable>;

/// Local cache, single flight and the lower tiers.
pub struct Resolver {
    /// The in-process cache (shared with the invalidation subscriber and the flusher's size report).
    pub local: Arc<LocalCache>,
    /// Redis and the databases.
    pub tiers: Tiers,
    /// Misses in flight, by code.
    pub flight: SingleFlight<Resolved>,
    /// Tier counters.
    pub metrics: Arc<Metrics>,
}

impl Resolver {
    /// The entry for `code`, counting the tier that answered; Redis is asked through `redis`, the calling
    /// worker's client.
    ///
    /// # Errors
    /// [`Unavailable`] when the code is not cached and no lower tier answers.
    pub async fn resolve(&self, code: &str, redis: &WorkerRedis) -> Resolved {
        match self.cached(code) {
            Some(entry) => Ok(entry),
            None => self.resolve_below(code, redis).await,
        }
    }

    /// What the in-process cache holds for `code` (a link, or a negative entry), counting the tier.
    pub fn cached(&self, code: &str) -> Option<Arc<Entry>> {
        let entry = self.local.get(code)?;
        let tier = &self.metrics.tier;
        match entry.target {
            links::model::Resolution::Unknown => tier.negative.inc(),
            _ => tier.local.inc(),
        }
        Some(entry)
    }

    /// The entry for a code the in-process cache did not have: one coalesced lookup through the lower tiers.
    ///
    /// # Errors
    /// [`Unavailable`] when no lower tier answers.
    pub async fn resolve_below(&self, code: &str, redis: &WorkerRedis) -> Resolved {
        self.flight.run(code, || self.look_up(code, redis)).await
    }

    async fn look_up(&self, code: &str, redis: &WorkerRedis) -> Resolved {
        // A flight that ended between this request's cache check and its joining filled the cache already;
        // without this check it would start a second lookup.
        if let Some(entry) = self.local.get_again(code) {
            return Ok(entry);
        }
        let generation = self.local.generation(code);
        let changed = self.local.changed_recently(code);
        let target = self
            .tiers
            .resolve(code, &self.metrics, changed, redis)
            .await?;
        let entry = Arc::new(self.local.entry(target));
        self.local.fill(code, entry.clone(), generation);
        Ok(entry)
    }
}
