//! What every handler shares.

use std::{sync::Arc, time::Duration};

use idgen::Generator;
use links::validate::Blocklist;
use links::{cache::RedisCache, store::Store};
use plumbing::breaker::Breaker;
use prometheus::{IntCounter, IntCounterVec};

use crate::{group_insert::GroupInserter, key_cache::KeyOwners, limits::RateLimits};

/// Shared state, handed to handlers as `web::Data<AppState>`.
pub struct AppState {
    /// Links and API keys in PostgreSQL (the primary).
    pub store: Store,
    /// Search, stats, hits per day and exports: a read replica where one is configured (they may lag it a
    /// moment), else the primary. Keeps such reads, however many a key sends, off the primary.
    pub reads: Store,
    /// API key → owner, cached while key changes are heard.
    pub key_owners: Arc<KeyOwners>,
    /// New links go to the primary through here, grouped with concurrent requests' links.
    pub inserter: GroupInserter,
    /// The Redis tier, written through on create.
    pub cache: RedisCache,
    /// In front of the write-through, so a hung Redis does not add its timeout to every create.
    pub redis_breaker: Breaker,
    /// Invalidations of deleted links: delivered at once, retried from the outbox while Redis fails.
    pub invalidations: crate::outbox::Invalidations,
    /// The embedded ID generator; issues only while its worker ID is leased.
    pub ids: Arc<Generator>,
    /// The codes of new links.
    pub codes: crate::codes::Minter,
    /// Base of short URLs on the default domain (ends with `/`).
    pub public_base_url: url::Url,
    /// The registered domains, reloaded every few seconds.
    pub domains: links::domain::Domains,
    /// Hosts long URLs may not point at.
    pub own_hosts: Vec<String>,
    /// Redis TTL source (jittered per write).
    pub redis: links::cache::RedisArgs,
    /// Domains long URLs may not point at.
    pub blocklist: Blocklist,
    /// Which proxies' `X-Forwarded-For` names the client the per-client limits count.
    pub trusted_proxies: plumbing::client_ip::TrustedProxies,
    /// Per-client, per-key and anonymous rate limits.
    pub limits: Arc<RateLimits>,
    /// Password hashing: a process-wide bound on hashes at once and a budget per key.
    pub passwords: Arc<crate::hashing::PasswordHasher>,
    /// Whether requests without a key may create links.
    pub allow_anonymous: bool,
    /// The CSV exports running now, bounded per key and in all.
    pub exports: Arc<crate::exports::ExportLimits>,
    /// One permit: the import running now, if any (imports run one at a time; see `import::route`).
    pub imports: Arc<tokio::sync::Semaphore>,
    /// Links created (committed).
    pub created: IntCounter,
    /// Generated codes found taken (by an alias), each followed by another.
    pub code_collisions: IntCounter,
    /// Failures of a dependency that were degraded around, by dependency and operation.
    pub degraded: IntCounterVec,
    /// Sends webhook deliveries (signed, to checked addresses only); built once, its connections pooled. Its
    /// `allows_private` is `--allow-private-webhooks`, which the API's check of new webhook URLs follows too.
    pub webhook_sender: Arc<crate::webhooks::send::Sender>,
    /// Now, for expiry checks and cache TTLs, and today for hit counts; injected so tests set the time.
    pub clock: plumbing::clock::SharedClock,
    /// Link events and live streams.
    pub events: crate::delivery::Events,
}

impl AppState {
    /// The short URL of the link stored under `key`: on the public base URL for the default domain, on the
    /// domain's host, with the base URL's scheme, for another.
    pub fn short_url(&self, key: &str) -> String {
        match links::domain::split_key(key) {
            (None, code) => format!("{}{code}", self.public_base_url),
            (Some(host), code) => format!("{}://{host}/{code}", self.public_base_url.scheme()),
        }
    }

    /// Tells every redirect that the owners whose links take click events changed (a click webhook created or
    /// deleted, a live stream opened). When Redis does not take it, redirects read them within seconds anyway.
    pub async fn announce_watchers(&self) {
        if let Err(error) = self
            .cache
            .publish_invalidation(links::cache::WATCHERS_CHANGED)
            .await
        {
            tracing::warn!(%error, "announcing changed watchers failed; redirects read them within seconds");
        }
    }

    /// A jittered cache TTL.
    pub fn cache_ttl(&self) -> Duration {
        self.redis.jittered_ttl()
    }

    /// Delivers the invalidation of a change an API call just committed (a delete, a patch). When Redis does not
    /// take it, the call still succeeds: the outbox delivers it once Redis is back, and the degradation is counted.
    pub async fn invalidate(&self, owed: links::outbox::Owed) {
        if !self.invalidations.deliver(owed).await {
            self.degraded
                .with_label_values(&["redis", "invalidate"])
                .inc();
        }
    }
}
