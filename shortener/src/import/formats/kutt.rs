//! `format=kutt`: Kutt has no export file (bulk import and export are its open issues #37, #382, #588), so what
//! its users save is its API's list of links: `GET /api/v2/links?limit=…&skip=…` with `X-API-Key`, one page per
//! call, `{"total", "limit", "skip", "data": [link…]}` (thedevs-network/kutt `server/handlers/links.handler.js`,
//! the list's answer; a link as `sanitize.link` in `server/utils/utils.js` and the `Link` schema in
//! `docs/api/api.js` give it: `address` (the code), `target`, `created_at`, `expire_in`, `visit_count`,
//! `description`, `domain`, `password`, `banned`, `link`). Pages saved one after another in one file, or a bare
//! array of links, read too. Kutt has no tags; `description` and `domain` are not kept, and a link Kutt keeps
//! behind a password comes over without it (its export holds only `"password": true`).

use serde::Deserialize;

use crate::errors::ApiError;
use crate::import::row::{bad_line, instant, Row};

/// The key of the links' array in a page.
pub const ARRAY_KEY: &str = "data";

/// A link of Kutt's list, as far as it is kept.
#[derive(Debug, Deserialize)]
struct KuttLink {
    address: Option<String>,
    target: Option<String>,
    created_at: Option<String>,
    expire_in: Option<String>,
    visit_count: Option<i64>,
}

/// An element of the list as a row.
///
/// # Errors
/// `invalid_line` for an element that is not a link object, or a date that does not parse.
pub fn row(element: &[u8]) -> Result<Row, ApiError> {
    let link: KuttLink = serde_json::from_slice(element)
        .map_err(|error| bad_line(format!("not a Kutt link: {error}")))?;
    Ok(Row {
        code: link.address.filter(|code| !code.is_empty()),
        long_url: link.target.unwrap_or_default(),
        tags: Vec::new(),
        created_at: link
            .created_at
            .as_deref()
            .map(|raw| instant(raw, "created_at"))
            .transpose()?,
        expires_at: link
            .expire_in
            .as_deref()
            .map(|raw| instant(raw, "expire_in"))
            .transpose()?,
        hits: link.visit_count.unwrap_or(0),
    })
}
