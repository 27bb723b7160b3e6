//! The admin listener every service runs beside its API: `/metrics` (Prometheus text), `/healthz` (the process
//! answers) and `/readyz` (the instance can serve; the state of each dependency in its body and in
//! `dependency_up`; 503 `draining` once the service has been told to stop, see [`crate::drain`]). Kept on its own port so the API can be exposed without the metrics, and so a probe never
//! queues behind API traffic.

use std::{future::Future, net::TcpListener, pin::Pin, sync::Arc};

use actix_web::{dev::Server, web, App, HttpResponse, HttpServer};
use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::drain::Draining;

/// What a readiness check found.
#[derive(Debug, Default, Clone)]
pub struct Readiness {
    /// Why this instance cannot serve (`zookeeper_lease`, `task:NAME`): `/readyz` is 503 while there is any.
    pub blocking: Vec<String>,
    /// Whether each dependency answers (`postgresql`, `redis`, …). Reported, never a reason to be unready: every
    /// replica shares them, and taking every pod out of the Service because Redis is down turns a degraded
    /// service into an outage.
    pub dependencies: Vec<(String, bool)>,
    /// More for an operator, each a top-level key of the JSON body beside `dependencies` (`postgresql_primary`:
    /// which host is primary now; `redis_cluster`: whether Redis is a cluster). Never a reason to be unready;
    /// added keys only: the ones above are what probes and scripts already read, and they win a clash.
    pub details: Vec<(String, serde_json::Value)>,
}

/// What `/readyz` asks.
pub type ReadinessCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Readiness> + Send>> + Send + Sync>;

struct AdminState {
    registry: Registry,
    readiness: ReadinessCheck,
    dependency_up: IntGaugeVec,
    draining: Draining,
}

/// Starts the admin server on an already bound listener. One worker: probes and scrapes are rare. `/readyz` is
/// 503 `draining` once `draining` is set, whatever the checks say.
///
/// # Errors
/// When the listener cannot be handed to actix, or `dependency_up` is registered already.
pub fn serve(
    listener: TcpListener,
    registry: Registry,
    readiness: ReadinessCheck,
    draining: Draining,
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
        draining,
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .service(get_only("/metrics").route(web::get().to(metrics)))
            .service(get_only("/healthz").route(web::get().to(healthz)))
            .service(get_only("/readyz").route(web::get().to(readyz)))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(5)
    .listen(listener)?
    .run();
    Ok(server)
}

/// A path that answers GET only: other methods get 405 with `Allow`, as on the APIs.
fn get_only(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(crate::http::method_not_allowed("GET"))
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
    let mut readiness = (state.readiness)().await;
    // Draining is the instance's own reason not to be sent traffic; the dependencies are still reported.
    let draining = state.draining.is_draining();
    if draining {
        readiness.blocking.insert(0, "draining".to_owned());
    }
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
    } else if draining {
        (HttpResponse::ServiceUnavailable(), "draining")
    } else {
        (HttpResponse::ServiceUnavailable(), "not_ready")
    };
    let mut body = serde_json::Map::new();
    for (name, value) in readiness.details {
        body.insert(name, value);
    }
    body.insert("status".into(), status.into());
    body.insert("failing".into(), readiness.blocking.into());
    body.insert("dependencies".into(), dependencies.into());
    answer.json(body)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::{serve, Readiness, ReadinessCheck};
    use crate::drain::Draining;

    /// One raw HTTP/1.1 exchange: the admin port has no client of its own in this crate.
    async fn exchange(address: std::net::SocketAddr, method: &str, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer
    }

    async fn admin(readiness: Readiness) -> std::net::SocketAddr {
        admin_draining(readiness, Draining::default()).await
    }

    async fn admin_draining(readiness: Readiness, draining: Draining) -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        let check: ReadinessCheck = Arc::new(move || {
            let readiness = readiness.clone();
            Box::pin(async move { readiness })
        });
        let server = serve(listener, prometheus::Registry::new(), check, draining).expect("serve");
        tokio::spawn(server);
        address
    }

    #[actix_web::test]
    async fn a_dependency_down_is_reported_but_only_a_blocker_makes_it_not_ready() {
        let degraded = admin(Readiness {
            blocking: Vec::new(),
            dependencies: vec![("redis".into(), false), ("postgresql".into(), true)],
            details: vec![
                ("postgresql_primary".into(), "127.0.0.1:55433".into()),
                ("redis_cluster".into(), true.into()),
            ],
        })
        .await;
        let answer = exchange(degraded, "GET", "/readyz").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(r#""redis":"down""#), "{answer}");
        assert!(
            answer.contains(r#""postgresql_primary":"127.0.0.1:55433""#),
            "{answer}"
        );
        assert!(answer.contains(r#""redis_cluster":true"#), "{answer}");
        let metrics = exchange(degraded, "GET", "/metrics").await;
        assert!(
            metrics.contains(r#"dependency_up{dependency="redis"} 0"#),
            "{metrics}"
        );

        let blocked = admin(Readiness {
            blocking: vec!["zookeeper_lease".into()],
            ..Readiness::default()
        })
        .await;
        let answer = exchange(blocked, "GET", "/readyz").await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("zookeeper_lease"), "{answer}");
    }

    #[actix_web::test]
    async fn a_draining_service_is_not_ready_and_says_it_is_draining() {
        let draining = Draining::default();
        let address = admin_draining(
            Readiness {
                dependencies: vec![("redis".into(), true)],
                ..Readiness::default()
            },
            draining.clone(),
        )
        .await;
        assert!(exchange(address, "GET", "/readyz")
            .await
            .starts_with("HTTP/1.1 200"));

        draining.start();

        let answer = exchange(address, "GET", "/readyz").await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains(r#""status":"draining""#), "{answer}");
        assert!(answer.contains(r#""failing":["draining"]"#), "{answer}");
        assert!(answer.contains(r#""redis":"up""#), "{answer}");
        let health = exchange(address, "GET", "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    }

    #[actix_web::test]
    async fn another_method_on_an_admin_path_is_a_405_naming_get() {
        let address = admin(Readiness::default()).await;
        for path in ["/metrics", "/healthz", "/readyz"] {
            let answer = exchange(address, "POST", path).await;
            assert!(answer.starts_with("HTTP/1.1 405"), "{path}: {answer}");
            assert!(
                answer.to_ascii_lowercase().contains("allow: get"),
                "{answer}"
            );
        }
    }
}
