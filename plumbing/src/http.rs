//! The error body of every API (`{"error": {"code", "message"}}`, as the README and the shortener's OpenAPI
//! document describe it) and JSON extractor settings, shared so every service answers bad input the same way.

use actix_web::{error::JsonPayloadError, http::StatusCode, HttpResponse, HttpResponseBuilder};
use serde::Serialize;

/// The error codes of the answers made here, for a service's list of its codes to name rather than spell again.
pub mod code {
    /// 405: the path has no route for the method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 413: the body is over the limit.
    pub const BODY_TOO_LARGE: &str = "body_too_large";
    /// 415: the body is not sent as JSON.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// 400: the body is not valid JSON for the call.
    pub const MALFORMED_JSON: &str = "malformed_json";
    /// 400: the body could not be read.
    pub const MALFORMED_BODY: &str = "malformed_body";
    /// 422: the query string does not fit the call.
    pub const INVALID_QUERY: &str = "invalid_query";
}

/// Largest JSON request body any API accepts (413 above it).
pub const MAX_JSON_BODY: usize = 64 * 1024;

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

/// An error answer with the JSON error body. `code` is machine-readable snake_case, `message` is for a
/// person.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponseBuilder::new(status).json(ErrorBody {
        error: ErrorDetail { code, message },
    })
}

/// The default service of a resource: a method it has no route for answers 405 with `Allow` and the error
/// body (`method_not_allowed`), not the app's 404, since the path does exist. `allow` lists the resource's methods
/// as the header says them, e.g. `"GET, POST"`.
pub fn method_not_allowed(allow: &'static str) -> actix_web::Route {
    actix_web::web::to(move || async move {
        let mut response = error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            code::METHOD_NOT_ALLOWED,
            &format!("this path answers only {allow}"),
        );
        response.headers_mut().insert(
            actix_web::http::header::ALLOW,
            actix_web::http::header::HeaderValue::from_static(allow),
        );
        response
    })
}

/// Seconds for `Retry-After`: the wait rounded up, at least one (a client told 0 would retry at once).
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// JSON extractor configuration: body limit, and 400/413/415 answers in the error body's shape instead of
/// actix's plain-text defaults.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(MAX_JSON_BODY)
        .error_handler(|error, _req| {
            let response = match &error {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    code::BODY_TOO_LARGE,
                    &format!("the request body is larger than {MAX_JSON_BODY} bytes"),
                ),
                JsonPayloadError::ContentType => error_response(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    code::UNSUPPORTED_MEDIA_TYPE,
                    "send the body as JSON with Content-Type: application/json",
                ),
                JsonPayloadError::Deserialize(inner) => error_response(
                    StatusCode::BAD_REQUEST,
                    code::MALFORMED_JSON,
                    &format!("the body is not valid JSON for this call: {inner}"),
                ),
                _ => error_response(
                    StatusCode::BAD_REQUEST,
                    code::MALFORMED_BODY,
                    "the request body could not be read",
                ),
            };
            actix_web::error::InternalError::from_response(error, response).into()
        })
}

/// Query-string extractor configuration: a bad query is a 422 with the error body.
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default().error_handler(|error, _req| {
        let message = error.to_string();
        actix_web::error::InternalError::from_response(
            error,
            error_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                code::INVALID_QUERY,
                &message,
            ),
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2100)), 3);
    }
}
