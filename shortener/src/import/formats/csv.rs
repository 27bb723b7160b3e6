//! `format=csv`, the Contract's own file: a header row naming `long_url` and any of `code`, `tags`
//! (space-separated), `created_at`, `expires_at` (RFC 3339) and `hits`, in any order; other columns are ignored,
//! so the file `GET /v1/urls/export.csv` gives (which adds `short_url`, `redirect`, `domain`) imports as it is.
//! Its tags are taken as they are (ours already), not folded like a peer's.

use crate::errors::ApiError;
use crate::import::row::{count, instant, Header, Row};

/// Refuses a header without `long_url`.
///
/// # Errors
/// 422 `invalid_file`.
pub fn check(header: &Header) -> Result<(), ApiError> {
    header.require("csv", &["long_url"])
}

/// A record as a row.
///
/// # Errors
/// `invalid_line` for a missing URL, or a date or count that does not parse.
pub fn row(header: &Header, record: &[String]) -> Result<Row, ApiError> {
    Ok(Row {
        code: header.get(record, &["code"]).map(str::to_owned),
        long_url: header
            .get(record, &["long_url"])
            .unwrap_or_default()
            .to_owned(),
        tags: header
            .get(record, &["tags"])
            .map(|tags| tags.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        created_at: header
            .get(record, &["created_at"])
            .map(|raw| instant(raw, "created_at"))
            .transpose()?,
        expires_at: header
            .get(record, &["expires_at"])
            .map(|raw| instant(raw, "expires_at"))
            .transpose()?,
        hits: header
            .get(record, &["hits"])
            .map(|raw| count(raw, "hits"))
            .transpose()?
            .unwrap_or(0),
    })
}
