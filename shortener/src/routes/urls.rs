//! Creating short links: `POST /v1/urls` (one) and `POST /v1/urls/batch` (up to 1000 in one multi-row insert).
//! Both share validation, reuse, collision handling and write-through, so one link behaves the same either way,
//! and both take an `Idempotency-Key` (see [`crate::idempotency`]).

use actix_web::{http::StatusCode, web, HttpResponse, ResponseError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::routes::batch_items::MAX_BATCH;
use crate::{
    auth::{Caller, Creator},
    deadline::Deadline,
    errors::{ApiError, ErrorCode},
    idempotency::{self, Answer, IdempotencyKey, Outcome},
    routes::{
        batch_items::BatchItems,
        body::{
            ErrorBody, ErrorDetail, LinkBody, RateLimited, Unauthorized, Unavailable, WholeNumber,
        },
        create_links::{create_all, Checked, CreateOutcome, Writer},
        fields,
    },
    state::AppState,
};

/// Largest batch body: 1000 items of the longest URL and every field, with room for JSON overhead.
pub const MAX_BATCH_BODY: usize = 4 * 1024 * 1024;

/// The body of `POST /v1/urls`, and one item of a batch. Serialised only for the idempotency fingerprint.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
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
    #[schema(schema_with = fields::redirect_schema)]
    pub redirect: Option<u16>,
    /// Return the caller's existing live link for the same URL instead of creating one. Only a plain request
    /// (no alias, tags, password or max_hits) reuses, and only a plain link is reused.
    #[serde(default)]
    pub reuse: bool,
    /// Labels to find the link by: at most 10, each 1 to 32 of `a-z 0-9 -` (422 `invalid_tags`); stored sorted
    /// and without duplicates.
    #[schema(schema_with = fields::tags_schema)]
    pub tags: Option<Vec<String>>,
    /// A password visitors must give before the redirect: 1 to 128 characters (422 `invalid_password`). Stored
    /// as an Argon2id hash, never shown again. Not accepted in batches (hashing is slow on purpose).
    #[schema(min_length = 1, max_length = 128, format = Password)]
    pub password: Option<String>,
    /// After this many counted visits the link answers 410: 1 to 10^12 (422 `invalid_max_hits`). Visits are
    /// counted when the redirect flushes them, so a few more may get through (see the README).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000_000_i64)]
    pub max_hits: Option<WholeNumber>,
    /// The registered domain (`GET /v1/domains`) the link lives on; the default domain when absent (422
    /// `unknown_domain`). A code is unique per domain: the same alias on two domains is two links.
    #[schema(example = "go.example.com", max_length = 253)]
    pub domain: Option<String>,
    /// Targets for visitors that meet conditions, tried in order before the variants and `long_url` (422
    /// `invalid_rules`, naming the rule and the field).
    #[schema(schema_with = crate::routes::schemas::rules_schema)]
    pub rules: Option<serde_json::Value>,
    /// Targets visitors are split between by weight, each visitor keeping one (422 `invalid_variants`).
    #[schema(schema_with = crate::routes::schemas::variants_schema)]
    pub variants: Option<serde_json::Value>,
}

/// Validates a create request; its password, if any, is checked and handed back for hashing (see
/// [`fields::password_hash`]).
fn check(
    request: CreateRequest,
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<(Checked, Option<String>), ApiError> {
    let long_url = fields::long_url(&request.long_url, state)?;
    if let Some(alias) = &request.alias {
        fields::alias(alias)?;
    }
    let expires_at = request
        .expires_at
        .as_deref()
        .map(|raw| fields::expires_at(raw, now))
        .transpose()?;
    let redirect = request
        .redirect
        .map(fields::redirect)
        .transpose()?
        .unwrap_or_default();
    let tags = fields::tags(request.tags.unwrap_or_default())?;
    if let Some(password) = &request.password {
        fields::password(password)?;
    }
    let max_hits = request.max_hits.map(fields::max_hits).transpose()?;
    let domain = fields::domain(request.domain.as_deref(), state)?;
    let routing = fields::routing(request.rules.as_ref(), request.variants.as_ref(), state)?;
    let checked = Checked {
        long_url,
        alias: request.alias,
        expires_at,
        redirect,
        reuse: request.reuse,
        tags,
        password_hash: None,
        max_hits,
        domain,
        routing,
    };
    Ok((checked, request.password))
}

/// `POST /v1/urls`: 201 with the new link once it is committed; 200 with an existing one for `reuse`.
#[utoipa::path(
    post,
    path = "/v1/urls",
    tag = "links",
    request_body = CreateRequest,
    params(IdempotencyHeader),
    responses(
        (status = 201, description = "Created (committed); `Location` is the short URL", body = LinkBody,
            headers(("Location" = String, description = "The short URL"))),
        (status = 200, description = "`reuse`: the caller's existing live link for this URL", body = LinkBody),
        (status = 400, description = "Malformed JSON; invalid_idempotency_key", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 409, description = "alias_taken; idempotency_key_in_flight (see Retry-After)", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "invalid_url, blocked_domain, invalid_alias, reserved_alias, expires_in_past, invalid_expires_at, invalid_redirect, invalid_tags, invalid_password, invalid_max_hits, unknown_domain, invalid_rules, invalid_variants, idempotency_key_reused", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
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
    // The password is hashed before the key is claimed: a hash takes tens of milliseconds (longer while the
    // slots are busy), and the claim holds a transaction and a pooled connection until it commits. A refused
    // hash (429, 503) is not an answer to keep: a retry with the same key really retries.
    fields::load_domains(&state, request.domain.as_deref()).await;
    let checked = match check(request, &state, state.clock.now()) {
        Ok((mut checked, Some(password))) => {
            checked.password_hash =
                Some(fields::password_hash(&state, creator.spender(), password).await?);
            Ok(checked)
        }
        Ok((checked, None)) => Ok(checked),
        Err(invalid) => Err(invalid),
    };
    idempotency::answer_once(
        &state,
        creator.owner_id,
        key,
        fingerprint,
        deadline,
        async |writer| create_one(&state, creator, checked, writer).await,
    )
    .await
}

/// Creates the link of a request that was checked (and its password hashed); a request that failed its check
/// is answered here, inside the key's claim, so its 4xx is kept for the key like any other.
async fn create_one(
    state: &AppState,
    creator: Creator,
    checked: Result<Checked, ApiError>,
    writer: Writer<'_>,
) -> Result<Outcome, ApiError> {
    let (mut outcomes, created) = create_all(state, creator, vec![checked], &writer).await?;
    announce_created(state, creator.owner_id, &outcomes).await;
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
    /// 1 to 1000 create bodies (`CreateRequest`). Any JSON value is taken as an item: one that is not a valid
    /// create body fails alone, as its own result (422 `invalid_item`), so the schema of an item is open.
    #[schema(value_type = Vec<serde_json::Value>, min_items = 1, max_items = 1000)]
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
/// get a 401 even under `--allow-anonymous` (every /v1 call takes a key, as the README says; anonymous creation
/// is the web page's single link, limited per request, and a batch would spend one token on a thousand links).
#[utoipa::path(
    post,
    path = "/v1/urls/batch",
    tag = "links",
    request_body = BatchRequest,
    params(IdempotencyHeader),
    responses(
        (status = 200, description = "One result per item, in order", body = BatchAnswer),
        (status = 400, description = "Malformed JSON; invalid_idempotency_key", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 409, description = "idempotency_key_in_flight; see Retry-After", body = ErrorBody),
        (status = 413, description = "Body over 4 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "invalid_batch_size: not 1 to 1000 items; idempotency_key_reused", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
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
            code: ErrorCode::InvalidBatchSize,
            message: format!(
                "items must hold 1 to {MAX_BATCH} links, not {}",
                items.total
            ),
        });
    }
    let fingerprint = idempotency::fingerprint("/v1/urls/batch", &items.kept)?;
    let creator = Creator {
        owner_id: Some(caller.owner_id),
        client: caller.client,
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
    for item in &items {
        fields::load_domains(state, item.get("domain").and_then(|domain| domain.as_str())).await;
    }
    let now = state.clock.now();
    let checked = items
        .into_iter()
        .map(|item| {
            let request = serde_json::from_value::<CreateRequest>(item).map_err(|error| {
                ApiError::InvalidField {
                    code: ErrorCode::InvalidItem,
                    message: format!("this item is not a valid create request: {error}"),
                }
            })?;
            match check(request, state, now)? {
                (checked, None) => Ok(checked),
                (_, Some(_)) => Err(ApiError::InvalidField {
                    code: ErrorCode::InvalidPassword,
                    message: "a batch cannot set passwords (hashing is slow on purpose): create password \
                              links one at a time, or set the password with PATCH /v1/urls/{code}"
                        .into(),
                }),
            }
        })
        .collect();
    let (outcomes, created) = create_all(state, creator, checked, &writer).await?;
    announce_created(state, creator.owner_id, &outcomes).await;
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
                    error: Some(ErrorDetail::from(error)),
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

/// Queues a `link.created` event for each link created, when a webhook of `owner` wants them.
async fn announce_created(state: &AppState, owner: Option<i64>, outcomes: &[CreateOutcome]) {
    let emitter = &state.events.emitter;
    let Some(owner) =
        owner.filter(|owner| emitter.hooks.any_wanting(*owner, events::Kind::LinkCreated))
    else {
        return;
    };
    let now = state.clock.now();
    let created: Vec<events::Event> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            CreateOutcome::Created(link) => Some(events::Event::new(
                events::Kind::LinkCreated,
                owner,
                link.code.clone(),
                now,
                serde_json::to_value(LinkBody::new(link, state)).unwrap_or_default(),
            )),
            _ => None,
        })
        .collect();
    emitter.queue_all(&created).await;
}
