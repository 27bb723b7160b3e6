//! `GET /v1/urls/{code}/events`: the link's click events as they happen, as Server-Sent Events (`event: click`,
//! `id:` the event's id, `data:` the event as a webhook gets it), for the link's owner only; a comment line every
//! 15 s keeps proxies from closing a quiet stream.

use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{http::header, web, HttpResponse};

use crate::{
    auth::Caller,
    deadline::Deadline,
    errors::ApiError,
    live::{Refused, Subscription},
    routes::body::{ErrorBody, RateLimited, Unauthorized, Unavailable},
    state::AppState,
};

/// A quiet stream sends a comment this often.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Opens the stream.
///
/// # Errors
/// 404 for a link that is not the caller's, 429 past the bound on open streams, 503 when the database is down.
#[utoipa::path(
    get,
    path = "/v1/urls/{code}/events",
    tag = "links",
    params(("code" = String, Path, description = "The short code"), crate::routes::DomainQuery),
    responses(
        (status = 200, description = "Server-Sent Events: `event: click`, `id:` the event's id, `data:` the event \
            as a webhook gets it ({\"id\", \"type\", \"created_at\", \"data\"}); a comment line every 15 s", content_type = "text/event-stream", body = String),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such link of the caller's", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn events(
    state: web::Data<AppState>,
    caller: Caller,
    deadline: Deadline,
    at: crate::routes::LinkAt,
) -> Result<HttpResponse, ApiError> {
    state
        .store
        .find_owned(caller.owner_id, &at.key, deadline.budget()?)
        .await?
        .ok_or_else(|| at.not_found())?;
    let subscription = state
        .events
        .live
        .open(caller.owner_id, at.key.clone())
        .await
        .map_err(|_: Refused| ApiError::RateLimited(Duration::from_secs(5)))?;
    state.announce_watchers().await;
    let body =
        futures_util::stream::unfold(subscription, |mut subscription: Subscription| async move {
            let message = match tokio::time::timeout(KEEPALIVE, subscription.events.recv()).await {
                Ok(Some(message)) => message,
                Ok(None) => return None,
                Err(_) => Bytes::from_static(b": keepalive\n\n"),
            };
            Some((Ok::<_, ApiError>(message), subscription))
        });
    let opened =
        futures_util::stream::once(async { Ok::<_, ApiError>(Bytes::from_static(b": open\n\n")) });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(futures_util::StreamExt::chain(opened, body)))
}
