//! `format=yourls`: YOURLS has no export of its own (neither its admin nor its API writes a file), so what its
//! users move is the `yourls_url` table itself, saved as CSV with its column names (phpMyAdmin's or Adminer's
//! "Export → CSV", `mysql --batch` output converted, or an export plugin writing the same columns): `keyword`,
//! `url`, `title`, `timestamp`, `ip`, `clicks`. The columns are those YOURLS creates, read from YOURLS/YOURLS
//! `includes/functions-install.php` (`keyword` varchar(100) primary key, `url` text, `timestamp` a MySQL
//! `timestamp`, written `2024-01-31 12:00:00` and taken as UTC, `clicks` the visit total). YOURLS has no tags or
//! expiry; `title` and `ip` (the creator's address) are not kept.

use crate::errors::ApiError;
use crate::import::row::{count, instant, Header, Row};

/// Refuses a header without `url`.
///
/// # Errors
/// 422 `invalid_file`.
pub fn check(header: &Header) -> Result<(), ApiError> {
    header.require("yourls", &["url"])
}

/// A record as a row.
///
/// # Errors
/// `invalid_line` for a date or count that does not parse.
pub fn row(header: &Header, record: &[String]) -> Result<Row, ApiError> {
    Ok(Row {
        code: header.get(record, &["keyword"]).map(str::to_owned),
        long_url: header.get(record, &["url"]).unwrap_or_default().to_owned(),
        tags: Vec::new(),
        created_at: header
            .get(record, &["timestamp"])
            .map(|raw| instant(raw, "timestamp"))
            .transpose()?,
        expires_at: None,
        hits: header
            .get(record, &["clicks"])
            .map(|raw| count(raw, "clicks"))
            .transpose()?
            .unwrap_or(0),
    })
}
