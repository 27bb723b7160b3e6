//! The request deadline: a request that is not answered within `--request-timeout-ms` (a dependency hangs or is
//! too slow) gets 503 `unavailable` with `Retry-After`, so clients never hang on a dead database.

use std::time::Duration;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};

use crate::errors::ApiError;

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
    let path = req.path().to_owned();
    match tokio::time::timeout(timeout, next.call(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%path, "request deadline passed; answered 503");
            Err(ApiError::unavailable("a dependency").into())
        }
    }
}
