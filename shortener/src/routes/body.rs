//! What the API answers with: a link as every call shows it, the error object (typed here so the
//! OpenAPI document is generated from the same types that are serialised), and the error answers every call
//! shares (401, 429, 503), described once for the document.

use chrono::{DateTime, SecondsFormat, Utc};
use links::model::Link;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use crate::{errors::ApiError, state::AppState};

/// A short link.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkBody {
    /// The short code: 7 base62 characters for a generated code (10–11 for links made with `--code-style
    /// snowflake`), or the alias.
    #[schema(example = "q7Xb2Kd", pattern = "^[A-Za-z0-9_-]{1,64}$")]
    code: String,
    /// The host of the domain the link lives on (`GET /v1/domains`).
    #[schema(example = "127.0.0.1")]
    domain: String,
    /// The short URL to share.
    #[schema(example = "http://127.0.0.1:8081/q7Xb2Kd")]
    pub(crate) short_url: String,
    /// The normalised target.
    #[schema(example = "https://example.com/")]
    long_url: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339; null when the link never expires.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// 301, 302, 307 or 308.
    #[schema(example = 302)]
    redirect: u16,
    /// Sorted, unique; empty when none.
    #[schema(example = json!(["campaign", "q4"]))]
    tags: Vec<String>,
    /// Counted visits after which the link answers 410; null for no limit.
    max_hits: Option<i64>,
    /// Whether visitors must give a password (the password itself is never shown).
    password_protected: bool,
    /// Its rules, when it has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::routes::schemas::rules_schema)]
    rules: Option<serde_json::Value>,
    /// Its variants, when it has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::routes::schemas::variants_schema)]
    variants: Option<serde_json::Value>,
    /// Total redirects counted (reads and lists only).
    #[serde(skip_serializing_if = "Option::is_none")]
    hits: Option<i64>,
    /// PATCH only, for a 301 or 308 link: browsers cache permanent redirects, so visitors who followed it
    /// before may keep going to the old target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warning: Option<String>,
}

/// The error object of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error: a machine-readable code and a message for a person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// snake_case reason, e.g. `invalid_url`, `alias_taken`, `rate_limited`.
    #[schema(example = "invalid_url")]
    pub code: String,
    /// For a person.
    pub message: String,
}

impl From<&ApiError> for ErrorDetail {
    fn from(error: &ApiError) -> Self {
        Self {
            code: error.code().as_str().to_owned(),
            message: error.to_string(),
        }
    }
}

/// A response of the document's `components/responses`: `description` with the error body.
fn error_answer(name: &'static str, description: &str) -> (&'static str, RefOr<Response>) {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    let response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content)
        .build();
    (name, RefOr::T(response))
}

/// 401 of every call that needs a key.
pub struct Unauthorized;

impl<'r> utoipa::ToResponse<'r> for Unauthorized {
    fn response() -> (&'r str, RefOr<Response>) {
        error_answer("Unauthorized", "No or bad API key")
    }
}

/// 429 of every call.
pub struct RateLimited;

impl<'r> utoipa::ToResponse<'r> for RateLimited {
    fn response() -> (&'r str, RefOr<Response>) {
        error_answer("RateLimited", "rate_limited; see Retry-After")
    }
}

/// 503 of every call.
pub struct Unavailable;

impl<'r> utoipa::ToResponse<'r> for Unavailable {
    fn response() -> (&'r str, RefOr<Response>) {
        error_answer("Unavailable", "unavailable; see Retry-After")
    }
}

impl LinkBody {
    /// The body of `link`.
    pub fn new(link: &Link, state: &AppState) -> Self {
        let routing = link
            .routing
            .as_deref()
            .and_then(links::routing::Routing::from_stored)
            .unwrap_or_default();
        Self {
            rules: (!routing.rules.is_empty()).then(|| routing.rules_json()),
            variants: (!routing.variants.is_empty()).then(|| routing.variants_json()),
            short_url: state.short_url(&link.code),
            code: link.short_code().to_owned(),
            domain: link
                .domain_host()
                .or_else(|| state.public_base_url.host_str())
                .unwrap_or_default()
                .to_owned(),
            long_url: link.long_url.clone(),
            created_at: rfc3339(link.created_at),
            expires_at: link.expires_at.map(rfc3339),
            redirect: link.redirect.code(),
            tags: link.tags.clone(),
            max_hits: link.max_hits,
            password_protected: link.password_hash.is_some(),
            hits: None,
            warning: None,
        }
    }

    /// The body of `link` with its total hits.
    pub fn with_hits(link: &Link, hits: i64, state: &AppState) -> Self {
        Self {
            hits: Some(hits),
            ..Self::new(link, state)
        }
    }
}

/// An instant as the API shows it: RFC 3339, milliseconds, `Z`.
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A count sent as a JSON number: JSON Schema's `integer` admits `5.0` as well as `5`, so both are read. `None`
/// when the number is not whole or does not fit, which the field's check refuses with its own 422.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WholeNumber(pub Option<i64>);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        Ok(Self(number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|value| value.fract() == 0.0)
                .and_then(|value| format!("{value:.0}").parse().ok())
        })))
    }
}
