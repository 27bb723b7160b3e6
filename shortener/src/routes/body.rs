//! A link as the API shows it, in every answer that carries one.

use chrono::{DateTime, SecondsFormat, Utc};
use links::model::Link;
use serde::Serialize;

use crate::state::AppState;

/// The Contract's link object; `hits` only where the call reports them.
#[derive(Debug, Serialize)]
pub struct LinkBody {
    code: String,
    pub(crate) short_url: String,
    long_url: String,
    created_at: String,
    expires_at: Option<String>,
    redirect: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    hits: Option<i64>,
}

impl LinkBody {
    /// The body of `link`.
    pub fn new(link: &Link, state: &AppState) -> Self {
        Self {
            short_url: state.short_url(&link.code),
            code: link.code.clone(),
            long_url: link.long_url.clone(),
            created_at: rfc3339(link.created_at),
            expires_at: link.expires_at.map(rfc3339),
            redirect: link.redirect.code(),
            hits: None,
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

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}
