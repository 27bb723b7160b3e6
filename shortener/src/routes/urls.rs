//! Creating short links: `POST /v1/urls` (one) and `POST /v1/urls/batch` (up to 1000 in one multi-row insert).
//! Both share validation, reuse, collision handling and write-through, so one link behaves the same either way,
//! and both take an `Idempotency-Key` (see [`crate::idempotency`]).

use std::collections::HashMap;

use actix_web::{http::StatusCode, web, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use links::{
    code,
    db::DbError,
    model::{Link, RedirectStatus, Resolution},
    validate,
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use crate::routes::batch_items::MAX_BATCH;
use crate::{
    auth::{Caller, Creator},
    deadline::Deadline,
    errors::ApiError,
    group_insert::PendingLink,
    idempotency::{self, Answer, IdempotencyKey, Outcome},
    routes::batch_items::BatchItems,
    routes::body::{ErrorBody, ErrorDetail, LinkBody},
    state::AppState,
};

/// Rounds of fresh IDs for generated codes that collided with an alias (rare: only aliases that look like IDs).
const GENERATED_CODE_ATTEMPTS: usize = 3;

/// Largest batch body: 1000 items of the longest URL and every field, with room for JSON overhead.
pub const MAX_BATCH_BODY: usize = 4 * 1024 * 1024;

/// The body of `POST /v1/urls`, and one item of a batch. Serialised only for the idempotency fingerprint.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    /// The URL to shorten: absolute http or https, at most 2048 bytes.
    #[schema(example = "https://example.com/a/long/path")]
    pub long_url: String,
    /// A custom code: 3 to 64 of `A-Z a-z 0-9 _ -`, not a reserved word.
    #[schema(pattern = "^[A-Za-z0-9_-]{3,64}$")]
    pub alias: Option<String>,
    /// RFC 3339 instant after which the link answers 410.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// 301, 302 (default), 307 or 308.
    #[schema(example = 302)]
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
    params(IdempotencyHeader),
    responses(
        (status = 201, description = "Created (committed); `Location` is the short URL", body = LinkBody),
        (status = 200, description = "`reuse`: the caller's existing live link for this URL", body = LinkBody),
        (status = 400, description = "Malformed JSON; invalid_idempotency_key", body = ErrorBody),
        (status = 401, description = "No or bad API key", body = ErrorBody),
        (status = 409, description = "alias_taken; idempotency_key_in_flight (see Retry-After)", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "invalid_url, blocked_domain, invalid_alias, reserved_alias, expires_in_past, invalid_expires_at, invalid_redirect, idempotency_key_reused", body = ErrorBody),
        (status = 429, description = "rate_limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "unavailable; see Retry-After", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[tracing::instrument(skip_all, fields(owner_id = creator.owner_id))]
pub async fn create(
    state: web::Data<AppState>,
    creator: Creator,
    deadline: Deadline,
    key: IdempotencyKey,
    body: web::Json<CreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.into_inner();
    let fingerprint = idempotency::fingerprint("/v1/urls", &request)?;
    idempotency::answer_once(
        &state,
        creator.owner_id,
        key,
        fingerprint,
        deadline,
        async |writer| create_one(&state, creator, request, writer).await,
    )
    .await
}

async fn create_one(
    state: &AppState,
    creator: Creator,
    request: CreateRequest,
    writer: Writer<'_>,
) -> Result<Outcome, ApiError> {
    let checked = check(request, state, state.clock.now())?;
    let (mut outcomes, created) = create_all(state, creator, vec![Ok(checked)], &writer).await?;
    let outcome = outcomes
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a create produced no outcome")))?;
    let answer = match outcome {
        CreateOutcome::Created(link) => {
            let body = LinkBody::new(&link, state);
            Answer::json(StatusCode::CREATED, Some(body.short_url.clone()), &body)?
        }
        CreateOutcome::Reused(link) => {
            Answer::json(StatusCode::OK, None, &LinkBody::new(&link, state))?
        }
        CreateOutcome::Failed(error) => return Err(error),
    };
    Ok(Outcome {
        answer,
        server_error: false,
        created,
    })
}

/// The `Idempotency-Key` header, for the document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[expect(
    dead_code,
    reason = "describes the header for the OpenAPI document; the header is read by IdempotencyKey"
)]
struct IdempotencyHeader {
    /// 1 to 255 visible ASCII characters, e.g. a UUID. The same key and request within 24 hours get the first
    /// answer again, with `Idempotent-Replayed: true`; the key with another request is 422
    /// `idempotency_key_reused`; while the first is still being answered, 409 `idempotency_key_in_flight`.
    /// Needs an API key. 5xx answers are not kept: retry them with the same key.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$"
    )]
    idempotency_key: Option<String>,
}

/// The body of `POST /v1/urls/batch`. Items are parsed one by one, so a malformed item fails alone.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 1000 create bodies.
    #[schema(value_type = Vec<CreateRequest>)]
    pub items: BatchItems,
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
/// per item in order (`201` + link, `200` + reused link, or the item's error status + error). Anonymous callers
/// may not send batches (the Contract wants a key on every /v1 call; anonymous creation is the web page's single
/// link, limited per request, and a batch would spend one token on a thousand links).
#[utoipa::path(
    post,
    path = "/v1/urls/batch",
    tag = "links",
    request_body = BatchRequest,
    params(IdempotencyHeader),
    responses(
        (status = 200, description = "One result per item, in order", body = BatchAnswer),
        (status = 400, description = "Malformed JSON; invalid_idempotency_key", body = ErrorBody),
        (status = 401, description = "No or bad API key (anonymous callers included)", body = ErrorBody),
        (status = 409, description = "idempotency_key_in_flight; see Retry-After", body = ErrorBody),
        (status = 413, description = "Body over 4 MiB", body = ErrorBody),
        (status = 422, description = "invalid_batch_size: not 1 to 1000 items; idempotency_key_reused", body = ErrorBody),
        (status = 429, description = "rate_limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "unavailable; see Retry-After", body = ErrorBody),
    ),
    security(("api_key" = []))
)]
#[tracing::instrument(skip_all, fields(owner_id = caller.owner_id, items = body.items.total))]
pub async fn create_batch(
    state: web::Data<AppState>,
    caller: Caller,
    deadline: Deadline,
    key: IdempotencyKey,
    body: web::Json<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let items = body.into_inner().items;
    if items.total == 0 || items.total > MAX_BATCH {
        return Err(ApiError::InvalidField {
            code: "invalid_batch_size",
            message: format!(
                "items must hold 1 to {MAX_BATCH} links, not {}",
                items.total
            ),
        });
    }
    let fingerprint = idempotency::fingerprint("/v1/urls/batch", &items.kept)?;
    let creator = Creator {
        owner_id: Some(caller.owner_id),
    };
    idempotency::answer_once(
        &state,
        creator.owner_id,
        key,
        fingerprint,
        deadline,
        async |writer| create_many(&state, creator, items.kept, writer).await,
    )
    .await
}

async fn create_many(
    state: &AppState,
    creator: Creator,
    items: Vec<serde_json::Value>,
    writer: Writer<'_>,
) -> Result<Outcome, ApiError> {
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
            check(request, state, now)
        })
        .collect();
    let (outcomes, created) = create_all(state, creator, checked, &writer).await?;
    let linked = |status, link| BatchResult {
        status,
        link: Some(LinkBody::new(link, state)),
        error: None,
    };
    let results: Vec<BatchResult> = outcomes
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
    let server_error = results.iter().any(|result| result.status >= 500);
    Ok(Outcome {
        answer: Answer::json(StatusCode::OK, None, &BatchAnswer { results })?,
        server_error,
        created,
    })
}

/// Where a create reads and writes.
pub enum Writer<'a> {
    /// Through the group inserter, sharing statements with concurrent requests; each round of a batch commits
    /// on its own, bounded by the request's deadline.
    Grouped(Instant),
    /// In a transaction the caller commits (with the `Idempotency-Key` record), bounded already.
    Transaction(&'a deadpool_postgres::Transaction<'a>),
}

impl Writer<'_> {
    /// Whether a round's links are committed before the next round runs (so a later failure must not hide them).
    fn commits_each_round(&self) -> bool {
        matches!(self, Self::Grouped(_))
    }

    async fn find_reusable(
        &self,
        state: &AppState,
        owner_id: i64,
        long_urls: &[&str],
    ) -> Result<HashMap<String, Link>, ApiError> {
        Ok(match self {
            Self::Grouped(_) => {
                let client = state.store.pool().get().await.map_err(DbError::from)?;
                links::store::find_reusable(&client, owner_id, long_urls).await?
            }
            Self::Transaction(tx) => links::store::find_reusable(*tx, owner_id, long_urls).await?,
        })
    }

    async fn insert(
        &self,
        state: &AppState,
        rows: Vec<PendingLink>,
    ) -> Result<Vec<Link>, ApiError> {
        Ok(match self {
            Self::Grouped(deadline) => state.inserter.insert(rows, *deadline).await?,
            Self::Transaction(tx) => {
                let rows: Vec<_> = rows.iter().map(PendingLink::as_new).collect();
                links::manage::insert_links(*tx, &rows).await?
            }
        })
    }
}

/// Creates every valid request: one reuse lookup for all, then one multi-row insert per round; generated codes
/// that collided with an alias get new IDs for the next round, taken aliases fail with 409. Returns outcomes in
/// the order of `requests`, and the links created. A failure before anything was committed fails the whole
/// call; a round failing after an earlier round committed fails only the items still pending, so the links
/// already made are reported, never lost behind a 503 (a retry would duplicate them).
async fn create_all(
    state: &AppState,
    creator: Creator,
    requests: Vec<Result<Checked, ApiError>>,
    writer: &Writer<'_>,
) -> Result<(Vec<CreateOutcome>, Vec<Link>), ApiError> {
    let reusable = reusable(state, creator, &requests, writer).await?;
    let mut outcomes: Vec<Option<CreateOutcome>> = Vec::with_capacity(requests.len());
    let mut pending: Vec<(usize, Checked)> = Vec::new();
    for (index, request) in requests.into_iter().enumerate() {
        match request {
            Err(error) => outcomes.push(Some(CreateOutcome::Failed(error))),
            Ok(checked) => match reusable_for(&reusable, &checked) {
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
        let round = std::mem::take(&mut pending);
        let indexes: Vec<usize> = round.iter().map(|(index, _)| *index).collect();
        match insert_round(state, creator, round, &mut outcomes, &mut created, writer).await {
            Ok(retry) => pending = retry,
            Err(error) if writer.commits_each_round() && !created.is_empty() => {
                error.log(None);
                for index in indexes {
                    outcomes[index] = Some(CreateOutcome::Failed(after_committed(&error)));
                }
                break;
            }
            Err(error) => return Err(error),
        }
    }
    for (index, _) in pending {
        outcomes[index] = Some(CreateOutcome::Failed(ApiError::Internal(anyhow::anyhow!(
            "{GENERATED_CODE_ATTEMPTS} generated codes in a row were taken"
        ))));
    }
    let outcomes = outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| {
                CreateOutcome::Failed(ApiError::Internal(anyhow::anyhow!(
                    "a request went unanswered"
                )))
            })
        })
        .collect();
    Ok((outcomes, created))
}

/// What an item still pending gets when a later round failed (the cause is logged once, by the caller).
fn after_committed(error: &ApiError) -> ApiError {
    match error {
        ApiError::Unavailable { dependency, .. } => ApiError::unavailable(dependency),
        _ => ApiError::Internal(anyhow::anyhow!("a later insert round of this batch failed")),
    }
}

/// One multi-row insert of `pending` with fresh IDs. Inserted links are recorded as created; taken aliases as
/// 409; generated codes that were taken are returned for another round.
async fn insert_round(
    state: &AppState,
    creator: Creator,
    pending: Vec<(usize, Checked)>,
    outcomes: &mut [Option<CreateOutcome>],
    created: &mut Vec<Link>,
    writer: &Writer<'_>,
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
    let mut inserted: HashMap<i64, Link> = writer
        .insert(state, rows)
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

/// The caller's live links for the URLs of every request that asked for reuse, looked up by one statement.
async fn reusable(
    state: &AppState,
    creator: Creator,
    requests: &[Result<Checked, ApiError>],
    writer: &Writer<'_>,
) -> Result<HashMap<String, Link>, ApiError> {
    let Some(owner_id) = creator.owner_id else {
        return Ok(HashMap::new());
    };
    let urls: Vec<&str> = requests
        .iter()
        .flatten()
        .filter(|checked| checked.reuse && checked.alias.is_none())
        .map(|checked| checked.long_url.as_str())
        .collect();
    writer.find_reusable(state, owner_id, &urls).await
}

/// The link `checked` may reuse, if it asked for reuse and there is one. Several items may reuse one link.
fn reusable_for(reusable: &HashMap<String, Link>, checked: &Checked) -> Option<Link> {
    (checked.reuse && checked.alias.is_none())
        .then(|| reusable.get(&checked.long_url).cloned())
        .flatten()
}

/// Counts the links created and writes them through to Redis, once they are durable (committed). Best effort:
/// overwrites any negative entry and announces the codes, so a code that was unknown a moment ago redirects at
/// once on every replica.
pub async fn write_through(state: &AppState, links: &[Link]) {
    if links.is_empty() {
        return;
    }
    state.created.inc_by(links.len() as u64);
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
    if let Err(error) = state.cache.put_created(&entries).await {
        state
            .degraded
            .with_label_values(&["redis", "write_through"])
            .inc();
        tracing::warn!(error = %links::chain::Chain(&error), links = links.len(), "write-through to Redis skipped");
    }
}
