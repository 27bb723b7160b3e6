//! The caller's own links: read one with its hits, list them newest first (all, or by tag and search), delete
//! one. Another key's link is answered exactly like a missing one (404), so codes of other owners cannot be
//! probed.

use actix_web::{web, HttpResponse};
use links::{code, manage::LinkFilter, validate};
use serde::{Deserialize, Serialize};

use crate::{
    auth::Caller,
    deadline::Deadline,
    errors::{ApiError, ErrorCode},
    routes::body::{ErrorBody, LinkBody, RateLimited, Unauthorized, Unavailable},
    state::AppState,
};

/// Default and largest page size of the list.
const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

/// `GET /v1/urls/{code}`: the link and its total hits.
#[utoipa::path(
    get,
    path = "/v1/urls/{code}",
    tag = "links",
    params(("code" = String, Path, description = "The short code"), crate::routes::DomainQuery),
    responses(
        (status = 200, description = "The link with `hits`", body = LinkBody),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such link of the caller's", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    deadline: Deadline,
    at: crate::routes::LinkAt,
) -> Result<HttpResponse, ApiError> {
    let found = state
        .store
        .find_owned(caller.owner_id, &at.key, deadline.budget()?)
        .await?
        .ok_or_else(|| at.not_found())?;
    Ok(HttpResponse::Ok().json(LinkBody::with_hits(&found.link, found.hits, &state)))
}

/// Query of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page: up to 11 base62 digits.
    #[param(pattern = "^[0-9A-Za-z]{1,11}$")]
    cursor: Option<String>,
    /// Only links with this tag (1 to 32 of `a-z 0-9 -`; 422 `invalid_tag`).
    #[param(pattern = "^[a-z0-9-]{1,32}$")]
    tag: Option<String>,
    /// Only links whose code or long URL contains this text, ignoring case (3 to 200 characters, no control
    /// characters; 422 `invalid_query`).
    #[param(
        min_length = 3,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    q: Option<String>,
}

/// Longest search text, in characters.
const MAX_QUERY_CHARS: usize = 200;

/// Search text length bounds, in characters. Shorter text has no trigram, so no index serves it: a search for
/// `a` would read every link of the owner's.
const QUERY_CHARS: std::ops::RangeInclusive<usize> = 3..=MAX_QUERY_CHARS;

/// The filter of a list or an export: `tag` and `q` as sent, checked.
pub fn link_filter(tag: Option<String>, q: Option<String>) -> Result<LinkFilter, ApiError> {
    if tag.as_deref().is_some_and(|tag| !validate::is_tag(tag)) {
        return Err(ApiError::InvalidField {
            code: ErrorCode::InvalidTag,
            message: "tag must be 1 to 32 of a-z, 0-9 and '-'".into(),
        });
    }
    if let Some(q) = &q {
        let chars = q.chars().take(MAX_QUERY_CHARS + 1).count();
        if !QUERY_CHARS.contains(&chars) || q.chars().any(char::is_control) {
            return Err(ApiError::InvalidField {
                code: ErrorCode::InvalidQuery,
                message: format!(
                    "q must be {} to {MAX_QUERY_CHARS} characters, none of them a control character",
                    QUERY_CHARS.start()
                ),
            });
        }
    }
    Ok(LinkFilter { tag, contains: q })
}

/// A page of the caller's links.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page {
    /// Newest first, each with `hits`.
    items: Vec<LinkBody>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// `GET /v1/urls?limit=&cursor=&tag=&q=`: the caller's links, newest first, all or those with `tag` and/or
/// containing `q`. The cursor is opaque to clients (it is the base62 ID of the last link of the page);
/// `next_cursor` is null on the last page.
#[utoipa::path(
    get,
    path = "/v1/urls",
    tag = "links",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of the caller's links", body = Page),
        (status = 401, response = Unauthorized),
        (status = 422, description = "invalid_limit, invalid_cursor, invalid_tag, invalid_query", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    deadline: Deadline,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let ListQuery {
        limit,
        cursor,
        tag,
        q,
    } = query.into_inner();
    let filter = link_filter(tag, q)?;
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidField {
            code: ErrorCode::InvalidLimit,
            message: format!("limit must be between 1 and {MAX_LIMIT}"),
        });
    }
    let before = cursor.as_deref().map(parse_cursor).transpose()?;
    // One extra row says whether another page follows, without a count.
    // A search or a tag may read a replica; the plain list stays on the primary, where a link just created is
    // already on the first page.
    let store = if filter.is_empty() {
        &state.store
    } else {
        &state.reads
    };
    let mut rows = store
        .list_owned(
            caller.owner_id,
            &filter,
            before,
            limit + 1,
            deadline.budget()?,
        )
        .await?;
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| rows.last())
        .flatten()
        .map(|last| code::encode(last.link.id.unsigned_abs()));
    let items = rows
        .iter()
        .map(|row| LinkBody::with_hits(&row.link, row.hits, &state))
        .collect();
    Ok(HttpResponse::Ok().json(Page { items, next_cursor }))
}

/// A cursor is any base62 number of up to 11 digits, as the document says: one above every ID (no real
/// `next_cursor` is) simply means "from the newest".
fn parse_cursor(cursor: &str) -> Result<i64, ApiError> {
    let well_formed =
        (1..=11).contains(&cursor.len()) && cursor.bytes().all(|byte| byte.is_ascii_alphanumeric());
    if !well_formed {
        return Err(ApiError::InvalidField {
            code: ErrorCode::InvalidCursor,
            message: "cursor must be the next_cursor of a previous page".into(),
        });
    }
    Ok(code::decode(cursor)
        .and_then(|id| i64::try_from(id).ok())
        .unwrap_or(i64::MAX))
}

/// `DELETE /v1/urls/{code}`: 204 once the delete is committed; the short URL answers 410 from then on. The
/// invalidation is queued in the same statement and delivered at once, so every redirect replica drops the code;
/// if Redis fails, the outbox retries it until Redis is back ([`crate::outbox`]), and the failure is counted.
#[utoipa::path(
    delete,
    path = "/v1/urls/{code}",
    tag = "links",
    params(("code" = String, Path, description = "The short code"), crate::routes::DomainQuery),
    responses(
        (status = 204, description = "Deleted; the short URL answers 410 from now on"),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such link of the caller's", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    at: crate::routes::LinkAt,
) -> Result<HttpResponse, ApiError> {
    // The event shows the link as it was: read first, only when a webhook wants it.
    let emitter = &state.events.emitter;
    let shown = if emitter
        .hooks
        .any_wanting(caller.owner_id, events::Kind::LinkDeleted)
    {
        state
            .store
            .find_owned(caller.owner_id, &at.key, std::time::Duration::from_secs(1))
            .await
            .inspect_err(
                |error| tracing::warn!(%error, "reading a deleted link for its event failed"),
            )
            .ok()
            .flatten()
            .map(|found| {
                serde_json::to_value(LinkBody::new(&found.link, &state)).unwrap_or_default()
            })
    } else {
        None
    };
    let Some(owed) = state.store.delete_owned(caller.owner_id, &at.key).await? else {
        return Err(at.not_found());
    };
    state.invalidate(owed).await;
    if let Some(shown) = shown {
        emitter
            .link(
                events::Kind::LinkDeleted,
                Some(caller.owner_id),
                &at.key,
                || shown,
            )
            .await;
    }
    Ok(HttpResponse::NoContent().finish())
}
