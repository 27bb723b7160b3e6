//! Creating short links: `POST /v1/urls` (one) and `POST /v1/urls/batch` (up to 1000 in one multi-row insert).
//! Both share validation, reuse, collision handling and write-through, so one link behaves the same either way.

use std::collections::HashMap;

use actix_web::{http::header, web, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use links::{
    code,
    model::{Link, RedirectStatus, Resolution},
    validate,
};
use serde::{Deserialize, Serialize};

use crate::{
    auth::Creator,
    errors::ApiError,
    group_insert::PendingLink,
    routes::body::{ErrorBody, ErrorDetail, LinkBody},
    state::AppState,
};

/// Rounds of fresh IDs for generated codes that collided with an alias (rare: only aliases that look like IDs).
const GENERATED_CODE_ATTEMPTS: usize = 3;

/// Most items in one batch.
pub const MAX_BATCH: usize = 1000;

/// Largest batch body: 1000 items of the longest URL and every field, with room for JSON overhead.
pub const MAX_BATCH_BODY: usize = 4 * 1024 * 1024;

/// The body of `POST /v1/urls`, and one item of a batch.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// The URL to shorten: an absolute http or https URL with a host and without a user name or password, at
    /// most 2048 bytes as sent and once normalised, not on the shortener's own hosts nor on the operator's
    /// blocklist. JSON Schema cannot state all of that: a URL that breaks a rule is 422 `invalid_url` or
    /// `blocked_domain`.
    #[schema(example = "https://example.com/a/long/path", max_length = 2048)]
    pub long_url: String,
    /// A custom code: 3 to 64 of `A-Z a-z 0-9 _ -`, and not a reserved word (`v1`, `api`, `healthz`, `static`,
    /// … in any case: 422 `reserved_alias`). 409 `alias_taken` when another link has it.
    #[schema(pattern = "^[A-Za-z0-9_-]{3,64}$", min_length = 3, max_length = 64)]
    pub alias: Option<String>,
    /// RFC 3339 instant after which the link answers 410. It must be in the future, which JSON Schema cannot
    /// express: an instant already past is 422 `expires_in_past`.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// The redirect's status: 301, 302 (default), 307 or 308.
    #[schema(schema_with = crate::routes::openapi::redirect_status)]
    pub redirect: Option<u16>,
    /// Return the caller's existing live link for the same URL instead of creating one.
    #[serde(default)]
    pub reuse: bool,
}

/// A create request that passed validation.
struct Checked {
    long_url: String,
    alias: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    redirect: RedirectStatus,
    reuse: bool,
}

fn check(
    request: CreateRequest,
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<Checked, ApiError> {
    let long_url = validate::normalize_long_url(&request.long_url, &state.own_hosts)?;
    state.blocklist.check(&long_url)?;
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
        long_url: long_url.to_string(),
        alias: request.alias,
        expires_at,
        redirect,
        reuse: request.reuse,
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

/// How one create request ended.
enum CreateOutcome {
    Created(Link),
    Reused(Link),
    Failed(ApiError),
}

/// `POST /v1/urls`: 201 with the new link once it is committed; 200 with an existing one for `reuse`.
#[utoipa::path(
    post,
    path = "/v1/urls",
    tag = "links",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "Created (committed); `Location` is the short URL", body = LinkBody,
            headers(("Location" = String, description = "The short URL"))),
        (status = 200, description = "`reuse`: the caller's existing live link for this URL", body = LinkBody),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or bad API key", body = ErrorBody),
        (status = 409, description = "alias_taken", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "invalid_url, blocked_domain, invalid_alias, reserved_alias, expires_in_past, invalid_expires_at, invalid_redirect", body = ErrorBody),
        (status = 429, description = "rate_limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "unavailable; see Retry-After", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[tracing::instrument(skip_all, fields(owner_id = creator.owner_id))]
pub async fn create(
    state: web::Data<AppState>,
    creator: Creator,
    body: web::Json<CreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let checked = check(body.into_inner(), &state, state.clock.now())?;
    let outcome = create_all(&state, creator, vec![Ok(checked)])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a create produced no outcome")))?;
    match outcome {
        CreateOutcome::Created(link) => {
            let body = LinkBody::new(&link, &state);
            Ok(HttpResponse::Created()
                .insert_header((header::LOCATION, body.short_url.clone()))
                .json(body))
        }
        CreateOutcome::Reused(link) => Ok(HttpResponse::Ok().json(LinkBody::new(&link, &state))),
        CreateOutcome::Failed(error) => Err(error),
    }
}

/// The body of `POST /v1/urls/batch`. Items are parsed one by one, so a malformed item fails alone.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 1000 create bodies (`CreateRequest`). Any JSON value is taken as an item: one that is not a valid
    /// create body fails alone, as its own result (422 `invalid_item`), so the schema of an item is open.
    #[schema(value_type = Vec<serde_json::Value>, min_items = 1, max_items = 1000)]
    pub items: Vec<serde_json::Value>,
}

/// One result per item, in order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchAnswer {
    results: Vec<BatchResult>,
}

/// An item's result: its status with the link (201 created, 200 reused) or the error.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchResult {
    /// The status this item would have had on its own.
    status: u16,
    /// The link, on success.
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<LinkBody>,
    /// The error, on failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
}

/// `POST /v1/urls/batch`: every item validated on its own, all new links inserted by one statement, one result
/// per item in order (`201` + link, `200` + reused link, or the item's error status + error).
#[utoipa::path(
    post,
    path = "/v1/urls/batch",
    tag = "links",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per item, in order", body = BatchAnswer),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or bad API key", body = ErrorBody),
        (status = 413, description = "Body over 4 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "invalid_batch_size: not 1 to 1000 items", body = ErrorBody),
        (status = 429, description = "rate_limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "unavailable; see Retry-After", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[tracing::instrument(skip_all, fields(owner_id = creator.owner_id, items = body.items.len()))]
pub async fn create_batch(
    state: web::Data<AppState>,
    creator: Creator,
    body: web::Json<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let items = body.into_inner().items;
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::InvalidField {
            code: "invalid_batch_size",
            message: format!(
                "items must hold 1 to {MAX_BATCH} links, not {}",
                items.len()
            ),
        });
    }
    let now = state.clock.now();
    let checked = items
        .into_iter()
        .map(|item| {
            let request = serde_json::from_value::<CreateRequest>(item).map_err(|error| {
                ApiError::InvalidField {
                    code: "invalid_item",
                    message: format!("this item is not a valid create request: {error}"),
                }
            })?;
            check(request, &state, now)
        })
        .collect();
    let outcomes = create_all(&state, creator, checked).await?;
    let linked = |status, link| BatchResult {
        status,
        link: Some(LinkBody::new(link, &state)),
        error: None,
    };
    let results = outcomes
        .iter()
        .enumerate()
        .map(|(index, outcome)| match outcome {
            CreateOutcome::Created(link) => linked(201, link),
            CreateOutcome::Reused(link) => linked(200, link),
            CreateOutcome::Failed(error) => {
                // An item's error is answered here, not by `error_response`: this is its one log.
                error.log(Some(index));
                BatchResult {
                    status: error.status_code().as_u16(),
                    link: None,
                    error: Some(ErrorDetail {
                        code: error.code().to_owned(),
                        message: error.to_string(),
                    }),
                }
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(BatchAnswer { results }))
}

/// Creates every valid request: reuse lookups first, then one multi-row insert per round; generated codes that
/// collided with an alias get new IDs for the next round, taken aliases fail with 409. Returns outcomes in the
/// order of `requests`. A database or ID failure fails the whole call (nothing is half-reported).
async fn create_all(
    state: &AppState,
    creator: Creator,
    requests: Vec<Result<Checked, ApiError>>,
) -> Result<Vec<CreateOutcome>, ApiError> {
    let mut outcomes: Vec<Option<CreateOutcome>> = Vec::with_capacity(requests.len());
    let mut pending: Vec<(usize, Checked)> = Vec::new();
    for (index, request) in requests.into_iter().enumerate() {
        match request {
            Err(error) => outcomes.push(Some(CreateOutcome::Failed(error))),
            Ok(checked) => match reusable(state, creator, &checked).await? {
                Some(link) => outcomes.push(Some(CreateOutcome::Reused(link))),
                None => {
                    outcomes.push(None);
                    pending.push((index, checked));
                }
            },
        }
    }
    let mut created = Vec::new();
    for _ in 0..GENERATED_CODE_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        pending = insert_round(state, creator, pending, &mut outcomes, &mut created).await?;
    }
    for (index, _) in pending {
        outcomes[index] = Some(CreateOutcome::Failed(ApiError::Internal(anyhow::anyhow!(
            "{GENERATED_CODE_ATTEMPTS} generated codes in a row were taken"
        ))));
    }
    state.created.inc_by(created.len() as u64);
    write_through(state, &created).await;
    Ok(outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| {
                CreateOutcome::Failed(ApiError::Internal(anyhow::anyhow!(
                    "a request went unanswered"
                )))
            })
        })
        .collect())
}

/// One multi-row insert of `pending` with fresh IDs (shared with concurrent requests by the group inserter). Inserted links are recorded as created; taken aliases as
/// 409; generated codes that were taken are returned for another round.
async fn insert_round(
    state: &AppState,
    creator: Creator,
    pending: Vec<(usize, Checked)>,
    outcomes: &mut [Option<CreateOutcome>],
    created: &mut Vec<Link>,
) -> Result<Vec<(usize, Checked)>, ApiError> {
    let ids = state
        .ids
        .next_ids(pending.len())
        .map_err(|error| ApiError::unavailable_because("the ID generator", error))?;
    let ids = ids
        .into_iter()
        .map(|id| {
            i64::try_from(id)
                .map_err(|_| ApiError::Internal(anyhow::anyhow!("ID {id} exceeds 63 bits")))
        })
        .collect::<Result<Vec<i64>, _>>()?;
    let codes: Vec<String> = pending
        .iter()
        .zip(&ids)
        .map(|((_, checked), id)| {
            checked
                .alias
                .clone()
                .unwrap_or_else(|| code::encode(id.unsigned_abs()))
        })
        .collect();
    let rows: Vec<PendingLink> = pending
        .iter()
        .zip(ids.iter().zip(&codes))
        .map(|((_, checked), (id, code))| PendingLink {
            id: *id,
            code: code.clone(),
            long_url: checked.long_url.clone(),
            expires_at: checked.expires_at,
            redirect: checked.redirect,
            owner_id: creator.owner_id,
        })
        .collect();
    let mut inserted: HashMap<i64, Link> = state
        .inserter
        .insert(rows)
        .await?
        .into_iter()
        .map(|link| (link.id, link))
        .collect();
    let mut retry = Vec::new();
    for ((index, checked), (id, code)) in pending.into_iter().zip(ids.iter().zip(codes)) {
        match inserted.remove(id) {
            Some(link) => {
                created.push(link.clone());
                outcomes[index] = Some(CreateOutcome::Created(link));
            }
            None if checked.alias.is_some() => {
                outcomes[index] = Some(CreateOutcome::Failed(ApiError::AliasTaken(code)));
            }
            None => {
                tracing::info!(%code, "generated code equals an alias; taking a new ID");
                retry.push((index, checked));
            }
        }
    }
    Ok(retry)
}

async fn reusable(
    state: &AppState,
    creator: Creator,
    checked: &Checked,
) -> Result<Option<Link>, ApiError> {
    match creator.owner_id {
        Some(owner_id) if checked.reuse && checked.alias.is_none() => Ok(state
            .store
            .find_reusable(owner_id, &checked.long_url)
            .await?),
        _ => Ok(None),
    }
}

/// Best effort: the links are already durable. Overwrites any negative entry and announces the codes, so a code
/// that was unknown a moment ago redirects at once on every replica. Behind a breaker: while Redis fails, creates
/// skip it at once (the redirect finds the links in PostgreSQL) instead of each waiting out the command timeout.
async fn write_through(state: &AppState, links: &[Link]) {
    let breaker = &state.redis_breaker;
    if !breaker.allow() {
        state
            .degraded
            .with_label_values(&["redis", "write_through"])
            .inc();
        return;
    }
    let now = state.clock.now();
    let entries: Vec<(&str, Resolution, std::time::Duration)> = links
        .iter()
        .map(|link| {
            let target = Resolution::Live {
                long_url: link.long_url.clone(),
                redirect: link.redirect,
                expires_at: link.expires_at,
                id: link.id,
            };
            let ttl = links::cache::ttl_for(&target, state.cache_ttl(), now);
            (link.code.as_str(), target, ttl)
        })
        .collect();
    match breaker.timed(state.cache.put_created(&entries)).await {
        Ok(()) => breaker.succeeded(),
        Err(error) => {
            breaker.failed();
            state
                .degraded
                .with_label_values(&["redis", "write_through"])
                .inc();
            tracing::warn!(error = %links::chain::Chain(&error), links = links.len(), "write-through to Redis skipped");
        }
    }
}
