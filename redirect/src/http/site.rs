//! The domain a request is on (from `Host`): the key its codes are looked up by, and the answers a domain gives
//! besides links — `GET /` (its root URL or 404), an unknown code (its not-found URL or the 404 page),
//! `robots.txt`, and `X-Robots-Tag: noindex` on every answer of a domain that does not allow indexing.
//!
//! On an install with only the default domain, a request reads no header for this: one branch on the table.

use std::borrow::Cow;

use actix_web::{
    http::{
        header::{self, HeaderName, HeaderValue},
        StatusCode,
    },
    HttpRequest, HttpResponse,
};
use links::domain::{Domain, DomainTable};

use super::{
    answer,
    state::{RedirectState, Worker},
};

/// The request's domain, as much of it as every request needs.
#[derive(Debug)]
pub struct Site {
    /// The host of a domain other than the default one, which its links' keys carry.
    host: Option<String>,
    /// Whether the domain lets search engines index it.
    allow_indexing: bool,
}

impl Site {
    /// The domain `req` names (a `Host` that is no registered domain is the default domain), read from the
    /// worker's copy of the table: no shared memory written per request.
    pub fn of(req: &HttpRequest, worker: &Worker) -> Self {
        worker.with_domains(|table| {
            let domain = serving(table, req);
            Self {
                host: domain
                    .filter(|domain| !domain.is_default)
                    .map(|domain| domain.host.clone()),
                allow_indexing: domain.is_some_and(|domain| domain.allow_indexing),
            }
        })
    }

    /// The host of the domain the site is on, for click events: the default domain's when the site has none.
    pub fn domain_host(&self, worker: &Worker) -> String {
        self.host.clone().unwrap_or_else(|| {
            worker.with_domains(|table| {
                table
                    .default_domain()
                    .map(|domain| domain.host.clone())
                    .unwrap_or_default()
            })
        })
    }

    /// The key `code` is stored under on this domain.
    pub fn key<'c>(&self, code: &'c str) -> Cow<'c, str> {
        match &self.host {
            None => Cow::Borrowed(code),
            Some(host) => Cow::Owned(links::domain::link_key(Some(host), code)),
        }
    }

    /// Adds `X-Robots-Tag: noindex` unless the domain allows indexing.
    pub fn mark(&self, response: &mut HttpResponse) {
        if !self.allow_indexing {
            // Appended: no answer has the header already, and an append skips insert's removal of old values.
            response
                .headers_mut()
                .append(X_ROBOTS_TAG, HeaderValue::from_static("noindex"));
        }
    }

    /// The answer for an unknown code: a redirect to the domain's not-found URL, or the 404 page.
    pub fn unknown(&self, req: &HttpRequest, state: &RedirectState) -> HttpResponse {
        let table = state.domains.load();
        match serving(&table, req).and_then(|domain| domain.not_found_url.as_deref()) {
            Some(url) => elsewhere(url),
            None => answer::not_found(req),
        }
    }

    /// `GET /`: a redirect to the domain's root URL, or 404.
    pub fn root(&self, req: &HttpRequest, state: &RedirectState) -> HttpResponse {
        let table = state.domains.load();
        match serving(&table, req).and_then(|domain| domain.root_url.as_deref()) {
            Some(url) => elsewhere(url),
            None => answer::not_found(req),
        }
    }

    /// `GET /robots.txt`: everything disallowed, unless the domain allows indexing.
    pub fn robots(&self) -> HttpResponse {
        let rules = if self.allow_indexing {
            "User-agent: *\nAllow: /\n"
        } else {
            "User-agent: *\nDisallow: /\n"
        };
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .body(rules)
    }
}

const X_ROBOTS_TAG: HeaderName = HeaderName::from_static("x-robots-tag");

/// The domain a request is on: the one its `Host` names, else the default one (if its row was recorded).
fn serving<'t>(table: &'t DomainTable, req: &HttpRequest) -> Option<&'t Domain> {
    // With the default domain alone (most installs), no request's Host needs reading.
    let named = if table.has_others() {
        let host = req.headers().get(header::HOST).map(HeaderValue::as_bytes);
        table.for_request(host)
    } else {
        None
    };
    named.or_else(|| table.default_domain()).map(AsRef::as_ref)
}

/// A 302 to an operator's URL (checked when it was registered), never cached: the operator may change it.
fn elsewhere(url: &str) -> HttpResponse {
    match HeaderValue::from_str(url) {
        Ok(location) => HttpResponse::build(StatusCode::FOUND)
            .insert_header((header::LOCATION, location))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(_) => HttpResponse::build(StatusCode::NOT_FOUND)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
    }
}
