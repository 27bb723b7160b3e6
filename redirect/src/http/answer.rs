//! Turning a target into the HTTP answer: the link's status with `Location` and caching headers a browser and a
//! CDN understand, or a small 404/410 page (HTML, or JSON when asked) that nobody may cache.

use actix_web::{
    http::{
        header::{self, HeaderValue},
        StatusCode,
    },
    HttpRequest, HttpResponse,
};
use chrono::{DateTime, Utc};
use links::model::{RedirectStatus, Resolution};

use crate::tiers::local::Entry;

/// Links expiring sooner than this are never kept by a browser or a CDN (`no-store`): a copy kept a little too
/// long is a redirect after the link ended.
const EXPIRING_SOON_SECS: i64 = 3_600;

/// `Cache-Control` of 301/308 answers (`--permanent-max-age-secs`), built once for links that outlive it.
#[derive(Debug, Clone)]
pub struct PermanentMaxAge {
    secs: u64,
    header: HeaderValue,
}

impl PermanentMaxAge {
    /// `public, max-age={secs}`.
    pub fn new(secs: u64) -> Self {
        Self {
            secs,
            header: public_max_age(secs),
        }
    }
}

/// `public, max-age={secs}` (only ASCII: always a valid header value; `no-store` would be the safe side anyway).
fn public_max_age(secs: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={secs}"))
        .unwrap_or_else(|_| HeaderValue::from_static("no-store"))
}

/// The answer for `entry` at `now`: a live link past its expiry is 410, whatever tier it came from.
pub fn respond(
    req: &HttpRequest,
    entry: &Entry,
    now: DateTime<Utc>,
    permanent_max_age: &PermanentMaxAge,
) -> HttpResponse {
    match (&entry.target, &entry.location) {
        (
            Resolution::Live {
                expires_at: Some(expires_at),
                ..
            },
            _,
        ) if *expires_at <= now => gone(req),
        (
            Resolution::Live {
                redirect,
                expires_at,
                limited,
                ..
            },
            Some(location),
        ) => {
            let left = expires_at.map(|at| (at - now).num_seconds());
            redirect_to(
                *redirect,
                location,
                cache_control(*redirect, *limited, left, permanent_max_age),
            )
        }
        (Resolution::Gone, _) => gone(req),
        (Resolution::Live { .. } | Resolution::Unknown, _) => not_found(req),
    }
}

/// How long a redirect may be kept, for a link with a visit limit or not (`limited`) and `left` whole seconds
/// before it expires, if it does.
fn cache_control(
    redirect: RedirectStatus,
    limited: bool,
    left: Option<i64>,
    permanent_max_age: &PermanentMaxAge,
) -> HeaderValue {
    // A kept redirect is a visit nobody counts (a limit would not hold) or one after the link ended.
    if limited || left.is_some_and(|left| left < EXPIRING_SOON_SECS) {
        return HeaderValue::from_static("no-store");
    }
    if !redirect.is_permanent() {
        // Temporary redirects go back to the service every time, so every visit is counted.
        return HeaderValue::from_static("private, max-age=0");
    }
    match left.and_then(|left| u64::try_from(left).ok()) {
        // Never kept past the link's own end.
        Some(left) if left < permanent_max_age.secs => public_max_age(left),
        _ => permanent_max_age.header.clone(),
    }
}

fn redirect_to(
    redirect: RedirectStatus,
    location: &HeaderValue,
    cache_control: HeaderValue,
) -> HttpResponse {
    let status = StatusCode::from_u16(redirect.code()).unwrap_or(StatusCode::FOUND);
    let mut response = HttpResponse::new(status);
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, location.clone());
    headers.insert(header::CACHE_CONTROL, cache_control);
    response
}

/// 410: the link expired or was deleted.
pub fn gone(req: &HttpRequest) -> HttpResponse {
    missing(
        req,
        StatusCode::GONE,
        "gone",
        "This short link has expired or was deleted.",
    )
}

/// 404: no such code.
pub fn not_found(req: &HttpRequest) -> HttpResponse {
    missing(
        req,
        StatusCode::NOT_FOUND,
        "not_found",
        "There is no short link with this code.",
    )
}

/// 405 for a method other than `GET`/`HEAD` on a code's path, whether or not the code exists (no backend is
/// asked), and for `POST` on a link without a password.
pub fn method_not_allowed(req: &HttpRequest) -> HttpResponse {
    let mut response = missing(
        req,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "A short link answers only GET and HEAD.",
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// 503 while no tier can answer.
pub fn unavailable(req: &HttpRequest) -> HttpResponse {
    let mut response = missing(
        req,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Links cannot be looked up right now. Try again shortly.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// 429 for an unknown code once the client is past its bound on them; real links still redirect.
pub fn too_many_unknown(req: &HttpRequest, wait: std::time::Duration) -> HttpResponse {
    rate_limited(
        req,
        wait,
        "Too many unknown short links asked for. Try again later.",
    )
}

/// 408 for a form whose body did not arrive in time.
pub fn request_timeout(req: &HttpRequest) -> HttpResponse {
    missing(
        req,
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        "The form took too long to arrive. Try again.",
    )
}

/// 429 for a password try once the client is past its bound on tries for this link.
pub fn too_many_tries(req: &HttpRequest, wait: std::time::Duration) -> HttpResponse {
    rate_limited(
        req,
        wait,
        "Too many password tries for this link. Try again later.",
    )
}

fn rate_limited(req: &HttpRequest, wait: std::time::Duration, message: &str) -> HttpResponse {
    let mut response = missing(req, StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(plumbing::http::retry_after_secs(wait)),
    );
    response
}

fn missing(req: &HttpRequest, status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    // A cached 404 for a code created a minute later is a broken link (Kutt PR #604).
    response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if wants_json(req) {
        return response.json(serde_json::json!({"error": {"code": code, "message": message}}));
    }
    let title = status.canonical_reason().unwrap_or("Error");
    response
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>{title}</title>\
         <body><h1>{} {title}</h1><p>{message}</p></body></html>\n",
            status.as_u16()
        ))
}

fn wants_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_is_kept_no_longer_than_its_link_and_never_when_limited_or_ending_soon() {
        let day = PermanentMaxAge::new(86_400);
        let kept = |redirect, limited, left| cache_control(redirect, limited, left, &day);
        use RedirectStatus::{Found302, Permanent301, Permanent308};
        assert_eq!(kept(Permanent301, false, None), "public, max-age=86400");
        assert_eq!(
            kept(Permanent308, false, Some(7_200)),
            "public, max-age=7200"
        );
        assert_eq!(
            kept(Permanent301, false, Some(100_000)),
            "public, max-age=86400"
        );
        assert_eq!(kept(Permanent308, false, Some(3_599)), "no-store");
        assert_eq!(kept(Permanent301, true, None), "no-store");
        assert_eq!(kept(Found302, false, None), "private, max-age=0");
        assert_eq!(kept(Found302, false, Some(60)), "no-store");
        assert_eq!(kept(Found302, true, None), "no-store");
    }
}
