//! `/v1/urls`: creating short links.

use actix_web::{http::header, web, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use links::{
    code,
    model::{Link, RedirectStatus, Target},
    store::{InsertError, NewLink},
    validate,
};
use serde::{Deserialize, Serialize};

use crate::{auth::Caller, errors::ApiError, state::AppState};

/// Tries at a fresh ID when a generated code collides with an alias (rare: only aliases that look like IDs).
const GENERATED_CODE_ATTEMPTS: usize = 3;

/// The body of `POST /v1/urls`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// The URL to shorten.
    pub long_url: String,
    /// A custom code.
    pub alias: Option<String>,
    /// RFC 3339 instant after which the link answers 410.
    pub expires_at: Option<String>,
    /// 301, 302 (default), 307 or 308.
    pub redirect: Option<u16>,
    /// Return the caller's existing live link for the same URL instead of creating one.
    #[serde(default)]
    pub reuse: bool,
}

/// A link as the API shows it.
#[derive(Debug, Serialize)]
pub struct LinkBody {
    code: String,
    short_url: String,
    long_url: String,
    created_at: String,
    expires_at: Option<String>,
    redirect: u16,
}

impl LinkBody {
    fn new(link: &Link, state: &AppState) -> Self {
        Self {
            short_url: state.short_url(&link.code),
            code: link.code.clone(),
            long_url: link.long_url.clone(),
            created_at: rfc3339(link.created_at),
            expires_at: link.expires_at.map(rfc3339),
            redirect: link.redirect.code(),
        }
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A create request that passed validation.
struct Checked {
    long_url: String,
    alias: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    redirect: RedirectStatus,
}

fn check(
    request: CreateRequest,
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<Checked, ApiError> {
    let long_url = validate::normalize_long_url(&request.long_url, &state.own_hosts)?.to_string();
    if let Some(alias) = &request.alias {
        validate::check_alias(alias)?;
    }
    let expires_at = request
        .expires_at
        .as_deref()
        .map(parse_expiry)
        .transpose()?;
    if expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::InvalidField {
            code: "expires_in_past",
            message: "expires_at must be in the future".into(),
        });
    }
    let redirect = match request.redirect {
        None => RedirectStatus::default(),
        Some(status) => {
            RedirectStatus::from_code(status).ok_or_else(|| ApiError::InvalidField {
                code: "invalid_redirect",
                message: format!("redirect must be 301, 302, 307 or 308, not {status}"),
            })?
        }
    };
    Ok(Checked {
        long_url,
        alias: request.alias,
        expires_at,
        redirect,
    })
}

fn parse_expiry(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| ApiError::InvalidField {
            code: "invalid_expires_at",
            message: format!(
                "expires_at must be an RFC 3339 date-time such as 2030-01-01T00:00:00Z ({error})"
            ),
        })
}

/// `POST /v1/urls`: 201 with the new link once it is committed; 200 with an existing one for `reuse`.
#[tracing::instrument(skip_all, fields(owner_id = caller.owner_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let reuse = body.reuse;
    let checked = check(body.into_inner(), &state, Utc::now())?;
    if reuse && checked.alias.is_none() {
        if let Some(link) = state
            .store
            .find_reusable(caller.owner_id, &checked.long_url)
            .await?
        {
            return Ok(HttpResponse::Ok().json(LinkBody::new(&link, &state)));
        }
    }
    let link = insert(&state, caller, &checked).await?;
    write_through(&state, &link).await;
    let body = LinkBody::new(&link, &state);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, body.short_url.clone()))
        .json(body))
}

async fn insert(state: &AppState, caller: Caller, checked: &Checked) -> Result<Link, ApiError> {
    for _ in 0..GENERATED_CODE_ATTEMPTS {
        let id = state.ids.next_id().map_err(|error| {
            tracing::warn!(%error, "no ID");
            ApiError::Unavailable("the ID generator")
        })?;
        let id = i64::try_from(id)
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("ID {id} exceeds 63 bits")))?;
        let generated = code::encode(id.unsigned_abs());
        let code = checked.alias.as_deref().unwrap_or(&generated);
        let new_link = NewLink {
            id,
            code,
            long_url: &checked.long_url,
            expires_at: checked.expires_at,
            redirect: checked.redirect,
            owner_id: Some(caller.owner_id),
        };
        match state.store.insert_link(&new_link).await {
            Ok(link) => return Ok(link),
            Err(InsertError::CodeTaken) if checked.alias.is_some() => {
                return Err(ApiError::AliasTaken(code.to_owned()))
            }
            Err(InsertError::CodeTaken) => {
                tracing::info!(code, "generated code equals an alias; taking a new ID")
            }
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "{GENERATED_CODE_ATTEMPTS} generated codes in a row were taken"
    )))
}

/// Best effort: the link is already durable. Overwrites any negative entry, so a code that was unknown a
/// moment ago redirects at once.
async fn write_through(state: &AppState, link: &Link) {
    let target = Target::Live {
        long_url: link.long_url.clone(),
        redirect: link.redirect,
        expires_at: link.expires_at,
        id: link.id,
    };
    let ttl = links::cache::ttl_for(&target, state.cache_ttl(), Utc::now());
    if let Err(error) = state.cache.put(&link.code, &target, ttl).await {
        state
            .degraded
            .with_label_values(&["redis", "write_through"])
            .inc();
        tracing::warn!(%error, code = %link.code, "write-through to Redis skipped");
    }
}
