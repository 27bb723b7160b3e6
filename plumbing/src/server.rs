//! The shape every service runs in: listeners bound first (so a bind error returns before any task or connection
//! exists), an API server and an admin server with the same settings everywhere, and a run that drains requests
//! before the service's own shutdown steps. Each service's `startup::build` is a list of named steps around it.

use std::{future::Future, net::TcpListener, pin::Pin, sync::Arc, time::Duration};

use actix_web::{
    body::MessageBody,
    dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse},
    App, HttpServer,
};
use anyhow::Context as _;
use prometheus::Registry;

use crate::{
    admin::{self, ReadinessCheck},
    shutdown::Shutdown,
    tasks::Supervisor,
    telemetry::{self, LogFormat},
};

/// How long in-flight API requests may take to finish once shutdown starts, in seconds.
const API_SHUTDOWN_TIMEOUT_SECS: u64 = 10;

/// Where and how a service listens; each service fills it from its own flags.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// API address (port 0 picks a free port).
    pub listen: String,
    /// Admin address (`/metrics`, `/healthz`, `/readyz`).
    pub admin_listen: String,
    /// HTTP worker threads (0: one per core).
    pub http_workers: usize,
    /// Share the API port with other processes (SO_REUSEPORT). Never the admin port: replicas configured alike
    /// would answer each other's probes and scrapes.
    pub reuse_port: bool,
}

/// Both listeners, bound.
pub struct Listeners {
    api: TcpListener,
    admin: TcpListener,
    http_workers: usize,
    tcp_user_timeout: Option<Duration>,
}

impl Listeners {
    /// Binds the API and admin addresses.
    ///
    /// # Errors
    /// An address that does not parse or cannot be bound, named by its flag.
    pub fn bind(options: &ListenOptions) -> anyhow::Result<Self> {
        let api = bind(&options.listen, options.reuse_port)
            .with_context(|| format!("cannot bind --listen {}", options.listen))?;
        let admin = bind(&options.admin_listen, false)
            .with_context(|| format!("cannot bind --admin-listen {}", options.admin_listen))?;
        Ok(Self {
            api,
            admin,
            http_workers: options.http_workers,
            tcp_user_timeout: None,
        })
    }

    /// API connections whose sent data has waited `timeout` for the client (unacknowledged, or held back by a
    /// closed receive window: a client that stopped reading) are dropped by the kernel (`TCP_USER_TIMEOUT`).
    /// Without it such a connection, answered zero-window probes and all, lives as long as the client likes,
    /// holding the socket's send buffer (megabytes) and the response's next chunk.
    #[must_use]
    pub fn with_tcp_user_timeout(mut self, timeout: Duration) -> Self {
        self.tcp_user_timeout = Some(timeout);
        self
    }
}

/// What a service does once its servers have drained: stop its tasks in order, close its clients.
pub type Stopping = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A started service: both servers accepting, background tasks running.
pub struct Application {
    port: u16,
    admin_port: u16,
    servers: Vec<Server>,
    stopping: Stopping,
}

impl Application {
    /// Starts the API server (`app` builds one `App` per worker) and the admin server on `listeners`.
    /// `/readyz` is 503 while `readiness` names something blocking or an essential task of `supervisor` has ended.
    /// `stopping` runs after the servers have drained.
    ///
    /// # Errors
    /// When actix cannot take a listener; `stopping` runs first, so no task outlives the error.
    pub async fn start<F, T, B>(
        listeners: Listeners,
        app: F,
        registry: Registry,
        readiness: ReadinessCheck,
        supervisor: &Supervisor,
        stopping: Stopping,
    ) -> anyhow::Result<Self>
    where
        F: Fn() -> App<T> + Send + Clone + 'static,
        T: ServiceFactory<
                ServiceRequest,
                Config = (),
                Response = ServiceResponse<B>,
                Error = actix_web::Error,
                InitError = (),
            > + 'static,
        B: MessageBody + 'static,
    {
        let readiness = with_tasks(readiness, supervisor.clone());
        let serve = move || -> anyhow::Result<(u16, u16, Vec<Server>)> {
            let port = listeners.api.local_addr()?.port();
            let admin_port = listeners.admin.local_addr()?.port();
            let user_timeout = listeners.tcp_user_timeout;
            let mut server = HttpServer::new(app)
                .on_connect(move |connection, _| set_user_timeout(connection, user_timeout))
                .disable_signals()
                .shutdown_timeout(API_SHUTDOWN_TIMEOUT_SECS);
            if listeners.http_workers > 0 {
                server = server.workers(listeners.http_workers);
            }
            let api = server.listen(listeners.api)?.run();
            let admin = admin::serve(listeners.admin, registry, readiness)?;
            Ok((port, admin_port, vec![api, admin]))
        };
        match serve() {
            Ok((port, admin_port, servers)) => Ok(Self {
                port,
                admin_port,
                servers,
                stopping,
            }),
            Err(error) => {
                supervisor.shutdown().trigger();
                stopping.await;
                Err(error)
            }
        }
    }

    /// The API port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Serves until `shutdown` (or until a server fails), lets in-flight requests finish, then runs the
    /// service's stopping steps.
    ///
    /// # Errors
    /// When a server fails.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let served = admin::run_until_stopped(self.servers, shutdown).await;
        self.stopping.await;
        served
    }
}

/// `readiness`, blocked also while an essential background task has ended.
fn with_tasks(readiness: ReadinessCheck, supervisor: Supervisor) -> ReadinessCheck {
    Arc::new(move || {
        let (check, dead) = (readiness(), supervisor.dead());
        Box::pin(async move {
            let mut readiness = check.await;
            readiness.blocking.extend(dead);
            readiness
        })
    })
}

/// The `main` of every service binary: logging, signals, `build`, one line saying where it listens, then serve
/// until SIGTERM or SIGINT.
///
/// # Errors
/// When `build` fails or a server fails.
pub async fn main<F, Fut>(
    service: &'static str,
    log_format: LogFormat,
    build: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<Application>>,
{
    // No per-request logging on hot paths at the default level.
    telemetry::init(log_format, "info");
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let app = build(shutdown.clone()).await?;
    tracing::info!(
        service,
        port = app.port(),
        admin_port = app.admin_port(),
        "listening"
    );
    app.run_until_stopped(shutdown).await?;
    Ok(())
}

/// Sets `TCP_USER_TIMEOUT` on a new API connection (see [`Listeners::with_tcp_user_timeout`]). A failure only
/// leaves the connection without it, so it is logged, not fatal.
fn set_user_timeout(connection: &dyn std::any::Any, timeout: Option<Duration>) {
    let (Some(timeout), Some(stream)) = (
        timeout,
        connection.downcast_ref::<actix_web::rt::net::TcpStream>(),
    ) else {
        return;
    };
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_user_timeout(Some(timeout)) {
        tracing::debug!(%error, "cannot set TCP_USER_TIMEOUT");
    }
}

/// Binds `address`; with `reuse_port`, several processes can share it (SO_REUSEPORT) and the kernel spreads
/// connections between them.
fn bind(address: &str, reuse_port: bool) -> std::io::Result<TcpListener> {
    if !reuse_port {
        return TcpListener::bind(address);
    }
    let address: std::net::SocketAddr = address
        .parse()
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(address)?;
    socket.listen(1024)?.into_std()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(listen: &str, admin_listen: &str) -> ListenOptions {
        ListenOptions {
            listen: listen.into(),
            admin_listen: admin_listen.into(),
            http_workers: 1,
            reuse_port: true,
        }
    }

    #[tokio::test]
    async fn two_processes_alike_share_the_api_port_but_not_the_admin_port() {
        let first = Listeners::bind(&options("127.0.0.1:0", "127.0.0.1:0")).expect("binds");
        let api = first.api.local_addr().expect("address");
        let admin = first.admin.local_addr().expect("address");
        let shared = Listeners::bind(&options(&api.to_string(), "127.0.0.1:0"));
        assert!(shared.is_ok(), "the API port is shared with SO_REUSEPORT");
        let error = Listeners::bind(&options("127.0.0.1:0", &admin.to_string()))
            .err()
            .expect("the admin port is not shared");
        assert!(format!("{error:#}").contains("--admin-listen"), "{error:#}");
    }
}
