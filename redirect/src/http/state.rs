//! The state the redirect's handlers share: one [`RedirectState`] for the process, and one [`Worker`] per HTTP
//! worker around it, whose `Worker::resolve` is every handler's way to a code's link (the worker's own copies
//! first, then the shared read path of [`crate::tiers`]).

use std::{cell::RefCell, convert::Infallible, sync::Arc, time::Duration};

use actix_web::{http::header::HeaderName, web, HttpRequest};
use links::domain::DomainTable;

use super::{answer, checks::Unlocker, misses::MissLimit};
use crate::{
    hits::{visit::Visit, HitCounter},
    metrics::Metrics,
    tiers::{
        front::FrontCache,
        lookup::WorkerRedis,
        resolver::{Resolved, Resolver},
    },
};

/// What one HTTP worker holds: the state all workers share, and a Redis client of its own, connected on the
/// worker's thread. With one client shared by every worker, each Redis lookup crossed to the runtime thread that
/// owns the connection and back: a third of the process's CPU in the Redis-only benchmark was on that thread,
/// and context switches were the largest single cost.
pub struct Worker {
    /// Shared by every worker.
    pub shared: web::Data<RedirectState>,
    /// This worker's Redis client and lookup batches.
    pub redis: WorkerRedis,
    /// This worker's copies of the links it answered lately.
    pub front: RefCell<FrontCache>,
    /// This worker's copy of the domain table and the version it is of (see `links::domain::Domains::version`).
    pub domains: RefCell<(u64, Arc<DomainTable>)>,
    /// This worker's copy of the owners whose links take click events, and the version it is of.
    pub watchers: RefCell<(u64, Option<Arc<std::collections::HashSet<i64>>>)>,
}

impl Worker {
    /// Runs `f` on the domain table, this worker's copy, refreshed when the shared one has moved on.
    pub(crate) fn with_domains<T>(&self, f: impl FnOnce(&DomainTable) -> T) -> T {
        let shared = &self.shared.domains;
        let mut copy = self.domains.borrow_mut();
        let version = shared.version();
        if copy.0 != version {
            *copy = (version, shared.load_full());
        }
        f(&copy.1)
    }

    /// Whether the links of `owner` take click events, from this worker's copy of the watchers.
    pub(crate) fn watching(&self, owner: i64) -> bool {
        let shared = &self.shared.watchers;
        let mut copy = self.watchers.borrow_mut();
        let version = shared.version();
        if copy.0 != version {
            *copy = (version, shared.load());
        }
        copy.1
            .as_ref()
            .is_some_and(|owners| owners.contains(&owner))
    }
}

impl Worker {
    /// The entry for `code`: this worker's copy when it has a valid one, else the shared read path (whose live
    /// answer is then copied, under the epoch read before the lookup, so a change that overlapped it leaves the
    /// copy stale; the copy also ends when the local cache's own expiry of the entry comes).
    pub(crate) async fn resolve(&self, code: &str) -> Resolved {
        match self.resolve_if(code, || Ok::<(), Infallible>(())).await {
            Ok(resolved) => resolved,
            Err(never) => match never {},
        }
    }

    /// As [`resolve`](Self::resolve), but the tiers below the in-process cache are asked only if `admit` says
    /// so: a client past its bound on unknown codes costs no lookup.
    ///
    /// # Errors
    /// What `admit` refused with, when the code was not in memory.
    pub(crate) async fn resolve_if<E>(
        &self,
        code: &str,
        admit: impl FnOnce() -> Result<(), E>,
    ) -> Result<Resolved, E> {
        let resolver = &self.shared.resolver;
        let stamp = resolver.local.front_stamp();
        let copied = self.front.borrow().get(code, stamp).map(Arc::clone);
        if let Some(entry) = copied {
            self.shared.metrics.tier.local.inc();
            return Ok(Ok(entry));
        }
        let resolved = match resolver.cached(code) {
            Some(entry) => Ok(entry),
            None => {
                admit()?;
                // Boxed: the lower tiers' future (Redis, the databases, their timeouts) is kilobytes, and inline
                // it would be part of every request's handler future, which actix moves into a box of its own
                // per request: a copy of ~15 KB on every answer, hits included (callgrind: 43% of a hot
                // redirect's instructions).
                Box::pin(resolver.resolve_below(code, &self.redis)).await
            }
        };
        if let Ok(entry) = &resolved {
            self.front.borrow_mut().put(code, entry, stamp.epoch);
        }
        Ok(resolved)
    }

    /// The entry for `code` as `req`'s client may have it: the tiers below the in-process cache are asked only
    /// while the client is within its bound on unknown codes.
    ///
    /// # Errors
    /// How long the client should wait, when it is past its bound and the code is not in memory.
    pub(super) async fn resolve_for(
        &self,
        req: &HttpRequest,
        code: &str,
    ) -> Result<Resolved, Duration> {
        let state = &self.shared;
        self.resolve_if(code, || {
            state.misses.admits(state.trusted_proxies.client(req))
        })
        .await
    }
}

/// What the handler shares.
pub struct RedirectState {
    /// Local cache, single flight and the lower tiers.
    pub resolver: Resolver,
    /// The registered domains: which `Host` a link key carries, and each domain's root, not-found and robots.
    pub domains: links::domain::Domains,
    /// The owners whose links take click events.
    pub watchers: crate::clicks::watchers::Watchers,
    /// Where click events go.
    pub clicks: crate::clicks::Clicks,
    /// Hits counted since the last flush.
    pub hits: Arc<HitCounter>,
    /// Series the handler updates on every request.
    pub metrics: Arc<Metrics>,
    /// The bound on unknown codes per client.
    pub misses: Arc<MissLimit>,
    /// The bound on password tries, and the checks' turns.
    pub unlocker: Arc<Unlocker>,
    /// Which proxies' `X-Forwarded-For` names the client that bound counts.
    pub trusted_proxies: plumbing::client_ip::TrustedProxies,
    /// The header a CDN puts the client's country in (`--country-header`), if any.
    pub country_header: Option<HeaderName>,
    /// `Cache-Control` of 301/308 answers, built once.
    pub permanent_max_age: answer::PermanentMaxAge,
    /// Decides expiry and the day a hit counts for; injected so tests set the time.
    pub clock: plumbing::clock::SharedClock,
}

impl RedirectState {
    /// Where the visit of `req` comes from. The country header is read only when the peer is a trusted proxy
    /// (the CDN or ingress that writes it); checked only when one is configured, so the hot path pays nothing
    /// otherwise.
    pub fn visit<'a>(&self, req: &'a HttpRequest) -> Visit<'a> {
        let trusted = self.country_header.is_some()
            && req
                .peer_addr()
                .is_some_and(|peer| self.trusted_proxies.contains(peer.ip()));
        Visit::of(req, self.country_header.as_ref(), trusted)
    }
}
