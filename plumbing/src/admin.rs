//! The admin listener every service runs beside its API: `/metrics` (Prometheus text), `/healthz` (the process
//! answers) and `/readyz` (its dependencies answer). Kept on its own port so the API can be exposed without the
//! metrics, and so a probe never queues behind API traffic.

use std::{future::Future, net::TcpListener, pin::Pin, sync::Arc};

use actix_web::{dev::Server, web, App, HttpResponse, HttpServer};
use prometheus::{Encoder, Registry, TextEncoder};

use crate::shutdown::Shutdown;

/// What `/readyz` asks: `Ok` when every dependency answers, otherwise the names of those that do not.
pub type ReadinessCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), Vec<String>>> + Send>> + Send + Sync>;

struct AdminState {
    registry: Registry,
    readiness: ReadinessCheck,
}

/// Starts the admin server on an already bound listener. One worker: probes and scrapes are rare.
///
/// # Errors
/// When the listener cannot be handed to actix.
pub fn serve(
    listener: TcpListener,
    registry: Registry,
    readiness: ReadinessCheck,
) -> std::io::Result<Server> {
    let state = web::Data::new(AdminState {
        registry,
        readiness,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(metrics))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok(server)
}

async fn metrics(state: web::Data<AdminState>) -> HttpResponse {
    let mut buffer = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&state.registry.gather(), &mut buffer) {
        Ok(()) => HttpResponse::Ok()
            .content_type(encoder.format_type())
            .body(buffer),
        Err(error) => {
            tracing::error!(%error, "cannot encode metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

async fn readyz(state: web::Data<AdminState>) -> HttpResponse {
    match (state.readiness)().await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({"status": "ready"})),
        Err(failing) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"status": "not_ready", "failing": failing})),
    }
}

/// Runs servers until `shutdown` triggers or one of them fails, then stops them all gracefully (in-flight
/// requests finish, bounded by each server's shutdown timeout) and triggers `shutdown` so background tasks stop
/// too.
///
/// # Errors
/// The first error a server failed with.
pub async fn run_until_stopped(servers: Vec<Server>, shutdown: Shutdown) -> std::io::Result<()> {
    let handles: Vec<_> = servers.iter().map(Server::handle).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for server in servers {
        tasks.spawn(server);
    }
    let mut result = Ok(());
    loop {
        tokio::select! {
            () = shutdown.wait() => break,
            joined = tasks.join_next() => match joined {
                None => break,
                Some(joined) => if let Err(error) = flatten(joined) {
                    result = Err(error);
                    break;
                },
            },
        }
    }
    shutdown.trigger();
    for handle in &handles {
        handle.stop(true).await;
    }
    while let Some(joined) = tasks.join_next().await {
        if let (Err(error), true) = (flatten(joined), result.is_ok()) {
            result = Err(error);
        }
    }
    result
}

fn flatten(joined: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    joined
        .map_err(std::io::Error::other)
        .and_then(|served| served)
}
