//! The one route of the redirect: `GET`/`HEAD /{code}` (a protected link's is its password form), `POST /{code}`
//! (the password, see [`crate::http::unlock`]) and `GET /{code}+` (the preview). The state the handler shares
//! is [`crate::http::state`]'s.

use actix_web::{http::Method, web, HttpRequest, HttpResponse};
use links::{code, model::Resolution};

use crate::clicks::Link;

use super::{
    answer,
    pages::{self, Prompt},
    route,
    site::Site,
    state::{RedirectState, Worker},
    unlock,
};

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
    let site = Site::of(&req, &worker);
    let mut response = if reads && code::is_plausible(code) {
        answer_code(&req, &worker, &site, code).await
    } else if method == Method::POST && code::is_plausible(code) {
        // Boxed, as the lower tiers are: the rare paths' futures stay out of the hot path's.
        Box::pin(unlock::unlock(
            &req,
            &worker,
            &site.key(code),
            code,
            payload,
        ))
        .await
    } else if code::is_plausible(code) {
        answer::method_not_allowed(&req)
    } else {
        match code.strip_suffix('+') {
            Some(code) if reads && code::is_plausible(code) => {
                Box::pin(preview(&req, &worker, &site, code)).await
            }
            _ if reads && code.is_empty() => site.root(&req, state),
            _ if reads && code == "robots.txt" => site.robots(),
            _ => answer::not_found(&req),
        }
    };
    site.mark(&mut response);
    state.metrics.status.of(response.status().as_u16()).inc();
    timer.observe_duration();
    response
}

/// `GET`/`HEAD /{code}`: the redirect, or a protected link's password form.
async fn answer_code(req: &HttpRequest, worker: &Worker, site: &Site, code: &str) -> HttpResponse {
    let state = &worker.shared;
    let resolved = match worker.resolve_for(req, &site.key(code)).await {
        Ok(resolved) => resolved,
        Err(wait) => return answer::too_many_unknown(req, wait),
    };
    match resolved {
        Ok(entry) if entry.target == Resolution::Unknown => unknown(req, state, site),
        Ok(entry) => {
            let now = state.clock.now();
            let mut response = answer::respond(req, &entry, now, &state.permanent_max_age);
            if let Resolution::Live {
                id,
                password_hash,
                limited,
                max_hits,
                routing,
                owner,
                ..
            } = &entry.target
            {
                let redirects = response.status().is_redirection();
                if password_hash.is_some() && redirects {
                    return pages::password_form(code, Prompt::Ask);
                }
                // One branch for links without rules or variants.
                let routed = match routing {
                    Some(routing) if redirects => {
                        Some(route::apply(&mut response, req, state, routing, *id, now))
                    }
                    _ => None,
                };
                // A GET is a visit. A HEAD is not, except on a link with a visit limit: every answer that shows
                // its target uses it up, or a client would read the target with HEADs forever.
                if redirects && (*limited || req.method() == Method::GET) {
                    // Past its limit as this process has answered it, a link is gone before any flush says so.
                    if !max_hits.is_none_or(|max| state.hits.admit(*id, max)) {
                        return answer::gone(req);
                    }
                    let visit = routed.unwrap_or_else(|| state.visit(req));
                    state.hits.record(*id, *limited, now, &visit);
                    if let Some(owner) = owner.filter(|owner| worker.watching(*owner)) {
                        let key = site.key(code);
                        let link = Link {
                            key: &key,
                            code,
                            domain: &site.domain_host(worker),
                        };
                        state.clicks.take(req, &response, &visit, link, owner, now);
                    }
                }
            }
            response
        }
        Err(_) => answer::unavailable(req),
    }
}

/// `GET /{code}+`: where the link goes, without going there.
async fn preview(req: &HttpRequest, worker: &Worker, site: &Site, code: &str) -> HttpResponse {
    let state = &worker.shared;
    let resolved = match worker.resolve_for(req, &site.key(code)).await {
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
            Resolution::Unknown => unknown(req, state, site),
        },
        Err(_) => answer::unavailable(req),
    }
}

/// 404 for an unknown code (or the domain's not-found URL), or 429 once the client is past its bound on them.
fn unknown(req: &HttpRequest, state: &RedirectState, site: &Site) -> HttpResponse {
    match state.misses.count(state.trusted_proxies.client(req)) {
        Ok(()) => site.unknown(req, state),
        Err(wait) => answer::too_many_unknown(req, wait),
    }
}
