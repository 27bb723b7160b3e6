//! The shape every service runs in: listeners bound first (so a bind error returns before any task or connection
//! exists), an API server and an admin server with the same settings everywhere, and a run that drains requests
//! before the service's own stop sequence (the order is [`crate::drain`]'s).
//!
//! Each service's `startup::build(args)` is a list of named steps between [`Startup::new`] and
//! [`Startup::serve`]: connect, start tasks, state, serve. `build` takes no token: the stop token belongs to
//! [`Application::run_until_stopped`], which a signal triggers ([`main`]). The background tasks stop on the
//! token of the service's [`Supervisor`] instead (see [`crate::tasks`]), which the run triggers once the API has
//! drained, so a lease, a cache subscription or a hit counter outlives every request that needs it.

use std::{future::Future, net::TcpListener, sync::Arc, time::Duration};

use actix_web::{
    body::MessageBody,
    dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse},
    App, HttpServer,
};
use anyhow::Context as _;
use prometheus::Registry;

use crate::{
    admin::{self, ReadinessCheck},
    drain::Draining,
    shutdown::Shutdown,
    tasks::{StopSequence, Supervisor},
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
    /// How long the API keeps serving once the stop signal came, with `/readyz` at 503 (see [`crate::drain`]).
    pub drain_delay: Duration,
}

/// Both listeners, bound.
pub struct Listeners {
    api: TcpListener,
    admin: TcpListener,
    http_workers: usize,
    drain_delay: Duration,
    tcp_user_timeout: Option<Duration>,
    half_closed_ends: bool,
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
            drain_delay: options.drain_delay,
            tcp_user_timeout: None,
            half_closed_ends: false,
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

    /// An HTTP/1 client that closes its side of the connection has gone: a streaming answer (the shortener's live
    /// visit stream) ends then, instead of running on, holding its place in a bound, until a write fails. Not for
    /// every service: a client that half-closes and still waits for its answer (rare, but HTTP allows it) would
    /// lose it.
    #[must_use]
    pub fn ending_half_closed(mut self) -> Self {
        self.half_closed_ends = true;
        self
    }
}

/// What every service's `build` starts from: its listeners bound, its metrics registry, and the supervisor of
/// its background tasks.
pub struct Startup {
    listeners: Listeners,
    /// Where the service's series go; `/metrics` serves it.
    pub registry: Registry,
    /// Spawns the background tasks; they stop on its token, once the API has drained.
    pub supervisor: Supervisor,
}

impl Startup {
    /// A start on `listeners`, with an empty registry and a supervisor of its own.
    ///
    /// # Errors
    /// When the supervisor's series cannot be registered.
    pub fn new(listeners: Listeners) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let supervisor = Supervisor::new(&registry)?;
        Ok(Self {
            listeners,
            registry,
            supervisor,
        })
    }

    /// Starts the API server (`app` builds one `App` per worker) and the admin server. `/readyz` is 503 while
    /// `readiness` names something blocking or an essential task has ended. Once the API has drained, the
    /// supervisor's token triggers and `stopping` runs.
    ///
    /// # Errors
    /// When actix cannot take a listener; the tasks are stopped first, so none outlives the error.
    pub async fn serve<F, T, B>(
        self,
        app: F,
        readiness: ReadinessCheck,
        stopping: StopSequence,
    ) -> anyhow::Result<Application>
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
        <T as ServiceFactory<ServiceRequest>>::Service: 'static,
    {
        let Self {
            listeners,
            registry,
            supervisor,
        } = self;
        let readiness = with_tasks(readiness, supervisor.clone());
        let draining = Draining::default();
        let drain_delay = listeners.drain_delay;
        let serve = |draining: Draining| -> anyhow::Result<(u16, u16, Server, Server)> {
            let port = listeners.api.local_addr()?.port();
            let admin_port = listeners.admin.local_addr()?.port();
            let admin = admin::serve(listeners.admin, registry, readiness, draining.clone())?;
            let user_timeout = listeners.tcp_user_timeout;
            let half_closed_ends = listeners.half_closed_ends;
            let mut server = HttpServer::new(move || app().wrap(draining.close_connections()))
                .on_connect(move |connection, _| set_user_timeout(connection, user_timeout))
                .disable_signals()
                .h1_allow_half_closed(!half_closed_ends)
                .shutdown_timeout(API_SHUTDOWN_TIMEOUT_SECS);
            if listeners.http_workers > 0 {
                server = server.workers(listeners.http_workers);
            }
            let api = server.listen(listeners.api)?.run();
            Ok((port, admin_port, api, admin))
        };
        match serve(draining.clone()) {
            Ok((port, admin_port, api, admin)) => Ok(Application {
                port,
                admin_port,
                api,
                admin,
                drain_delay,
                draining,
                supervisor,
                stopping,
            }),
            Err(error) => {
                supervisor.stop(stopping).await;
                Err(error)
            }
        }
    }
}

/// A started service: both servers accepting, background tasks running.
pub struct Application {
    port: u16,
    admin_port: u16,
    api: Server,
    admin: Server,
    drain_delay: Duration,
    draining: Draining,
    /// Stops the background tasks once the API has drained.
    supervisor: Supervisor,
    stopping: StopSequence,
}

impl Application {
    /// The API port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Serves until `shutdown` (or until a server fails), then stops in [`crate::drain`]'s order: `/readyz`
    /// turns 503 and the API serves on for the drain delay (none after a server failure), stops accepting and
    /// lets in-flight requests finish; then the background tasks stop and the service's stopping steps run; the
    /// admin server stops last. `shutdown` is triggered on the way, whatever ended the run.
    ///
    /// # Errors
    /// When a server fails.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let Self {
            api,
            admin,
            drain_delay,
            draining,
            supervisor,
            stopping,
            ..
        } = self;
        let (api_handle, admin_handle) = (api.handle(), admin.handle());
        let mut servers = tokio::task::JoinSet::new();
        servers.spawn(api);
        servers.spawn(admin);
        let mut result = Ok(());
        tokio::select! {
            () = shutdown.wait() => {
                draining.start();
                tracing::info!(
                    drain_delay_ms = drain_delay.as_millis(),
                    "draining: /readyz answers 503, the API serves on for the drain delay"
                );
                tokio::select! {
                    () = tokio::time::sleep(drain_delay) => {}
                    Some(joined) = servers.join_next() => result = flatten(joined),
                }
            }
            Some(joined) = servers.join_next() => result = flatten(joined),
        }
        draining.start();
        shutdown.trigger();
        api_handle.stop(true).await;
        tracing::info!("API drained; stopping background tasks");
        supervisor.stop(stopping).await;
        admin_handle.stop(true).await;
        while let Some(joined) = servers.join_next().await {
            if let (Err(error), true) = (flatten(joined), result.is_ok()) {
                result = Err(error);
            }
        }
        result
    }
}

fn flatten(joined: Result<std::io::Result<()>, tokio::task::JoinError>) -> std::io::Result<()> {
    joined
        .map_err(std::io::Error::other)
        .and_then(|served| served)
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

/// The `main` of every service binary: logging, signals, `build` (the service's `startup::build(args)`, not yet
/// awaited), one line saying where it listens, then serve until SIGTERM or SIGINT.
///
/// # Errors
/// When `build` fails or a server fails.
pub async fn main(
    service: &'static str,
    log_format: LogFormat,
    build: impl Future<Output = anyhow::Result<Application>>,
) -> anyhow::Result<()> {
    // No per-request logging on hot paths at the default level.
    telemetry::init(log_format, "info");
    let shutdown = Shutdown::new();
    shutdown.trigger_on_signals();
    let app = build.await?;
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
    use std::{
        sync::atomic::{AtomicBool, Ordering},
        time::Instant,
    };

    use actix_web::web;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::admin::Readiness;

    /// One raw HTTP/1.1 request; an error when the port no longer accepts.
    async fn exchange(port: u16, path: &str) -> std::io::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut answer = vec![0; 4096];
        let read = stream.read(&mut answer).await?;
        if read == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(String::from_utf8_lossy(&answer[..read]).into_owned())
    }

    #[actix_web::test]
    async fn after_the_stop_signal_readyz_is_503_while_the_api_serves_for_the_drain_delay_and_tasks_stop_last(
    ) {
        let drain_delay = Duration::from_secs(1);
        let listeners = Listeners::bind(&ListenOptions {
            reuse_port: false,
            drain_delay,
            ..options("127.0.0.1:0", "127.0.0.1:0")
        })
        .expect("binds");
        let startup = Startup::new(listeners).expect("registers");
        let background = startup.supervisor.shutdown().clone();
        let stopped = Arc::new(AtomicBool::new(false));
        let stopping = StopSequence::new().then({
            let (background, stopped) = (background.clone(), Arc::clone(&stopped));
            async move { stopped.store(background.is_triggered(), Ordering::SeqCst) }
        });
        let readiness: ReadinessCheck = Arc::new(|| Box::pin(async { Readiness::default() }));
        let app = startup
            .serve(
                || App::new().route("/", web::get().to(|| async { "ok" })),
                readiness,
                stopping,
            )
            .await
            .expect("starts");
        let (api, admin) = (app.port(), app.admin_port());
        let stop = Shutdown::new();
        let run = tokio::spawn(app.run_until_stopped(stop.clone()));
        let ready = exchange(admin, "/readyz").await.expect("admin answers");
        assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
        let served = exchange(api, "/").await.expect("API answers");
        assert!(
            !served.to_ascii_lowercase().contains("connection: close"),
            "{served}"
        );

        let signalled = Instant::now();
        stop.trigger();

        let mut readyz = String::new();
        while signalled.elapsed() < drain_delay && !readyz.starts_with("HTTP/1.1 503") {
            readyz = exchange(admin, "/readyz").await.expect("admin answers");
        }
        assert!(readyz.contains(r#""status":"draining""#), "{readyz}");
        let mut last_served = None;
        while signalled.elapsed() < Duration::from_secs(30) {
            let tasks_stopped = background.is_triggered();
            match exchange(api, "/").await {
                Ok(answer) => {
                    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
                    assert!(
                        answer.to_ascii_lowercase().contains("connection: close"),
                        "{answer}"
                    );
                    assert!(
                        !tasks_stopped,
                        "the background tasks stopped while the API served"
                    );
                    last_served = Some(signalled.elapsed());
                }
                Err(_) => break,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let last_served = last_served.expect("the API served after the stop signal");
        assert!(
            last_served >= drain_delay - Duration::from_millis(100),
            "the API stopped serving {last_served:?} after the signal, before the drain delay"
        );
        run.await.expect("joins").expect("stops cleanly");
        assert!(
            stopped.load(Ordering::SeqCst),
            "stopping ran after the tasks' token triggered"
        );
    }

    fn options(listen: &str, admin_listen: &str) -> ListenOptions {
        ListenOptions {
            listen: listen.into(),
            admin_listen: admin_listen.into(),
            http_workers: 1,
            reuse_port: true,
            drain_delay: Duration::ZERO,
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
