//! HTTP request metrics (count and latency by route pattern, method and status) as actix middleware, so every
//! service reports the same series without code in its handlers. No label takes a value a request chose: routes
//! are the registered patterns (or `unmatched`), methods one of a fixed set (or `other`), statuses what we answer.

use std::time::Instant;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Latency buckets from 50 µs: the redirect's cached answers live well under a millisecond, a database round
/// trip around one.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5,
];

/// The request series of one service.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl HttpMetrics {
    /// Creates the series and registers them in `registry`.
    ///
    /// # Errors
    /// When series of the same name are already registered.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let labels = ["route", "method", "status"];
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &labels,
        )?;
        let buckets = LATENCY_BUCKETS.to_vec();
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer an HTTP request",
            )
            .buckets(buckets),
            &labels,
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self { requests, latency })
    }

    fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        let labels = [route, method, status.as_str()];
        self.requests.with_label_values(&labels).inc();
        self.latency.with_label_values(&labels).observe(seconds);
    }
}

/// The label of a request method. actix accepts any token as a method (`FOO1`, `FOO2`, …): labelled as sent,
/// each would add series to the process's memory and every scrape, for free and without a key.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware (`from_fn`) recording every request in the `HttpMetrics` found in app data.
///
/// # Errors
/// Passes on the inner service's error.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<actix_web::web::Data<HttpMetrics>>().cloned();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let outcome = next.call(req).await;
    if let Some(metrics) = metrics {
        // An error becomes its response later, in the dispatcher; count it with the status it will get.
        let status = match &outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        metrics.observe(
            &route,
            method,
            status.as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    outcome
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use actix_web::{http::Method, middleware::from_fn, test, web, App, HttpResponse};
    use prometheus::Registry;

    use super::{record, HttpMetrics};

    fn method_labels(registry: &Registry) -> BTreeSet<String> {
        registry
            .gather()
            .iter()
            .filter(|family| family.name() == "http_requests_total")
            .flat_map(|family| family.get_metric().iter())
            .flat_map(|metric| metric.get_label().iter())
            .filter(|label| label.name() == "method")
            .map(|label| label.value().to_owned())
            .collect()
    }

    #[actix_web::test]
    async fn invented_methods_share_one_series() {
        let registry = Registry::new();
        let metrics = HttpMetrics::register(&registry).expect("register");
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(metrics))
                .wrap(from_fn(record))
                .route("/", web::to(HttpResponse::Ok)),
        )
        .await;
        let invented = (0..50).map(|n| format!("FOO{n}"));
        for method in ["GET", "POST"]
            .into_iter()
            .map(str::to_owned)
            .chain(invented)
        {
            let method = Method::from_bytes(method.as_bytes()).expect("a method token");
            let request = test::TestRequest::default().method(method).uri("/");
            test::call_service(&app, request.to_request()).await;
        }
        let labels: Vec<_> = method_labels(&registry).into_iter().collect();
        assert_eq!(labels, ["GET", "POST", "other"]);
    }
}
