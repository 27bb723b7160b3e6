//! The one route of the redirect: `GET`/`HEAD /{code}`, and the state its handler shares.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
};

use actix_web::{
    http::{header::HeaderValue, Method},
    web, HttpRequest, HttpResponse,
};
use links::{code, model::Resolution};

use crate::{answer, hits::HitCounter, metrics::Metrics, misses::MissLimit, resolver::Resolver};

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
    /// `Cache-Control` of 301/308 answers, built once.
    pub permanent_max_age: HeaderValue,
    /// Decides expiry and the day a hit counts for; injected so tests set the time.
    pub clock: plumbing::clock::SharedClock,
}

/// `GET`/`HEAD /{code}`; anything else is a 404. Codes that cannot exist (other characters, a `/`, too long)
/// are 404 before any backend is asked. The hot path: no allocation beyond the response, no lock shared by all
/// requests, no log line.
pub async fn follow(req: HttpRequest, state: web::Data<RedirectState>) -> HttpResponse {
    let timer = state.metrics.request_latency.start_timer();
    let code = req.path().strip_prefix('/').unwrap_or_default();
    let method = req.method();
    let response =
        if !(method == Method::GET || method == Method::HEAD) || !code::is_plausible(code) {
            answer::not_found(&req)
        } else {
            match state.resolver.resolve(code).await {
                Ok(entry) if entry.target == Resolution::Unknown => {
                    match state.misses.count(client_ip(&req)) {
                        Ok(()) => answer::not_found(&req),
                        Err(wait) => answer::too_many_unknown(&req, wait),
                    }
                }
                Ok(entry) => {
                    let now = state.clock.now();
                    let response = answer::respond(&req, &entry, now, &state.permanent_max_age);
                    if let Resolution::Live { id, .. } = entry.target {
                        if response.status().is_redirection() && method == Method::GET {
                            state.hits.record(id, now);
                        }
                    }
                    response
                }
                Err(_) => answer::unavailable(&req),
            }
        };
    state.metrics.status.of(response.status().as_u16()).inc();
    timer.observe_duration();
    response
}

/// The client's address; a request without one (not over TCP) counts as one anonymous client.
fn client_ip(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.ip())
}
