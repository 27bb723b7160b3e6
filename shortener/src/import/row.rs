//! What every format's parser makes of one line: a [`Row`] (or the reason it cannot), and the helpers the
//! parsers share: a CSV header's columns by name, dates in the spellings peers write them, visit counts, tags
//! folded into ours, the code at the end of a short URL.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::errors::{ApiError, ErrorCode};

/// One link as an export file gives it, before the checks every link passes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Row {
    /// Its code on the other shortener, kept as an alias; `None`: a generated code (or a live link of the
    /// caller's for the same URL).
    pub code: Option<String>,
    /// The target, as written.
    pub long_url: String,
    /// Tags, not yet checked.
    pub tags: Vec<String>,
    /// When the other shortener created it.
    pub created_at: Option<DateTime<Utc>>,
    /// When it expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Visits counted by the other shortener.
    pub hits: i64,
}

/// A line of the file (1-based, where its record starts, as an editor shows it) and what it gave.
pub type Parsed = (u64, Result<Row, ApiError>);

/// A line that cannot be read as a link: 422 `invalid_line` in the report.
pub fn bad_line(message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        code: ErrorCode::InvalidLine,
        message: message.into(),
    }
}

/// A file that is not its format: the whole import is refused (422 `invalid_file`).
pub fn bad_file(message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        code: ErrorCode::InvalidFile,
        message: message.into(),
    }
}

/// A CSV header row: column indexes by name (trimmed, lowercase), so formats find columns whatever their order.
#[derive(Debug, Default)]
pub struct Header {
    columns: HashMap<String, usize>,
}

impl Header {
    /// The header of `fields`.
    pub fn new(fields: &[String]) -> Self {
        let columns = fields
            .iter()
            .enumerate()
            .map(|(index, name)| (name.trim().to_ascii_lowercase(), index))
            .collect();
        Self { columns }
    }

    /// Refuses a header naming none of `names` (a `format` whose file this is not).
    ///
    /// # Errors
    /// 422 `invalid_file`.
    pub fn require(&self, format: &str, names: &[&str]) -> Result<(), ApiError> {
        if names.iter().any(|name| self.columns.contains_key(*name)) {
            return Ok(());
        }
        Err(bad_file(format!(
            "line 1 is not the header of a {format} export: it names no {} column",
            names.join(" or ")
        )))
    }

    /// The value of the first of `names` that the header has and `record` fills (trimmed), if any.
    pub fn get<'r>(&self, record: &'r [String], names: &[&str]) -> Option<&'r str> {
        names
            .iter()
            .filter_map(|name| self.columns.get(*name))
            .filter_map(|&index| record.get(index))
            .map(|value| value.trim())
            .find(|value| !value.is_empty())
    }
}

/// An instant as peers write them: RFC 3339, ISO 8601 with a `+0000` offset (Bitly), a date and time without
/// an offset (UTC; YOURLS' MySQL `timestamp`), or a date alone (midnight UTC).
///
/// # Errors
/// `invalid_line` naming `what`.
pub fn instant(raw: &str, what: &str) -> Result<DateTime<Utc>, ApiError> {
    let raw = raw.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(at) = DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Ok(at.with_timezone(&Utc));
    }
    for layout in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(at) = NaiveDateTime::parse_from_str(raw, layout) {
            return Ok(at.and_utc());
        }
    }
    if let Some(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
    {
        return Ok(day.and_utc());
    }
    Err(bad_line(format!(
        "{what} {:?} is not a date such as 2024-01-31T12:00:00Z",
        shorten(raw)
    )))
}

/// A visit count: a whole number from 0 (thousands separators allowed: exports meant for people have them).
///
/// # Errors
/// `invalid_line` naming `what`.
pub fn count(raw: &str, what: &str) -> Result<i64, ApiError> {
    let digits: String = raw.trim().chars().filter(|c| *c != ',').collect();
    digits
        .parse::<i64>()
        .ok()
        .filter(|count| (0..=links::validate::MAX_HITS_LIMIT).contains(count))
        .ok_or_else(|| {
            bad_line(format!(
                "{what} {:?} is not a whole number of visits",
                shorten(raw)
            ))
        })
}

/// A peer's tags as ours (`[a-z0-9-]{1,32}`): lowercased, every run of other characters a `-`, cut to 32; empty
/// ones dropped. A peer's tag `Summer Sale` is our `summer-sale`.
pub fn fold_tags<'t>(tags: impl IntoIterator<Item = &'t str>) -> Vec<String> {
    tags.into_iter().filter_map(fold_tag).collect()
}

fn fold_tag(tag: &str) -> Option<String> {
    let mut folded = String::new();
    for c in tag.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            folded.push(c);
        } else if !folded.ends_with('-') {
            folded.push('-');
        }
    }
    let folded = folded.trim_matches('-');
    let end = folded.len().min(*links::validate::TAG_LEN.end());
    let folded = folded[..end].trim_end_matches('-');
    (!folded.is_empty()).then(|| folded.to_owned())
}

/// The code a short URL ends with (`https://bit.ly/abc` or `bit.ly/abc`: `abc`), if it has one.
pub fn code_of_short_url(short_url: &str) -> Option<String> {
    let path = short_url
        .trim()
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let path = path.split_once("://").map_or(path, |(_, rest)| rest);
    let (_, code) = path.trim_end_matches('/').split_once('/')?;
    let code = code.rsplit('/').next().unwrap_or(code);
    (!code.is_empty()).then(|| code.to_owned())
}

/// At most 64 characters of `raw`, for a message.
pub fn shorten(raw: &str) -> String {
    raw.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_dates_are_read_in_their_spellings() {
        let expected = "2020-10-26T17:20:40Z";
        for raw in [
            "2020-10-26T17:20:40Z",
            "2020-10-26T18:20:40+01:00",
            "2020-10-26T17:20:40+0000",
            "2020-10-26 17:20:40",
            "2020-10-26T17:20:40.000Z",
        ] {
            let at = instant(raw, "created").expect(raw);
            assert_eq!(
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                expected
            );
        }
        assert!(instant("yesterday", "created").is_err());
    }

    #[test]
    fn peers_tags_are_folded_into_ours() {
        assert_eq!(
            fold_tags(["Summer Sale", " q4 ", "--", "Ünïcode!", &"x".repeat(40)]),
            vec!["summer-sale", "q4", "n-code", &"x".repeat(32)]
        );
    }

    #[test]
    fn the_code_is_the_last_segment_of_a_short_url() {
        assert_eq!(
            code_of_short_url("https://bit.ly/3xYz"),
            Some("3xYz".into())
        );
        assert_eq!(code_of_short_url("bit.ly/abc/"), Some("abc".into()));
        assert_eq!(code_of_short_url("https://bit.ly/"), None);
        assert_eq!(code_of_short_url("abc"), None);
    }

    #[test]
    fn counts_are_whole_and_not_negative() {
        assert_eq!(count("1,234", "visits").ok(), Some(1234));
        assert!(count("-1", "visits").is_err());
        assert!(count("1.5", "visits").is_err());
    }
}
