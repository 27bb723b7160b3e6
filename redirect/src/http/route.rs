//! Links with rules or variants: where this visitor goes, decided in process from the cached entry (no read
//! per visit), with an answer no shared cache may keep, and the `sl_vid` cookie that keeps a visitor on one
//! variant of every link.
//!
//! The visitor key behind variants comes from the `sl_vid` cookie. A visitor without one gets one derived from
//! their IP address and User-Agent, so a client that never keeps cookies still sees one variant every time, and
//! one that does keeps it after its address changes.

use std::{fmt::Write as _, net::IpAddr};

use actix_web::{
    http::header::{self, HeaderValue},
    HttpRequest, HttpResponse,
};
use chrono::{DateTime, Utc};
use links::routing::{self, Choice, DeviceClass, Os, Routing, Visitor};

use super::state::RedirectState;
use crate::hits::visit::{Device, Visit, UNKNOWN_COUNTRY};

/// The cookie that keeps a visitor on one variant.
pub const VISITOR_COOKIE: &str = "sl_vid";

/// Its lifetime: a year.
const COOKIE_MAX_AGE_SECS: u32 = 31_536_000;

/// The longest `sl_vid` value believed (ours are 16 hex digits); a longer or odd one is replaced.
const MAX_VISITOR_ID_LEN: usize = 64;

/// Cookie bytes searched for `sl_vid`, at most: a hostile `Cookie` header costs no more than this.
const MAX_COOKIE_SCAN: usize = 4096;

/// Sends the visitor of `response` (a redirect of the link `id` to its `long_url`) where `routing` says, marks
/// the answer as not for shared caches, and sets the visitor cookie when variants needed one. Returns the visit
/// to count, with the variant the visitor got.
pub fn apply<'r>(
    response: &mut HttpResponse,
    req: &'r HttpRequest,
    state: &RedirectState,
    routing: &Routing,
    id: i64,
    now: DateTime<Utc>,
) -> Visit<'r> {
    let mut visit = state.visit(req);
    let needs = routing.needs();
    let headers = req.headers();
    let agent = headers
        .get(header::USER_AGENT)
        .map_or(&[][..], HeaderValue::as_bytes);
    let (key, new_cookie) = if needs.key {
        visitor_key(req, state, agent)
    } else {
        (0, None)
    };
    let visitor = Visitor {
        device: device_class(visit.device),
        os: if needs.os { Os::of(agent) } else { Os::Other },
        language: headers
            .get(header::ACCEPT_LANGUAGE)
            .filter(|_| needs.language)
            .and_then(|value| routing::primary_language(value.as_bytes())),
        country: visit.country.filter(|country| *country != UNKNOWN_COUNTRY),
        now,
        query: req.query_string(),
        key,
    };
    let choice = routing.choose(id, &visitor);
    let response_headers = response.headers_mut();
    if choice != Choice::Default {
        if let Ok(location) = HeaderValue::from_str(routing.target(choice, "")) {
            response_headers.insert(header::LOCATION, location);
        }
    }
    // The target depends on who asks: a CDN or proxy must not hand one visitor's answer to the next.
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Some(cookie) = new_cookie {
        response_headers.append(header::SET_COOKIE, cookie);
    }
    if let Choice::Variant(index) = choice {
        visit.variant = u8::try_from(index).ok();
    }
    visit
}

fn device_class(device: Device) -> DeviceClass {
    match device {
        Device::Desktop => DeviceClass::Desktop,
        Device::Mobile => DeviceClass::Mobile,
        Device::Tablet => DeviceClass::Tablet,
        Device::Bot => DeviceClass::Bot,
    }
}

/// The visitor's key, and the cookie to set when the request brought none.
fn visitor_key(
    req: &HttpRequest,
    state: &RedirectState,
    agent: &[u8],
) -> (u64, Option<HeaderValue>) {
    if let Some(id) = cookie_value(req) {
        return (routing::visitor_key(id.as_bytes()), None);
    }
    let id = derived_id(state.trusted_proxies.address(req), agent);
    let cookie = format!(
        "{VISITOR_COOKIE}={id}; Max-Age={COOKIE_MAX_AGE_SECS}; Path=/; HttpOnly; SameSite=Lax"
    );
    (
        routing::visitor_key(id.as_bytes()),
        HeaderValue::from_str(&cookie).ok(),
    )
}

/// The `sl_vid` value the request sends, if it is one we could have set.
fn cookie_value(req: &HttpRequest) -> Option<&str> {
    let mut scanned = 0;
    for value in req.headers().get_all(header::COOKIE) {
        let text = value.to_str().ok()?;
        scanned += text.len();
        if scanned > MAX_COOKIE_SCAN {
            return None;
        }
        let found = text.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == VISITOR_COOKIE).then_some(value)
        });
        if let Some(id) = found {
            let believable = !id.is_empty()
                && id.len() <= MAX_VISITOR_ID_LEN
                && id.bytes().all(|byte| byte.is_ascii_alphanumeric());
            return believable.then_some(id);
        }
    }
    None
}

/// A visitor id from the client's address and User-Agent: 16 hex digits.
fn derived_id(address: IpAddr, agent: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(16 + agent.len().min(512));
    match address {
        IpAddr::V4(v4) => bytes.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => bytes.extend_from_slice(&v6.octets()),
    }
    bytes.extend_from_slice(&agent[..agent.len().min(512)]);
    let mut id = String::with_capacity(16);
    let _ = write!(id, "{:016x}", routing::visitor_key(&bytes));
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn only_a_believable_cookie_is_the_visitor() {
        let with = |cookie: &str| {
            let req = TestRequest::default()
                .insert_header((header::COOKIE, cookie))
                .to_http_request();
            cookie_value(&req).map(str::to_owned)
        };
        assert_eq!(
            with("a=b; sl_vid=0123abcd; c=d").as_deref(),
            Some("0123abcd")
        );
        assert_eq!(with("sl_vid=").as_deref(), None);
        assert_eq!(with("sl_vid=a;b").as_deref(), Some("a"));
        assert_eq!(with("sl_vid=<script>").as_deref(), None);
        assert_eq!(with(&format!("sl_vid={}", "a".repeat(65))).as_deref(), None);
        assert_eq!(with("other=1").as_deref(), None);
    }

    #[test]
    fn a_visitor_without_a_cookie_gets_the_same_id_every_time() {
        let agent = b"Mozilla/5.0 (iPhone)";
        let address: IpAddr = "203.0.113.7".parse().expect("an address");
        let id = derived_id(address, agent);
        assert_eq!(id.len(), 16);
        assert_eq!(id, derived_id(address, agent));
        assert_ne!(
            id,
            derived_id("203.0.113.8".parse().expect("an address"), agent)
        );
    }
}
