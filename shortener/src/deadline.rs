//! The request deadline: a request that is not answered within `--request-timeout-ms` (a dependency hangs or is
//! too slow) gets 503 `unavailable` with `Retry-After`, so clients never hang on a dead database. Handlers read
//! the instant as [`Deadline`] to bound what PostgreSQL itself may still do for the request.

use std::{
    future::{ready, Ready},
    time::Duration,
};

use actix_web::{
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    middleware::Next,
    web, FromRequest, HttpMessage as _, HttpRequest,
};
use tokio::time::Instant;

use crate::errors::ApiError;

/// How long before a request's deadline PostgreSQL must have given up on the request's statements: room for
/// the commit and the answer, so that what the client is told (created, or 503) is what happened.
const ANSWER_MARGIN: Duration = Duration::from_millis(150);

/// What PostgreSQL may spend on a request that must be answered by `deadline` (see [`ANSWER_MARGIN`]); `None`
/// when that is nothing.
pub fn server_budget(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .and_then(|left| left.checked_sub(ANSWER_MARGIN))
        .filter(|budget| !budget.is_zero())
}

/// The configured deadline, in app data.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout(pub Duration);

/// Middleware (`from_fn`) failing with [`ApiError::Unavailable`] when the handler outlives the deadline (its
/// work is dropped). It answers with an error rather than a response because the request itself belongs to
/// the handler until then.
///
/// # Errors
/// The deadline, or the inner service's error.
pub async fn enforce(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(timeout) = req.app_data::<web::Data<RequestTimeout>>().map(|t| t.0) else {
        return next.call(req).await;
    };
    // An import runs for as long as its file streams in (minutes for a million lines); each of its batches has
    // a bound of its own, and one import runs at a time.
    if req.path() == crate::import::route::PATH {
        return next.call(req).await;
    }
    let path = req.path().to_owned();
    let deadline = Instant::now() + timeout;
    req.extensions_mut().insert(Deadline(deadline));
    match tokio::time::timeout_at(deadline, next.call(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%path, "request deadline passed; answered 503");
            Err(ApiError::unavailable("a dependency").into())
        }
    }
}

/// When the request will be answered 503 if it is not answered before: work that may outlive the handler (a
/// statement running in PostgreSQL) must be bounded by it, or it could take effect after the client was told it
/// failed.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// What PostgreSQL may still spend on this request's statements (see [`server_budget`]).
    ///
    /// # Errors
    /// 503 when nothing is left.
    pub fn budget(self) -> Result<Duration, ApiError> {
        server_budget(self.0).ok_or_else(|| ApiError::unavailable("the database"))
    }
}

impl FromRequest for Deadline {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<Self>().copied().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!(
                "no request deadline: deadline::enforce is not installed"
            ))
        }))
    }
}
