//! `POST /{code}` on a password-protected link: the visitor's password checked against the link's Argon2id hash,
//! then a 303 to the target (the hit counted), or the form again with 401.
//!
//! 303, whatever the link's own status: after a form post a 307 or 308 would make the browser post the password
//! on to the target. Every try counts against the bounds of [`crate::http::checks`] (429 past any) and waits for a
//! turn to be checked there (503 when none comes in time). The form's body must arrive within
//! [`FORM_READ_TIMEOUT`] (408), so a client cannot hold a connection open by sending it slowly.

use std::time::Duration;

use actix_web::{
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use links::model::Resolution;

use super::{
    answer,
    pages::{self, Prompt},
    route,
    state::Worker,
};

/// Largest form body: a 128-character password, percent-encoded, with room to spare.
const MAX_FORM_BYTES: usize = 4096;

/// How long the form's body may take to arrive.
pub const FORM_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// `POST /{code}`: answers a password try on the link stored under `key` (`code` on the request's domain).
pub async fn unlock(
    req: &HttpRequest,
    worker: &Worker,
    key: &str,
    code: &str,
    payload: web::Payload,
) -> HttpResponse {
    let state = &worker.shared;
    let entry = match worker.resolve(key).await {
        Ok(entry) => entry,
        Err(_) => return answer::unavailable(req),
    };
    let now = state.clock.now();
    let (id, limited, max_hits, long_url, hash, routing) = match &entry.target.clone().at(now) {
        Resolution::Live {
            id,
            password_hash: Some(hash),
            limited,
            max_hits,
            routing,
            ..
        } => (
            *id,
            *limited,
            *max_hits,
            entry.location.clone(),
            hash.clone(),
            routing.clone(),
        ),
        Resolution::Live { .. } => return answer::method_not_allowed(req),
        Resolution::Gone => return answer::gone(req),
        Resolution::Unknown => return answer::not_found(req),
    };
    let Some(location) = long_url else {
        return answer::not_found(req);
    };
    let client = state.trusted_proxies.client(req);
    let unlocker = &state.unlocker;
    if let Err(wait) = unlocker.count(client, key) {
        return answer::too_many_tries(req, wait);
    }
    let Ok(password) = tokio::time::timeout(FORM_READ_TIMEOUT, password_of(payload)).await else {
        return answer::request_timeout(req);
    };
    let Some(password) = password else {
        return pages::password_form(code, Prompt::Wrong);
    };
    let link = unlocker.key(None, key);
    match unlocker.check(link, password, hash).await {
        Some(true) => {
            unlocker.link_tries.succeeded(link);
            if !max_hits.is_none_or(|max| state.hits.admit(id, max)) {
                return answer::gone(req);
            }
            let mut response = HttpResponse::build(StatusCode::SEE_OTHER)
                .insert_header((header::LOCATION, location))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
            // Rules and variants apply behind a password as they do without one.
            let visit = match &routing {
                Some(routing) => route::apply(&mut response, req, state, routing, id, now),
                None => state.visit(req),
            };
            state.hits.record(id, limited, now, &visit);
            response
        }
        Some(false) => pages::password_form(code, Prompt::Wrong),
        None => answer::unavailable(req),
    }
}

/// The `password` field of an `application/x-www-form-urlencoded` body of at most [`MAX_FORM_BYTES`]; `None`
/// for a body too large, malformed or without it.
async fn password_of(payload: web::Payload) -> Option<String> {
    let body = payload.to_bytes_limited(MAX_FORM_BYTES).await.ok()?.ok()?;
    url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "password")
        .map(|(_, value)| value.into_owned())
}
