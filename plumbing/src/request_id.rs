//! A request id and a span per API request, so that every log line a request causes (its handler, the calls it
//! makes, the error it ends in) can be found together. The id comes from `x-request-id` when a proxy set a sane
//! one, else it is made here; it is sent back in the answer either way.
//!
//! Not on the redirect: its hot path logs nothing per request, and a span per request is a cost it would pay
//! for no line.

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    error::InternalError,
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};
use tracing::Instrument as _;

/// The header read and answered.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id taken from a client; a longer one (or one with other characters) is replaced, since it lands in
/// every log line of the request.
const MAX_INCOMING_LEN: usize = 64;

/// Middleware (`from_fn`): the request runs inside a `request` span with `request_id`, `method` and `route`,
/// and its answer carries `x-request-id`. A handler's error is already its answer here (actix turns it into
/// one inside the handler); an inner middleware's error is turned into its answer inside the span too, so the
/// line that logs a failure names the request.
///
/// # Errors
/// An inner middleware's error, its answer made and carrying the id.
pub async fn trace(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = incoming(&req).unwrap_or_else(generate);
    let route = req.match_pattern();
    let span = tracing::info_span!(
        "request",
        request_id = %id.to_str().unwrap_or_default(),
        method = %req.method(),
        route = route.as_deref().unwrap_or("unmatched"),
    );
    match next.call(req).instrument(span.clone()).await {
        Ok(mut response) => {
            response.headers_mut().insert(HEADER, id);
            Ok(response)
        }
        Err(error) => {
            let mut answer = span.in_scope(|| error.error_response());
            answer.headers_mut().insert(HEADER, id);
            Err(InternalError::from_response(error, answer).into())
        }
    }
}

/// The client's (or proxy's) id, if it is short and made of safe characters.
fn incoming(req: &ServiceRequest) -> Option<HeaderValue> {
    let value = req.headers().get(HEADER)?;
    let text = value.to_str().ok()?;
    let sane = !text.is_empty()
        && text.len() <= MAX_INCOMING_LEN
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(&byte));
    sane.then(|| value.clone())
}

/// 16 random hex digits: unique enough to find one request's lines among a day's.
fn generate() -> HeaderValue {
    let id = format!("{:016x}", rand::random::<u64>());
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use actix_web::{http::StatusCode, middleware, test, web, App, HttpResponse};

    use super::*;

    /// Log lines written while a test runs.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    async fn answer(path: &str, id: Option<&str>) -> (StatusCode, String, String) {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = test::init_service(
            App::new()
                // Inside `trace`, as the shortener's deadline is.
                .wrap(middleware::from_fn(
                    |req: ServiceRequest, next: Next<_>| async move {
                        if req.path() == "/refused" {
                            return Err(actix_web::error::ErrorServiceUnavailable("refused"));
                        }
                        next.call(req).await
                    },
                ))
                .wrap(middleware::from_fn(trace))
                .route(
                    "/ok",
                    web::get().to(|| async {
                        tracing::info!("handled");
                        HttpResponse::Ok().finish()
                    }),
                )
                .route(
                    "/fails",
                    web::get().to(|| async {
                        Err::<HttpResponse, _>(actix_web::error::ErrorInternalServerError("boom"))
                    }),
                ),
        )
        .await;
        let mut request = test::TestRequest::get().uri(path);
        if let Some(id) = id {
            request = request.insert_header((HEADER, id));
        }
        // An error from a middleware becomes its answer in actix's dispatcher, as here.
        let (status, headers) = match test::try_call_service(&app, request.to_request()).await {
            Ok(response) => (response.status(), response.headers().clone()),
            Err(error) => {
                let response = error.error_response();
                (response.status(), response.headers().clone())
            }
        };
        let header = headers
            .get(HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let logged = String::from_utf8_lossy(&lines.0.lock().expect("lock")).into_owned();
        (status, header, logged)
    }

    #[actix_web::test]
    async fn a_sane_incoming_id_is_kept_answered_and_logged() {
        let (status, header, logged) = answer("/ok", Some("edge-42.a:b")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header, "edge-42.a:b");
        assert!(logged.contains("request_id=edge-42.a:b"), "{logged}");
        assert!(logged.contains("handled"), "{logged}");
    }

    #[actix_web::test]
    async fn an_id_too_long_or_odd_is_replaced_by_one_of_ours() {
        for hostile in ["x".repeat(65), "a b".into(), "a\"b".into()] {
            let (_, header, logged) = answer("/ok", Some(&hostile)).await;
            assert_eq!(header.len(), 16, "{header}");
            assert!(header.bytes().all(|byte| byte.is_ascii_hexdigit()));
            assert!(!logged.contains(&hostile), "{logged}");
        }
    }

    #[actix_web::test]
    async fn an_error_answer_carries_the_id_too() {
        let (status, header, _) = answer("/fails", Some("failing-1")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(header, "failing-1");
        let (status, header, _) = answer("/refused", Some("refused-1")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header, "refused-1");
    }
}
