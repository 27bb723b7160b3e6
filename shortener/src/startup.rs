//! Building the shortener (pools, migrations, lease, listeners) and running it until shutdown.

use std::{net::TcpListener, sync::Arc, time::Duration};

use tokio::task::JoinHandle;

use actix_web::{dev::Server, http::StatusCode, middleware, web, App, HttpServer};
use anyhow::Context as _;
use idgen::{metrics::IdgenMetrics, LeaseKeeper};
use links::{cache::RedisCache, db, pool_metrics::PoolMetrics, store::Store};
use plumbing::{admin, http::error_response, metrics::HttpMetrics, shutdown::Shutdown};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::{
    cleanup::{Cleaner, CleanupMetrics, CleanupTask},
    config::ServeArgs,
    deadline::{self, RequestTimeout},
    group_insert::{self, GroupInserter, Inserters},
    key_cache::KeyOwners,
    leader::{Election, ElectionOptions},
    limits::RateLimits,
    routes,
    state::AppState,
};

/// How often rate limiters forget clients that have fully recovered.
const FORGET_IDLE_CLIENTS_EVERY: Duration = Duration::from_secs(60);

/// The running shortener.
pub struct Application {
    port: u16,
    admin_port: u16,
    servers: Vec<Server>,
    keeper: LeaseKeeper,
    cache: RedisCache,
    inserters: Inserters,
    key_listener: JoinHandle<()>,
    cleanup: Option<(Election, CleanupTask)>,
}

/// Connects to PostgreSQL, failing early with a message naming the flag, and applies pending migrations.
///
/// # Errors
/// When the database is unreachable or a migration fails.
pub async fn connect_and_migrate(database: &links::db::DatabaseArgs) -> anyhow::Result<Store> {
    let pool = db::pool(
        &database.database_url,
        "snowlink-shortener",
        database.pool_options(),
    )
    .context("invalid --database-url (DATABASE_URL)")?;
    db::check(&pool)
        .await
        .context("cannot reach PostgreSQL at --database-url (DATABASE_URL)")?;
    let applied = db::migrate(&pool)
        .await
        .context("database migration failed")?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    Ok(Store::new(pool))
}

impl Application {
    /// Connects, migrates, leases a worker ID and binds both listeners (port 0 picks a free port).
    ///
    /// # Errors
    /// When a dependency needed to start is unreachable or an address cannot be bound.
    pub async fn build(args: ServeArgs, shutdown: Shutdown) -> anyhow::Result<Self> {
        let blocklist = args.blocklist()?;
        let store = connect_and_migrate(&args.database).await?;
        let cache = RedisCache::connect(&args.redis.options())
            .await
            .context("invalid --redis-url (REDIS_URL)")?;
        let registry = Registry::new();
        let http_metrics = web::Data::new(HttpMetrics::register(&registry)?);
        let degraded = IntCounterVec::new(
            Opts::new(
                "shortener_degraded_total",
                "Dependency failures degraded around",
            ),
            &["dependency", "operation"],
        )?;
        registry.register(Box::new(degraded.clone()))?;
        let created = IntCounter::new(
            "shortener_links_created_total",
            "Links created and committed",
        )?;
        registry.register(Box::new(created.clone()))?;
        registry.register(Box::new(PoolMetrics::new(store.pool().clone(), "primary")?))?;
        let limits = Arc::new(args.rate_limits());
        tokio::spawn(forget_idle_clients(Arc::clone(&limits), shutdown.clone()));
        let leased = idgen::start(
            &args.idgen,
            IdgenMetrics::register(&registry)?,
            shutdown.clone(),
        )
        .await?;

        let listener = TcpListener::bind(&args.listen)
            .with_context(|| format!("cannot bind --listen {}", args.listen))?;
        let admin_listener = TcpListener::bind(&args.admin_listen)
            .with_context(|| format!("cannot bind --admin-listen {}", args.admin_listen))?;
        let port = listener.local_addr()?.port();
        let admin_port = admin_listener.local_addr()?.port();
        let cleanup = args
            .cleanup
            .enabled
            .then(|| start_cleanup(&args, &store, &cache, &registry, &shutdown))
            .transpose()?;

        let mut public_base_url = args.public_base_url.clone();
        if !public_base_url.path().ends_with('/') {
            public_base_url.set_path(&format!("{}/", public_base_url.path()));
        }
        let (inserter, inserters) = GroupInserter::start(
            store.clone(),
            args.insert_workers.into(),
            Duration::from_millis(args.request_timeout_ms),
            group_insert::rows_per_statement(&registry)?,
        );
        let key_owners = KeyOwners::new(Duration::from_secs(args.api_key_cache_secs));
        let key_listener = tokio::spawn(Arc::clone(&key_owners).listen(
            args.database.database_url.clone(),
            Duration::from_millis(args.database.database_connect_timeout_ms),
            shutdown.clone(),
        ));
        let state = web::Data::new(AppState {
            store: store.clone(),
            key_owners,
            inserter,
            cache: cache.clone(),
            ids: Arc::clone(&leased.generator),
            own_hosts: args.own_hosts(),
            public_base_url,
            redis: args.redis.clone(),
            blocklist,
            limits,
            allow_anonymous: args.allow_anonymous,
            created,
            degraded,
        });
        let timeout = web::Data::new(RequestTimeout(Duration::from_millis(
            args.request_timeout_ms,
        )));
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(http_metrics.clone())
                .app_data(plumbing::http::json_config())
                .app_data(plumbing::http::query_config())
                .app_data(timeout.clone())
                .wrap(middleware::from_fn(deadline::enforce))
                .wrap(middleware::from_fn(plumbing::metrics::record))
                .route("/v1/openapi.json", web::get().to(routes::openapi::serve))
                .route("/v1/urls", web::post().to(routes::urls::create))
                .route("/v1/urls", web::get().to(routes::owned::list))
                .service(
                    web::resource("/v1/urls/batch")
                        .app_data(plumbing::http::json_config().limit(routes::urls::MAX_BATCH_BODY))
                        .route(web::post().to(routes::urls::create_batch)),
                )
                .route("/v1/urls/{code}", web::get().to(routes::owned::get))
                .route("/v1/urls/{code}", web::delete().to(routes::owned::delete))
                .route("/v1/urls/{code}/qr", web::get().to(routes::qr::qr))
                .route("/v1/urls/{code}/hits", web::get().to(routes::hits::hits))
                .route("/", web::get().to(routes::web::index))
                .route("/static/{file}", web::get().to(routes::web::asset))
                .default_service(web::to(|| async {
                    error_response(StatusCode::NOT_FOUND, "not_found", "no such route")
                }))
        })
        .disable_signals()
        .shutdown_timeout(10);
        if args.http_workers > 0 {
            server = server.workers(args.http_workers);
        }
        let api = server.listen(listener)?.run();

        let generator = Arc::clone(&leased.generator);
        let readiness: admin::ReadinessCheck = Arc::new(move || {
            let (store, leased) = (store.clone(), generator.worker().is_some());
            Box::pin(async move {
                let mut failing = Vec::new();
                if db::check(store.pool()).await.is_err() {
                    failing.push("postgresql".to_owned());
                }
                if !leased {
                    failing.push("zookeeper_lease".to_owned());
                }
                if failing.is_empty() {
                    Ok(())
                } else {
                    Err(failing)
                }
            })
        });
        let admin = admin::serve(admin_listener, registry, readiness)?;
        Ok(Self {
            port,
            admin_port,
            servers: vec![api, admin],
            keeper: leased.keeper,
            cache,
            inserters,
            key_listener,
            cleanup,
        })
    }

    /// The API port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Serves until `shutdown`, then lets in-flight requests finish and their inserts drain, releases the worker ID, stops the cleanup
    /// (its batch in flight is finished, its election node deleted) and closes Redis.
    ///
    /// # Errors
    /// When a server fails.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let served = admin::run_until_stopped(self.servers, shutdown).await;
        self.inserters.stopped().await;
        let _ = self.key_listener.await;
        self.keeper.stopped().await;
        if let Some((election, task)) = self.cleanup {
            task.stopped().await;
            election.stopped().await;
        }
        self.cache.quit().await;
        served
    }
}

async fn forget_idle_clients(limits: Arc<RateLimits>, shutdown: Shutdown) {
    let mut every = tokio::time::interval(FORGET_IDLE_CLIENTS_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => limits.forget_idle(),
            () = shutdown.wait() => return,
        }
    }
}

/// Campaigns for the cleanup leadership and starts the task that purges while it is held.
fn start_cleanup(
    args: &ServeArgs,
    store: &Store,
    cache: &RedisCache,
    registry: &Registry,
    shutdown: &Shutdown,
) -> anyhow::Result<(Election, CleanupTask)> {
    let metrics = CleanupMetrics::register(registry)?;
    let election = Election::start(
        ElectionOptions {
            connect: args.idgen.zookeeper_connect.clone(),
            path: args.cleanup.cleanup_election_path.clone(),
            session_timeout: std::time::Duration::from_millis(args.idgen.session_timeout_ms),
            call_timeout: std::time::Duration::from_millis(args.idgen.zookeeper_timeout_ms),
        },
        metrics.leader.clone(),
        shutdown.clone(),
    );
    let cleaner = Cleaner::new(
        store.clone(),
        cache.clone(),
        args.cleanup.purge.cleanup_batch,
        metrics,
    );
    let task = CleanupTask::start(
        cleaner,
        election.subscribe(),
        args.cleanup.cleanup_interval,
        shutdown.clone(),
    );
    Ok((election, task))
}
