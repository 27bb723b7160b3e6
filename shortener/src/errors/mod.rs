//! Every error a client of the shortener can get, mapped in one place to its [`ErrorCode`] (which gives the
//! status) and the `{"error": {"code", "message"}}` body the OpenAPI document describes. An unexpected failure,
//! or a dependency's failure behind a 503, is logged with its whole chain of causes where it becomes an answer
//! ([`ApiError::log`]: the response, or one item of a batch), and answered opaquely: the causes never reach the
//! client.
//!
//! # Layout
//! - [`code`]: every error code, its wire string and its status.

pub mod code;

use actix_web::{
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use database::DbError;
use links::validate::Invalid;
use plumbing::chain::Chain;
use plumbing::http::error_response;

pub use self::code::ErrorCode;

/// What went wrong, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer` key, or one that is not (or no longer) valid.
    #[error("a valid API key is required: send Authorization: Bearer <key>")]
    Unauthorized,
    /// A field broke a validation rule.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A field, query parameter or body broke a rule that [`Invalid`] does not cover: 422.
    #[error("{message}")]
    InvalidField {
        /// Which rule, e.g. [`ErrorCode::ExpiresInPast`].
        code: ErrorCode,
        /// For a person.
        message: String,
    },
    /// The alias is used by another link.
    #[error("the alias {0:?} is already taken")]
    AliasTaken(String),
    /// The `Idempotency-Key` header is malformed, or sent by an anonymous caller.
    #[error("{0}")]
    InvalidIdempotencyKey(&'static str),
    /// The `Idempotency-Key` was used before with a different request.
    #[error("this Idempotency-Key was used with a different request in the last 24 hours; use a new key")]
    IdempotencyKeyReused,
    /// A request with the same `Idempotency-Key` is still being answered.
    #[error("a request with this Idempotency-Key is still being answered; retry shortly to get its answer")]
    IdempotencyKeyInFlight,
    /// No such link (or not the caller's).
    #[error("no link with code {0:?}")]
    NotFound(String),
    /// No such webhook (or not the caller's).
    #[error("no webhook with id {0:?}")]
    WebhookNotFound(String),
    /// The caller is over a rate limit: retry after the given wait.
    #[error("too many requests; retry in {} s", plumbing::http::retry_after_secs(*.0))]
    RateLimited(std::time::Duration),
    /// Too much of some expensive work (CSV exports) runs already: the caller's share of it (429
    /// `rate_limited`) or the whole process's (503 `unavailable`). Retry after the given wait.
    #[error("{message}")]
    Busy {
        /// Whether it is the caller's share (429) rather than the process's (503) that is full.
        per_caller: bool,
        /// For a person: what is full.
        message: String,
        /// When to try again.
        retry_after: std::time::Duration,
    },
    /// Another import runs in this process: imports run one at a time (each may write a million links).
    #[error("another import is running; imports run one at a time, retry when it has ended")]
    ImportBusy,
    /// A dependency needed to answer is down: retry later.
    #[error("{dependency} is unavailable; retry shortly")]
    Unavailable {
        /// What is down, as the client may read it: "the database".
        dependency: &'static str,
        /// Why, for the log only.
        #[source]
        cause: Option<anyhow::Error>,
    },
    /// Anything else: logged, answered as an opaque 500.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(_) => Self::unavailable_because("the database", error),
            // Inserts skip taken codes, so a duplicate reaching here raced the cleanup's purge of the same code
            // (its tombstone trigger), in a transaction that could not simply run the insert again. A retry meets
            // the tombstone and gets its 409; 5xx answers are never kept for an Idempotency-Key, so it may.
            other if other.is_unique_violation() => {
                Self::unavailable_because("the database", other)
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl ApiError {
    /// `dependency` is down, with no cause worth logging (a deadline that passed says it all).
    pub fn unavailable(dependency: &'static str) -> Self {
        Self::Unavailable {
            dependency,
            cause: None,
        }
    }

    /// `dependency` is down because of `cause`, which is logged with the answer.
    pub fn unavailable_because(dependency: &'static str, cause: impl Into<anyhow::Error>) -> Self {
        Self::Unavailable {
            dependency,
            cause: Some(cause.into()),
        }
    }

    /// Logs what only the operator may see: the causes of a 500, and of a 503 that has one. Call it once, where
    /// the error becomes an answer; `item` is the index of a batch item answered with it.
    pub fn log(&self, item: Option<usize>) {
        match self {
            Self::Internal(error) => {
                tracing::error!(item, error = %Chain(error.as_ref()), "request failed");
            }
            Self::Unavailable {
                dependency,
                cause: Some(cause),
            } => {
                tracing::warn!(item, dependency, error = %Chain(cause.as_ref()), "dependency unavailable");
            }
            _ => {}
        }
    }

    /// The machine-readable code of the answer, which also decides its status.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unauthorized => ErrorCode::Unauthorized,
            Self::Invalid(invalid) => invalid.into(),
            Self::InvalidField { code, .. } => *code,
            Self::AliasTaken(_) => ErrorCode::AliasTaken,
            Self::InvalidIdempotencyKey(_) => ErrorCode::InvalidIdempotencyKey,
            Self::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            Self::IdempotencyKeyInFlight => ErrorCode::IdempotencyKeyInFlight,
            Self::NotFound(_) | Self::WebhookNotFound(_) => ErrorCode::NotFound,
            Self::RateLimited(_)
            | Self::Busy {
                per_caller: true, ..
            } => ErrorCode::RateLimited,
            Self::Unavailable { .. } | Self::Busy { .. } => ErrorCode::Unavailable,
            Self::ImportBusy => ErrorCode::ImportBusy,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// The answer to a path no route has: 404 `not_found`, for the app's default service.
pub async fn no_such_route() -> HttpResponse {
    let code = ErrorCode::NotFound;
    error_response(code.status(), code.as_str(), "no such route")
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        self.log(None);
        let code = self.code();
        let mut response = error_response(code.status(), code.as_str(), &self.to_string());
        match self {
            Self::Unavailable { .. } | Self::IdempotencyKeyInFlight => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            Self::RateLimited(wait)
            | Self::Busy {
                retry_after: wait, ..
            } => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(plumbing::http::retry_after_secs(*wait)),
                );
            }
            Self::ImportBusy => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            }
            Self::Unauthorized => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use std::{error::Error as _, str::FromStr, sync::Arc};

    use actix_web::{body::to_bytes, ResponseError as _};
    use database::DbError;

    use super::ApiError;

    /// A real dependency error with text of its own: the parser's complaint about a bad port.
    fn dependency_error() -> tokio_postgres::Error {
        tokio_postgres::Config::from_str("postgres://localhost:notaport/db")
            .expect_err("the port does not parse")
    }

    /// The status and body the client gets for `error`.
    async fn answer(error: &ApiError) -> (u16, String) {
        let response = error.error_response();
        let status = response.status().as_u16();
        let body = to_bytes(response.into_body()).await.expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[test]
    fn an_internal_error_keeps_the_database_error_as_its_cause() {
        let error = ApiError::from(DbError::Config(Arc::new(dependency_error())));

        let db = error.source().expect("the DbError");
        let postgres = db.source().expect("the PostgreSQL error");

        assert!(postgres.is::<tokio_postgres::Error>(), "{postgres:?}");
    }

    #[tokio::test]
    async fn a_500_body_never_echoes_the_dependency() {
        let detail = dependency_error().to_string();
        let error = ApiError::from(DbError::Config(Arc::new(dependency_error())));

        let (status, body) = answer(&error).await;

        assert_eq!(status, 500);
        assert!(body.contains("\"internal\""), "{body}");
        assert!(!body.contains(&detail), "{body}");
    }

    #[tokio::test]
    async fn a_503_body_names_the_dependency_but_not_its_error() {
        let detail = dependency_error().to_string();
        let error = ApiError::from(DbError::from(dependency_error()));

        let (status, body) = answer(&error).await;

        assert_eq!(status, 503);
        assert!(body.contains("the database is unavailable"), "{body}");
        assert!(!body.contains(&detail), "{body}");
    }
}
