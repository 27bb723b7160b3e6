//! The API's `rules` and `variants`, checked and read into [`Rule`]s and [`Variant`]s. Every refusal is an
//! [`Invalid`] whose message names the index and the field (`rules[3].when.device: must be one of …`), so a client
//! can point at the row to fix.

use std::ops::RangeInclusive;

use serde_json::{Map, Value};

use super::{Rule, Variant};

mod when;

/// Most rules on one link: each visit may try them all.
pub const MAX_RULES: usize = 20;

/// How many variants a link may have (or none).
pub const VARIANT_COUNT: RangeInclusive<usize> = 2..=10;

/// A variant's weight bounds.
pub const WEIGHT: RangeInclusive<u64> = 1..=1000;

/// Most `name=value` pairs in one `query` condition.
pub const MAX_QUERY_PAIRS: usize = 5;

/// Longest name or value of a `query` pair, in bytes.
pub const MAX_QUERY_BYTES: usize = 100;

/// The error code of a refused `rules`.
pub const INVALID_RULES: &str = "invalid_rules";

/// The error code of a refused `variants`.
pub const INVALID_VARIANTS: &str = "invalid_variants";

/// A refused `rules` or `variants`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// [`INVALID_RULES`] or [`INVALID_VARIANTS`].
    pub code: &'static str,
    /// The rule or variant at fault; `None` when the list as a whole is.
    pub index: Option<usize>,
    /// Where the fault is: `rules`, `rules[3].when.device`, `variants[1].weight`.
    pub field: String,
    /// The field and what is wrong with it: `rules[3].when.device: must be one of desktop, mobile, tablet`.
    pub message: String,
}

impl Invalid {
    fn new(code: &'static str, index: Option<usize>, field: String, reason: &str) -> Self {
        let message = format!("{field}: {reason}");
        Self {
            code,
            index,
            field,
            message,
        }
    }
}

/// What is wrong inside one rule or variant: the field below it (`.when.device`, empty for the item itself) and
/// why; the caller adds the list and the index.
struct Refusal {
    field: String,
    reason: String,
}

fn refuse<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        field: field.into(),
        reason: reason.into(),
    })
}

/// Reads the API's `rules` (`null` is none). `check_url` is the shortener's check of a long URL: the normalised
/// URL, or why it is refused.
///
/// # Errors
/// [`Invalid`] with [`INVALID_RULES`] for the first fault found.
pub fn parse_rules(
    value: &Value,
    check_url: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<Rule>, Invalid> {
    let items = parse_list(value, "rules", INVALID_RULES, 0..=MAX_RULES)?;
    let rules = items.iter().enumerate().map(|(index, item)| {
        parse_rule(item, check_url)
            .map_err(|refusal| locate(INVALID_RULES, "rules", index, refusal))
    });
    let mut rules: Vec<Rule> = rules.collect::<Result<_, _>>()?;
    rules.shrink_to_fit();
    Ok(rules)
}

/// Reads the API's `variants` (`null` is none), with `check_url` as for [`parse_rules`].
///
/// # Errors
/// [`Invalid`] with [`INVALID_VARIANTS`] for the first fault found.
pub fn parse_variants(
    value: &Value,
    check_url: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Vec<Variant>, Invalid> {
    let items = parse_list(value, "variants", INVALID_VARIANTS, VARIANT_COUNT)?;
    let variants = items.iter().enumerate().map(|(index, item)| {
        parse_variant(item, check_url)
            .map_err(|refusal| locate(INVALID_VARIANTS, "variants", index, refusal))
    });
    let mut variants: Vec<Variant> = variants.collect::<Result<_, _>>()?;
    variants.shrink_to_fit();
    Ok(variants)
}

/// The items of a list, `null` as none, with a length in `count`.
fn parse_list<'a>(
    value: &'a Value,
    name: &str,
    code: &'static str,
    count: RangeInclusive<usize>,
) -> Result<&'a [Value], Invalid> {
    let items = match value {
        Value::Null => return Ok(&[]),
        Value::Array(items) => items,
        _ => {
            return Err(Invalid::new(
                code,
                None,
                name.to_owned(),
                "must be an array",
            ))
        }
    };
    if !count.contains(&items.len()) {
        let reason = format!("must have {} to {} items", count.start(), count.end());
        return Err(Invalid::new(code, None, name.to_owned(), &reason));
    }
    Ok(items)
}

fn locate(code: &'static str, list: &str, index: usize, refusal: Refusal) -> Invalid {
    Invalid::new(
        code,
        Some(index),
        format!("{list}[{index}]{}", refusal.field),
        &refusal.reason,
    )
}

fn parse_rule(
    item: &Value,
    check_url: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Rule, Refusal> {
    let fields = object_with(
        item,
        &["when", "long_url"],
        "an object with when and long_url",
    )?;
    let when = when::parse_when(fields.get("when").ok_or_else(|| missing(".when"))?)?;
    let long_url = parse_url(fields.get("long_url"), check_url)?;
    Ok(Rule { when, long_url })
}

fn parse_variant(
    item: &Value,
    check_url: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Variant, Refusal> {
    let fields = object_with(
        item,
        &["long_url", "weight"],
        "an object with long_url and weight",
    )?;
    let long_url = parse_url(fields.get("long_url"), check_url)?;
    let weight = fields.get("weight").ok_or_else(|| missing(".weight"))?;
    let weight = match weight.as_u64() {
        Some(weight) if WEIGHT.contains(&weight) => u16::try_from(weight).unwrap_or(u16::MAX),
        _ => {
            return refuse(
                ".weight",
                format!(
                    "must be an integer from {} to {}",
                    WEIGHT.start(),
                    WEIGHT.end()
                ),
            )
        }
    };
    Ok(Variant { long_url, weight })
}

/// An object's fields, refused when it is no object or has a key not in `known`.
fn object_with<'a>(
    value: &'a Value,
    known: &[&str],
    what: &str,
) -> Result<&'a Map<String, Value>, Refusal> {
    let Value::Object(fields) = value else {
        return refuse("", format!("must be {what}"));
    };
    if let Some(unknown) = fields.keys().find(|key| !known.contains(&key.as_str())) {
        return refuse(
            format!(".{}", bounded(unknown)),
            format!("is not a field (expected {})", known.join(", ")),
        );
    }
    Ok(fields)
}

fn missing(field: &str) -> Refusal {
    Refusal {
        field: field.to_owned(),
        reason: "is required".to_owned(),
    }
}

fn parse_url(
    value: Option<&Value>,
    check_url: &dyn Fn(&str) -> Result<String, String>,
) -> Result<String, Refusal> {
    match value {
        None => Err(missing(".long_url")),
        Some(Value::String(url)) => check_url(url).or_else(|reason| refuse(".long_url", reason)),
        Some(_) => refuse(".long_url", "must be a string"),
    }
}

/// A client's key, cut short enough to echo in a message.
fn bounded(key: &str) -> &str {
    let mut end = key.len().min(40);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}
