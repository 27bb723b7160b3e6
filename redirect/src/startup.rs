//! Building the redirect (pools, Redis, listeners) and running it until shutdown.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{
    dev::Server, guard, http::header::HeaderValue, web, App, HttpRequest, HttpResponse, HttpServer,
};
use anyhow::Context as _;
use chrono::Utc;
use links::{cache::RedisCache, code, db, model::Target, store::Store};
use plumbing::{admin, metrics::HttpMetrics, shutdown::Shutdown};
use prometheus::{IntCounterVec, Opts, Registry};

use crate::{answer, config::RedirectArgs, lookup::Tiers};

/// What the handler shares.
pub struct RedirectState {
    /// The tiers behind a code.
    pub tiers: Tiers,
    /// `Cache-Control` of 301/308 answers, built once.
    pub permanent_max_age: HeaderValue,
}

/// The running redirect.
pub struct Application {
    port: u16,
    admin_port: u16,
    servers: Vec<Server>,
    cache: RedisCache,
}

impl Application {
    /// Connects, then binds both listeners (port 0 picks a free port).
    ///
    /// # Errors
    /// When the primary is unreachable at start or an address cannot be bound.
    pub async fn build(args: RedirectArgs) -> anyhow::Result<Self> {
        let options = args.database.pool_options();
        let primary_pool = db::pool(&args.database.database_url, "snowlink-redirect", options)
            .context("invalid --database-url (DATABASE_URL)")?;
        db::check(&primary_pool)
            .await
            .context("cannot reach PostgreSQL at --database-url (DATABASE_URL)")?;
        let mut replicas = Vec::new();
        for url in args.replica_urls.iter().filter(|url| !url.is_empty()) {
            let pool = db::pool(url, "snowlink-redirect", options)
                .context("invalid --replica-url (DATABASE_REPLICA_URL)")?;
            if let Err(error) = db::check(&pool).await {
                tracing::warn!(%error, "a read replica is not reachable yet; lookups skip it until it answers");
            }
            replicas.push(Store::new(pool));
        }
        let cache = RedisCache::connect(&args.redis.options())
            .await
            .context("invalid --redis-url (REDIS_URL)")?;

        let registry = Registry::new();
        let http_metrics = web::Data::new(HttpMetrics::register(&registry)?);
        let answered_by = IntCounterVec::new(
            Opts::new("redirect_lookups_total", "Lookups answered, by tier"),
            &["tier"],
        )?;
        let degraded = IntCounterVec::new(
            Opts::new(
                "redirect_degraded_total",
                "Dependency failures degraded around, by dependency",
            ),
            &["dependency"],
        )?;
        registry.register(Box::new(answered_by.clone()))?;
        registry.register(Box::new(degraded.clone()))?;

        let primary = Store::new(primary_pool);
        let tiers = Tiers::new(
            cache.clone(),
            replicas,
            primary.clone(),
            args.confirm_misses_on_primary,
            args.redis.clone(),
            Duration::from_secs(args.negative_ttl_secs),
            answered_by,
            degraded,
        );
        let permanent_max_age =
            HeaderValue::from_str(&format!("public, max-age={}", args.permanent_max_age_secs))?;
        let state = web::Data::new(RedirectState {
            tiers,
            permanent_max_age,
        });

        let listener = bind(&args.listen, args.reuse_port)
            .with_context(|| format!("cannot bind --listen {}", args.listen))?;
        let admin_listener = bind(&args.admin_listen, args.reuse_port)
            .with_context(|| format!("cannot bind --admin-listen {}", args.admin_listen))?;
        let port = listener.local_addr()?.port();
        let admin_port = admin_listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(http_metrics.clone())
                .wrap(actix_web::middleware::from_fn(plumbing::metrics::record))
                .route(
                    "/{code}",
                    web::route()
                        .guard(guard::Any(guard::Get()).or(guard::Head()))
                        .to(follow),
                )
                .default_service(web::to(|req: HttpRequest| async move {
                    answer::respond(&req, &Target::Unknown, &HeaderValue::from_static(""))
                }))
        })
        .disable_signals()
        .shutdown_timeout(10);
        if args.http_workers > 0 {
            server = server.workers(args.http_workers);
        }
        let api = server.listen(listener)?.run();

        let cache_for_ready = cache.clone();
        let readiness: admin::ReadinessCheck = Arc::new(move || {
            let (primary, cache) = (primary.clone(), cache_for_ready.clone());
            Box::pin(async move {
                // Ready while at least one backing tier answers: with Redis alone it still serves cached links.
                let database = db::check(primary.pool()).await.is_ok();
                let redis = cache.ping().await.is_ok();
                if database || redis {
                    Ok(())
                } else {
                    Err(vec!["postgresql".to_owned(), "redis".to_owned()])
                }
            })
        });
        let admin = admin::serve(admin_listener, registry, readiness)?;
        Ok(Self {
            port,
            admin_port,
            servers: vec![api, admin],
            cache,
        })
    }

    /// The public port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Serves until `shutdown`, then lets in-flight requests finish and closes Redis.
    ///
    /// # Errors
    /// When a server fails.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let served = admin::run_until_stopped(self.servers, shutdown).await;
        self.cache.quit().await;
        served
    }
}

/// `GET`/`HEAD /{code}`. Codes that cannot exist are 404 before any backend is asked.
async fn follow(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<RedirectState>,
) -> HttpResponse {
    let code = path.into_inner();
    if !code::is_plausible(&code) {
        return answer::respond(&req, &Target::Unknown, &state.permanent_max_age);
    }
    match state.tiers.resolve(&code).await {
        Ok(target) => answer::respond(&req, &target.at(Utc::now()), &state.permanent_max_age),
        Err(_) => answer::unavailable(&req),
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
