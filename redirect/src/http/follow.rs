//! The one route of the redirect: `GET`/`HEAD /{code}` (a protected link's is its password form), `POST /{code}`
//! (the password, see [`crate::http::unlock`]), `GET /{code}+` (the preview), and the state the handler shares.

use std::{cell::RefCell, convert::Infallible, sync::Arc, time::Duration};

use actix_web::{
    http::{header::HeaderName, Method},
    web, HttpRequest, HttpResponse,
};
use links::{code, model::Resolution};

use super::{
    answer,
    misses::MissLimit,
    pages::{self, Prompt},
    unlock::{self, Unlocker},
};
use crate::{
    hits::{counter::HitCounter, visit::Visit},
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
    async fn resolve_for(&self, req: &HttpRequest, code: &str) -> Result<Resolved, Duration> {
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

/// `GET`/`HEAD /{code}`, `POST /{code}` and `GET /{code}+`; another method on a code's path is a 405, any other
/// path a 404. Codes that cannot exist (other characters, a `/`, too long) are 404 before any backend is asked.
/// The hot path: no allocation beyond the response, no lock shared by all requests, no log line; a password or a
/// preview costs a link without one a single branch on an answer already found.
pub async fn follow(
    req: HttpRequest,
    worker: web::Data<Worker>,
    payload: web::Payload,
) -> HttpResponse {
    let state = &worker.shared;
    let timer = state.metrics.request_latency.start_timer();
    let code = req.path().strip_prefix('/').unwrap_or_default();
    let method = req.method();
    let reads = method == Method::GET || method == Method::HEAD;
    let response = if reads && code::is_plausible(code) {
        answer_code(&req, &worker, code).await
    } else if method == Method::POST && code::is_plausible(code) {
        // Boxed, as the lower tiers are: the rare paths' futures stay out of the hot path's.
        Box::pin(unlock::unlock(&req, &worker, code, payload)).await
    } else if code::is_plausible(code) {
        answer::method_not_allowed(&req)
    } else {
        match code.strip_suffix('+') {
            Some(code) if reads && code::is_plausible(code) => {
                Box::pin(preview(&req, &worker, code)).await
            }
            _ => answer::not_found(&req),
        }
    };
    state.metrics.status.of(response.status().as_u16()).inc();
    timer.observe_duration();
    response
}

/// `GET`/`HEAD /{code}`: the redirect, or a protected link's password form.
async fn answer_code(req: &HttpRequest, worker: &Worker, code: &str) -> HttpResponse {
    let state = &worker.shared;
    let resolved = match worker.resolve_for(req, code).await {
        Ok(resolved) => resolved,
        Err(wait) => return answer::too_many_unknown(req, wait),
    };
    match resolved {
        Ok(entry) if entry.target == Resolution::Unknown => unknown(req, state),
        Ok(entry) => {
            let now = state.clock.now();
            let response = answer::respond(req, &entry, now, &state.permanent_max_age);
            if let Resolution::Live {
                id,
                password_hash,
                limited,
                max_hits,
                ..
            } = &entry.target
            {
                if password_hash.is_some() && response.status().is_redirection() {
                    return pages::password_form(code, Prompt::Ask);
                }
                // A GET is a visit. A HEAD is not, except on a link with a visit limit: every answer that shows
                // its target uses it up, or a client would read the target with HEADs forever.
                if response.status().is_redirection() && (*limited || req.method() == Method::GET) {
                    // Past its limit as this process has answered it, a link is gone before any flush says so.
                    if !max_hits.is_none_or(|max| state.hits.admit(*id, max)) {
                        return answer::gone(req);
                    }
                    state.hits.record(*id, *limited, now, &state.visit(req));
                }
            }
            response
        }
        Err(_) => answer::unavailable(req),
    }
}

/// `GET /{code}+`: where the link goes, without going there.
async fn preview(req: &HttpRequest, worker: &Worker, code: &str) -> HttpResponse {
    let state = &worker.shared;
    let resolved = match worker.resolve_for(req, code).await {
        Ok(resolved) => resolved,
        Err(wait) => return answer::too_many_unknown(req, wait),
    };
    match resolved {
        Ok(entry) => match entry.target.clone().at(state.clock.now()) {
            Resolution::Live {
                long_url,
                password_hash,
                id,
                limited,
                max_hits,
                ..
            } => {
                // The page names a limited link's target, so showing it uses up a visit as a redirect does.
                if limited && password_hash.is_none() && req.method() == Method::GET {
                    if !max_hits.is_none_or(|max| state.hits.admit(id, max)) {
                        return answer::gone(req);
                    }
                    state
                        .hits
                        .record(id, limited, state.clock.now(), &state.visit(req));
                }
                pages::preview(code, &long_url, password_hash.is_some())
            }
            Resolution::Gone => answer::gone(req),
            Resolution::Unknown => unknown(req, state),
        },
        Err(_) => answer::unavailable(req),
    }
}

/// 404 for an unknown code, or 429 once the client is past its bound on them.
fn unknown(req: &HttpRequest, state: &RedirectState) -> HttpResponse {
    match state.misses.count(state.trusted_proxies.client(req)) {
        Ok(()) => answer::not_found(req),
        Err(wait) => answer::too_many_unknown(req, wait),
    }
}
