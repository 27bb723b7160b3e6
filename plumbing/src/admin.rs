//! The admin listener every service runs beside its API: `/metrics` (Prometheus text), `/healthz` (the process
//! answers) and `/readyz` (the instance can serve; the state of each dependency in its body and in
//! `dependency_up`). Kept on its own port so the API can be exposed without the metrics, and so a probe never
//! queues behind API traffic.

use std::{future::Future, net::TcpListener, pin::Pin, sync::Arc};

use actix_web::{dev::Server, web, App, HttpResponse, HttpServer};
use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::shutdown::Shutdown;

/// What a readiness check found.
#[derive(Debug, Default)]
pub struct Readiness {
    /// Why this instance cannot serve (`zookeeper_lease`, `task:NAME`): `/readyz` is 503 while there is any.
    pub blocking: Vec<String>,
    /// Whether each dependency answers (`postgresql`, `redis`, …). Reported, never a reason to be unready: every
    /// replica shares them, and taking every pod out of the Service because Redis is down turns a degraded
    /// service into an outage.
    pub dependencies: Vec<(String, bool)>,
}

/// What `/readyz` asks.
pub type ReadinessCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Readiness> + Send>> + Send + Sync>;

struct AdminState {
    registry: Registry,
    readiness: ReadinessCheck,
    dependency_up: IntGaugeVec,
}

/// Starts the admin server on an already bound listener. One worker: probes and scrapes are rare.
///
/// # Errors
/// When the listener cannot be handed to actix, or `dependency_up` is registered already.
pub fn serve(
    listener: TcpListener,
    registry: Registry,
    readiness: ReadinessCheck,
) -> std::io::Result<Server> {
    let dependency_up = IntGaugeVec::new(
        Opts::new(
            "dependency_up",
            "Whether a dependency answered the last readiness check (1) or not (0)",
        ),
        &["dependency"],
    )
    .and_then(|gauge| registry.register(Box::new(gauge.clone())).map(|()| gauge))
    .map_err(std::io::Error::other)?;
    let state = web::Data::new(AdminState {
        registry,
        readiness,
        dependency_up,
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
    let readiness = (state.readiness)().await;
    let mut dependencies = serde_json::Map::new();
    for (name, up) in &readiness.dependencies {
        state
            .dependency_up
            .with_label_values(&[name.as_str()])
            .set(i64::from(*up));
        dependencies.insert(name.clone(), if *up { "up" } else { "down" }.into());
    }
    let (mut answer, status) = if readiness.blocking.is_empty() {
        (HttpResponse::Ok(), "ready")
    } else {
        (HttpResponse::ServiceUnavailable(), "not_ready")
    };
    answer.json(serde_json::json!({
        "status": status,
        "failing": readiness.blocking,
        "dependencies": dependencies,
    }))
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
