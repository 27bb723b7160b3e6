//! The idgen HTTP service: `GET /v1/ids?count=N`, `GET /v1/ids/{id}` and `POST /v1/blocks?size=N` ([`blocks`])
//! on the API port, `/metrics`, `/healthz` and `/readyz` (ready only while a worker ID is leased) on the admin
//! port.

pub mod blocks;

use std::sync::Arc;

use actix_web::{http::StatusCode, middleware, web, App, HttpResponse};
use plumbing::{
    admin::{self, Readiness},
    http::{error_response, method_not_allowed},
    metrics::HttpMetrics,
    server::{Application, ListenOptions, Listeners, Startup},
    tasks::StopSequence,
};
use serde::Deserialize;

use anyhow::Context as _;

use crate::{
    blocks::Counter,
    config::IdgenArgs,
    generator::GenerateError,
    metrics::{BlockMetrics, IdgenMetrics},
    Generator,
};
use blocks::BlockLeases;

/// Most IDs one request may take.
pub const MAX_COUNT: usize = 10_000;

/// Every error code idgen answers with (the `code` of `{"error": {"code", "message"}}`), spelt once with its
/// status; the codes every service shares (405 and the like) are plumbing's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `count` is not an integer from 1 to [`MAX_COUNT`].
    InvalidCount,
    /// The path's ID is not a decimal ID of this layout.
    InvalidId,
    /// No worker ID is leased (or its recorded mark is not yet passed): temporary.
    NoWorkerLease,
    /// The clock went backwards or stalled: temporary.
    ClockUnreliable,
    /// The clock is outside the layout's time range.
    ClockOutOfRange,
    /// A block `size` that is not an integer from 1 to 1,000,000.
    InvalidSize,
    /// No block of the code counter can be leased now (ZooKeeper unreachable, or too many leases at once):
    /// temporary.
    CounterUnavailable,
}

impl ErrorCode {
    /// The code as the client reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidCount => "invalid_count",
            Self::InvalidId => "invalid_id",
            Self::NoWorkerLease => "no_worker_lease",
            Self::ClockUnreliable => "clock_unreliable",
            Self::ClockOutOfRange => "clock_out_of_range",
            Self::InvalidSize => "invalid_size",
            Self::CounterUnavailable => "counter_unavailable",
        }
    }

    /// The status every answer with this code has.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidCount | Self::InvalidId | Self::InvalidSize => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::NoWorkerLease
            | Self::ClockUnreliable
            | Self::ClockOutOfRange
            | Self::CounterUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The JSON error answer with this code.
    fn answer(self, message: &str) -> HttpResponse {
        error_response(self.status(), self.as_str(), message)
    }
}

/// Service settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// API address.
    #[arg(long, env = "IDGEN_LISTEN", default_value = "127.0.0.1:8082")]
    pub listen: String,
    /// Admin address (/metrics, /healthz, /readyz).
    #[arg(long, env = "IDGEN_ADMIN_LISTEN", default_value = "127.0.0.1:9082")]
    pub admin_listen: String,
    /// HTTP worker threads (0: one per core).
    #[arg(long, env = "IDGEN_HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,
    /// How it stops (SIGTERM, SIGINT).
    #[command(flatten)]
    pub drain: plumbing::drain::DrainArgs,
    /// Layout and lease.
    #[command(flatten)]
    pub idgen: IdgenArgs,
}

impl ServiceArgs {
    fn listen_options(&self) -> ListenOptions {
        ListenOptions {
            listen: self.listen.clone(),
            admin_listen: self.admin_listen.clone(),
            http_workers: self.http_workers,
            reuse_port: false,
            drain_delay: self.drain.delay(),
        }
    }
}

/// Binds both listeners (port 0 picks a free port), connects to the code counter, leases a worker ID and serves; the lease is released once
/// the stop signal has come and the API has drained (the lease keeper stops on its supervisor's token, which the
/// run triggers then: released at the signal, the drain delay would answer 503s).
///
/// # Errors
/// An address that cannot be bound, a bad layout, ZooKeeper unreachable, or no lease.
pub async fn build(args: ServiceArgs) -> anyhow::Result<Application> {
    let startup = Startup::new(Listeners::bind(&args.listen_options())?)?;
    let http_metrics = web::Data::new(HttpMetrics::register(&startup.registry)?);
    // Before the lease, so that a counter that cannot be reached leaves no worker ID held.
    let counter = Counter::connect(
        args.idgen.blocks()?.counter,
        BlockMetrics::register(&startup.registry)?,
    )
    .await
    .with_context(|| {
        format!(
            "cannot reach the code counter in ZooKeeper at {} (--zookeeper-connect)",
            args.idgen.zookeeper_connect
        )
    })?;
    let metrics = IdgenMetrics::register(&startup.registry)?;
    let leased = crate::start(&args.idgen, metrics, &startup.supervisor).await?;
    let readiness = readiness(Arc::clone(&leased.generator));
    let stopping = StopSequence::new().then(leased.keeper.stopped());
    let leases = web::Data::new(BlockLeases::new(counter));
    serve(
        startup,
        leased.generator,
        leases,
        http_metrics,
        readiness,
        stopping,
    )
    .await
}

/// Serves `GET /v1/ids` and `GET /v1/ids/{id}` from `generator`, `POST /v1/blocks` from `leases`.
async fn serve(
    startup: Startup,
    generator: Arc<Generator>,
    leases: web::Data<BlockLeases>,
    http_metrics: web::Data<HttpMetrics>,
    readiness: admin::ReadinessCheck,
    stopping: StopSequence,
) -> anyhow::Result<Application> {
    let generator = web::Data::from(generator);
    let app = move || {
        App::new()
            .app_data(generator.clone())
            .app_data(leases.clone())
            .app_data(http_metrics.clone())
            .app_data(plumbing::http::query_config())
            .wrap(middleware::from_fn(plumbing::metrics::record))
            .wrap(middleware::from_fn(plumbing::request_id::trace))
            // One resource per path, so another method is a 405 with `Allow`, not a 404.
            .service(
                web::resource("/v1/ids")
                    .route(web::get().to(take_ids))
                    .default_service(method_not_allowed("GET")),
            )
            .service(
                web::resource("/v1/ids/{id}")
                    .route(web::get().to(decode_id))
                    .default_service(method_not_allowed("GET")),
            )
            .service(
                web::resource("/v1/blocks")
                    .route(web::post().to(blocks::lease_block))
                    .default_service(method_not_allowed("POST")),
            )
    };
    startup.serve(app, readiness, stopping).await
}

/// `/readyz`: ready only while a worker ID is leased (ZooKeeper is reported up while the lease holds).
fn readiness(generator: Arc<Generator>) -> admin::ReadinessCheck {
    Arc::new(move || {
        let leased = generator.worker().is_some();
        Box::pin(async move {
            Readiness {
                blocking: if leased {
                    Vec::new()
                } else {
                    vec!["zookeeper_lease".to_owned()]
                },
                dependencies: vec![("zookeeper".to_owned(), leased)],
                details: Vec::new(),
            }
        })
    })
}

#[derive(Deserialize)]
struct TakeQuery {
    count: Option<String>,
}

async fn take_ids(generator: web::Data<Generator>, query: web::Query<TakeQuery>) -> HttpResponse {
    let count = match query.count.as_deref().map(str::parse::<usize>) {
        None => 1,
        Some(Ok(count)) if (1..=MAX_COUNT).contains(&count) => count,
        Some(_) => {
            return ErrorCode::InvalidCount
                .answer(&format!("count must be an integer from 1 to {MAX_COUNT}"))
        }
    };
    match generator.next_ids(count) {
        Ok(ids) => {
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            HttpResponse::Ok().json(serde_json::json!({ "ids": ids }))
        }
        Err(error) => generate_error(&error),
    }
}

/// The answer for an ID that could not be issued: 503 with `Retry-After`, since every cause is temporary.
pub fn generate_error(error: &GenerateError) -> HttpResponse {
    let code = match error {
        GenerateError::NotLeased | GenerateError::PastRecordedMark => ErrorCode::NoWorkerLease,
        GenerateError::ClockMovedBackwards { .. } | GenerateError::ClockStalled => {
            ErrorCode::ClockUnreliable
        }
        _ => ErrorCode::ClockOutOfRange,
    };
    retry_later(code.answer(&error.to_string()))
}

/// `response` with `Retry-After: 1`, for a temporary failure.
fn retry_later(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static("1"),
    );
    response
}

async fn decode_id(generator: web::Data<Generator>, path: web::Path<String>) -> HttpResponse {
    let decoded = path
        .parse::<u64>()
        .ok()
        .and_then(|id| generator.layout().decode(id).map(|decoded| (id, decoded)));
    let Some((id, decoded)) = decoded else {
        return ErrorCode::InvalidId.answer("id must be a decimal ID issued with this layout");
    };
    let timestamp = i64::try_from(decoded.unix_ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    HttpResponse::Ok().json(serde_json::json!({
        "id": id.to_string(),
        "timestamp": timestamp,
        "worker": decoded.worker,
        "sequence": decoded.sequence,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_id_that_cannot_be_issued_is_a_503_with_retry_after() {
        for (error, code) in [
            (GenerateError::NotLeased, "no_worker_lease"),
            (GenerateError::PastRecordedMark, "no_worker_lease"),
            (GenerateError::ClockStalled, "clock_unreliable"),
        ] {
            let response = generate_error(&error);
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(response
                .headers()
                .contains_key(actix_web::http::header::RETRY_AFTER));
            let body = actix_web::body::to_bytes(response.into_body())
                .await
                .expect("a body");
            let body = String::from_utf8_lossy(&body);
            assert!(body.contains(code), "{body}");
        }
    }
}
