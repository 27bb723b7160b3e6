//! Every error a client of the shortener can get, mapped in one place to the Contract's status and
//! `{"error": {"code", "message"}}` body. Unexpected failures are logged here, once, and answered opaquely.

use actix_web::{
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use links::{db::DbError, validate::Invalid};
use plumbing::http::error_response;

/// What went wrong, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer` key, or one that is not (or no longer) valid.
    #[error("a valid API key is required: send Authorization: Bearer <key>")]
    Unauthorized,
    /// A field broke a validation rule.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// A field other than the URL and alias is invalid.
    #[error("{message}")]
    InvalidField {
        /// The Contract's code, e.g. `expires_in_past`.
        code: &'static str,
        /// For a person.
        message: String,
    },
    /// The alias is used by another link.
    #[error("the alias {0:?} is already taken")]
    AliasTaken(String),
    /// No such link (or not the caller's).
    #[error("no link with code {0:?}")]
    NotFound(String),
    /// The caller is over a rate limit: retry after the given wait.
    #[error("too many requests; retry in {} s", crate::limits::retry_after_secs(*.0))]
    RateLimited(std::time::Duration),
    /// A dependency needed to answer is down: retry later.
    #[error("{0} is unavailable; retry shortly")]
    Unavailable(&'static str),
    /// Anything else: logged, answered as an opaque 500.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                Self::Unavailable("the database")
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl ApiError {
    /// The Contract's machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Invalid(invalid) => invalid.code(),
            Self::InvalidField { code, .. } => code,
            Self::AliasTaken(_) => "alias_taken",
            Self::NotFound(_) => "not_found",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Invalid(_) | Self::InvalidField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::AliasTaken(_) => StatusCode::CONFLICT,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(error) = self {
            tracing::error!(error = format!("{error:#}"), "request failed");
        }
        let mut response = error_response(self.status_code(), self.code(), &self.to_string());
        match self {
            Self::Unavailable(_) => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            Self::RateLimited(wait) => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(crate::limits::retry_after_secs(*wait)),
                );
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
