//! `POST /v1/webhooks`, `GET /v1/webhooks`, `DELETE /v1/webhooks/{id}`: the caller's webhooks. The secret is
//! shown once, in the 201; another key's webhook is answered like a missing one (404).

use actix_web::{http::header, web, HttpResponse};
use links::webhooks::{EventTypes, Webhook, WebhookError};
use serde::{Deserialize, Serialize};

use crate::{
    auth::Caller,
    errors::{ApiError, ErrorCode},
    routes::body::{rfc3339, ErrorBody, RateLimited, Unauthorized, Unavailable},
    state::AppState,
    webhooks::target::{self, TargetError},
};

/// The body of `POST /v1/webhooks`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where deliveries are POSTed: http or https, no user name or password, a host that is (or resolves only
    /// to) public addresses unless the operator allows private ones (422 `invalid_webhook_url`).
    #[schema(max_length = 2048, example = "https://example.com/hooks/snowlink")]
    url: String,
    /// What to deliver: each of `click`, `link.created`, `link.updated`, `link.deleted` at most once, at least
    /// one (422 `invalid_events`).
    #[schema(value_type = Vec<crate::routes::schemas::EventSchema>, min_items = 1, max_items = 4,
        example = json!(["click", "link.created"]))]
    events: Vec<String>,
}

/// A webhook as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookBody {
    /// Its ID, a decimal number as a string.
    #[schema(example = "42")]
    id: String,
    /// Where deliveries go.
    url: String,
    /// What it receives.
    #[schema(value_type = Vec<crate::routes::schemas::EventSchema>, example = json!(["click", "link.created"]))]
    events: Vec<&'static str>,
    /// The key of its `Snowlink-Signature` (HMAC-SHA256 of `"{t}.{body}"`): in the 201 only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_…")]
    secret: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// Whether deliveries stopped because they failed for 24 hours (delete it and create it again to resume).
    paused: bool,
    /// RFC 3339: since when deliveries fail; null while they succeed.
    #[schema(format = DateTime)]
    failing_since: Option<String>,
}

impl WebhookBody {
    fn new(webhook: &Webhook) -> Self {
        Self {
            id: webhook.id.to_string(),
            url: webhook.url.clone(),
            events: webhook.events.names(),
            secret: None,
            created_at: rfc3339(webhook.created_at),
            paused: webhook.paused_at.is_some(),
            failing_since: webhook.failing_since.map(rfc3339),
        }
    }
}

/// The body of `GET /v1/webhooks`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhooksBody {
    /// Oldest first; at most 10.
    items: Vec<WebhookBody>,
}

/// `POST /v1/webhooks`: a webhook of the caller's, at most 10 per key. A URL on a name is resolved (at most 2
/// s) and refused if any address is not public; deliveries check again, each time they connect.
#[utoipa::path(
    post,
    path = "/v1/webhooks",
    tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created; the only answer that shows `secret`", body = WebhookBody,
            headers(("Location" = String, description = "The webhook's path"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "invalid_webhook_url (the message says why), invalid_events, too_many_webhooks", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
#[tracing::instrument(skip_all, fields(owner_id = caller.owner_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateWebhook>,
) -> Result<HttpResponse, ApiError> {
    let CreateWebhook { url, events } = body.into_inner();
    let events = EventTypes::parse_list(&events).map_err(|error| ApiError::InvalidField {
        code: ErrorCode::InvalidEvents,
        message: error.to_string(),
    })?;
    let url = target::check_url(&url, state.webhook_sender.allows_private())
        .await
        .map_err(refused)?;
    let secret = links::webhooks::generate_secret();
    let webhook = state
        .store
        .create_webhook(caller.owner_id, url.as_str(), events, &secret)
        .await
        .map_err(|error| match error {
            WebhookError::Db(error) => ApiError::from(error),
            other => ApiError::InvalidField {
                code: ErrorCode::TooManyWebhooks,
                message: other.to_string(),
            },
        })?;
    changed(&state).await;
    let body = WebhookBody {
        secret: Some(webhook.secret.clone()),
        ..WebhookBody::new(&webhook)
    };
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/webhooks/{}", webhook.id)))
        .json(body))
}

/// A URL webhooks may not use: 422 with the reason, or 503 when this process checks as many as it may.
fn refused(error: TargetError) -> ApiError {
    match error {
        TargetError::Busy => ApiError::Busy {
            per_caller: false,
            message: error.to_string(),
            retry_after: std::time::Duration::from_secs(1),
        },
        other => ApiError::InvalidField {
            code: ErrorCode::InvalidWebhookUrl,
            message: other.to_string(),
        },
    }
}

/// `GET /v1/webhooks`: the caller's webhooks, without their secrets.
#[utoipa::path(
    get,
    path = "/v1/webhooks",
    tag = "webhooks",
    responses(
        (status = 200, description = "The caller's webhooks", body = WebhooksBody),
        (status = 401, response = Unauthorized),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let items = state
        .store
        .list_webhooks(caller.owner_id)
        .await?
        .iter()
        .map(WebhookBody::new)
        .collect();
    Ok(HttpResponse::Ok().json(WebhooksBody { items }))
}

/// `DELETE /v1/webhooks/{id}`: 204 once deleted.
#[utoipa::path(
    delete,
    path = "/v1/webhooks/{id}",
    tag = "webhooks",
    params(("id" = String, Path, description = "The webhook's ID")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such webhook of the caller's", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::WebhookNotFound(id.chars().take(20).collect());
    let webhook = id.parse::<i64>().map_err(|_| not_found())?;
    if !state.store.delete_webhook(caller.owner_id, webhook).await? {
        return Err(not_found());
    }
    changed(&state).await;
    Ok(HttpResponse::NoContent().finish())
}

/// After a webhook was created or deleted: this process's table is read again (its own link events follow at
/// once; other shorteners' within seconds, or at once for a click they cannot place), and every redirect is told
/// to read the owners taking click events again.
async fn changed(state: &AppState) {
    if let Err(error) = state.events.emitter.hooks.reload(&state.store).await {
        tracing::warn!(%error, "reloading the webhooks failed; they are read again within seconds");
    }
    state.announce_watchers().await;
}
