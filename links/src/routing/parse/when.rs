//! A rule's `when`: the conditions it may have, each read into its type and checked.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{object_with, refuse, Refusal, MAX_QUERY_BYTES, MAX_QUERY_PAIRS};
use crate::routing::{country_code, DeviceClass, Lang, Os, When};

/// The conditions a `when` may have.
const CONDITIONS: &[&str] = &[
    "device", "os", "language", "country", "after", "before", "query",
];

pub(super) fn parse_when(value: &Value) -> Result<When, Refusal> {
    let fields =
        object_with(value, CONDITIONS, "an object of conditions").map_err(|refusal| Refusal {
            field: format!(".when{}", refusal.field),
            reason: refusal.reason,
        })?;
    if fields.is_empty() {
        return refuse(".when", "must have at least one condition");
    }
    let mut when = When::default();
    for (name, value) in fields {
        let field = format!(".when.{name}");
        match name.as_str() {
            "device" => {
                when.device = Some(named(
                    value,
                    DeviceClass::from_name,
                    &field,
                    "desktop, mobile, tablet",
                )?)
            }
            "os" => {
                when.os = Some(named(
                    value,
                    Os::from_name,
                    &field,
                    "ios, android, windows, macos, linux",
                )?)
            }
            "language" => when.language = Some(parse_language(value, &field)?),
            "country" => when.country = Some(parse_country(value, &field)?),
            "after" => when.after = Some(parse_time(value, &field)?),
            "before" => when.before = Some(parse_time(value, &field)?),
            "query" => when.query = parse_query(value, &field)?,
            _ => return refuse(field, "is not a condition"),
        }
    }
    if let (Some(after), Some(before)) = (when.after, when.before) {
        if after >= before {
            return refuse(".when.before", "must be later than after");
        }
    }
    Ok(when)
}

/// A string that `from_name` knows, or a refusal listing the names it knows.
fn named<T>(
    value: &Value,
    from_name: fn(&str) -> Option<T>,
    field: &str,
    names: &str,
) -> Result<T, Refusal> {
    value
        .as_str()
        .and_then(from_name)
        .map_or_else(|| refuse(field, format!("must be one of {names}")), Ok)
}

fn parse_language(value: &Value, field: &str) -> Result<Lang, Refusal> {
    let language = value
        .as_str()
        .and_then(|language| Lang::new(language.as_bytes()));
    language.map_or_else(
        || {
            refuse(
                field,
                "must be a primary language subtag of 2 or 3 letters (de, fil)",
            )
        },
        Ok,
    )
}

fn parse_country(value: &Value, field: &str) -> Result<[u8; 2], Refusal> {
    // Exactly two letters: the header reader's trimming is for what CDNs send, not for the API.
    let country = value
        .as_str()
        .filter(|country| country.len() == 2)
        .and_then(|country| country_code(country.as_bytes()));
    country.map_or_else(
        || refuse(field, "must be a country code of 2 letters (DE)"),
        Ok,
    )
}

fn parse_time(value: &Value, field: &str) -> Result<DateTime<Utc>, Refusal> {
    let time = value
        .as_str()
        .and_then(|time| DateTime::parse_from_rfc3339(time).ok());
    time.map_or_else(
        || refuse(field, "must be an RFC 3339 time (2026-12-24T18:00:00Z)"),
        |time| Ok(time.to_utc()),
    )
}

fn parse_query(value: &Value, field: &str) -> Result<Vec<(String, String)>, Refusal> {
    let Value::Object(pairs) = value else {
        return refuse(field, "must be an object of name: value pairs");
    };
    if pairs.is_empty() || pairs.len() > MAX_QUERY_PAIRS {
        return refuse(field, format!("must have 1 to {MAX_QUERY_PAIRS} pairs"));
    }
    let mut query = Vec::with_capacity(pairs.len());
    for (name, value) in pairs {
        if name.is_empty() || name.len() > MAX_QUERY_BYTES {
            return refuse(
                field,
                format!("each name must be 1 to {MAX_QUERY_BYTES} bytes"),
            );
        }
        match value.as_str() {
            Some(value) if value.len() <= MAX_QUERY_BYTES => {
                query.push((name.clone(), value.to_owned()))
            }
            _ => {
                return refuse(
                    format!("{field}.{name}"),
                    format!("must be a string of at most {MAX_QUERY_BYTES} bytes"),
                )
            }
        }
    }
    Ok(query)
}
