//! `POST /{code}` on a password-protected link: the visitor's password checked against the link's Argon2id hash,
//! then a 303 to the target (the hit counted), or the form again with 401.
//!
//! 303, whatever the link's own status: after a form post a 307 or 308 would make the browser post the password
//! on to the target. Every try counts against a bound per client and link (429 past it), so guessing is slow;
//! checking costs tens of milliseconds of CPU by design, so it runs on blocking threads, a few at a time, and a
//! try that cannot get a turn within a second is a 503 rather than a queue that grows.

use std::{
    hash::{BuildHasher, Hash, Hasher},
    time::Duration,
};

use actix_web::{
    http::{header, StatusCode},
    web, HttpRequest, HttpResponse,
};
use links::model::Resolution;
use plumbing::client_ip::ClientKey;
use tokio::sync::Semaphore;

use crate::{
    answer,
    follow::Worker,
    misses::KeyedLimit,
    pages::{self, Prompt},
};

/// Largest form body: a 128-character password, percent-encoded, with room to spare.
const MAX_FORM_BYTES: usize = 4096;

/// Password checks running at once (each holds a blocking thread and ~19 MiB for Argon2's memory).
const CONCURRENT_CHECKS: usize = 2;

/// How long a try waits for a turn to be checked.
const CHECK_WAIT: Duration = Duration::from_secs(1);

/// The bound on tries and on checks running at once.
pub struct Unlocker {
    tries: KeyedLimit<u64>,
    checks: Semaphore,
    seed: foldhash::quality::RandomState,
}

impl Unlocker {
    /// At most `tries_per_minute` tries per client and link (0: no bound).
    pub fn new(tries_per_minute: u32) -> Self {
        Self {
            tries: KeyedLimit::new(tries_per_minute),
            checks: Semaphore::new(CONCURRENT_CHECKS),
            seed: foldhash::quality::RandomState::default(),
        }
    }

    /// Forgets idle clients' tries every minute until `shutdown` (see [`KeyedLimit::forget_idle`]).
    pub async fn forget_idle(self: std::sync::Arc<Self>, shutdown: plumbing::shutdown::Shutdown) {
        self.tries.forget_idle(shutdown).await;
    }

    /// One key per client and code, hashed with a per-process random seed: a fixed-size key whatever the code's
    /// length, and one a client cannot aim at another's bucket.
    fn key(&self, client: ClientKey, code: &str) -> u64 {
        let mut hasher = self.seed.build_hasher();
        client.hash(&mut hasher);
        code.hash(&mut hasher);
        hasher.finish()
    }

    async fn check(&self, password: String, hash: String) -> Option<bool> {
        let _turn = tokio::time::timeout(CHECK_WAIT, self.checks.acquire())
            .await
            .ok()?
            .ok()?;
        tokio::task::spawn_blocking(move || links::password::verify(&password, &hash))
            .await
            .ok()
    }
}

/// `POST /{code}`: answers a password try on link `code`.
pub async fn unlock(
    req: &HttpRequest,
    worker: &Worker,
    code: &str,
    payload: web::Payload,
) -> HttpResponse {
    let state = &worker.shared;
    let entry = match worker.resolve(code).await {
        Ok(entry) => entry,
        Err(_) => return answer::unavailable(req),
    };
    let now = state.clock.now();
    let (id, limited, long_url, hash) = match &entry.target.clone().at(now) {
        Resolution::Live {
            id,
            password_hash: Some(hash),
            limited,
            ..
        } => (*id, *limited, entry.location.clone(), hash.clone()),
        Resolution::Live { .. } => return answer::method_not_allowed(req),
        Resolution::Gone => return answer::gone(req),
        Resolution::Unknown => return answer::not_found(req),
    };
    let Some(location) = long_url else {
        return answer::not_found(req);
    };
    let client = state.trusted_proxies.client(req);
    if let Err(wait) = state.unlocker.tries.count(state.unlocker.key(client, code)) {
        return answer::too_many_tries(req, wait);
    }
    let Some(password) = password_of(payload).await else {
        return pages::password_form(code, Prompt::Wrong);
    };
    match state.unlocker.check(password, hash).await {
        Some(true) => {
            state.hits.record(id, limited, now, &state.visit(req));
            HttpResponse::build(StatusCode::SEE_OTHER)
                .insert_header((header::LOCATION, location))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
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
