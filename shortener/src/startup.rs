//! Building the shortener as a list of named steps (listeners, connections, background tasks, state, serve) and
//! the order it stops in.

use std::{sync::Arc, time::Duration};

use actix_web::{middleware, web, App};
use anyhow::Context as _;
use database::{failover::PrimaryGauge, pool_metrics::PoolMetrics};
use idgen::{metrics::IdgenMetrics, Generator, LeasedGenerator};
use links::{cache::RedisCache, store::Store, validate::Blocklist};
use plumbing::{
    admin::{self, Readiness},
    breaker::BackendSeries,
    http::method_not_allowed,
    metrics::HttpMetrics,
    server::{Application, Listeners, Startup},
    tasks::{Need, StopSequence, Supervisor, Task},
};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};

use crate::{
    cleanup::{Cleaner, CleanupMetrics, CleanupTask},
    codes::{self, CodeStyle, Minter},
    config::ServeArgs,
    deadline::{self, RequestTimeout},
    group_insert::{self, GroupInserter},
    hashing::PasswordHasher,
    key_cache::KeyOwners,
    leader::{Election, ElectionOptions},
    limits::RateLimits,
    outbox::Invalidations,
    routes,
    state::AppState,
    stores,
};

/// How often rate limiters forget clients that have fully recovered.
const FORGET_IDLE_CLIENTS_EVERY: Duration = Duration::from_secs(60);

/// Binds both listeners (port 0 picks a free port), connects, migrates, leases a worker ID, starts the
/// background tasks and serves. The background tasks stop on their supervisor's token, which the run triggers
/// once the stop signal has come and the API has drained (released at the signal, the lease would fail the
/// creates of the drain delay). Then queued inserts finish, the worker ID is released, the cleanup stops (its
/// batch in flight finished, its election node deleted) and Redis is closed.
///
/// # Errors
/// When an address cannot be bound or a dependency needed to start is unreachable.
pub async fn build(args: ServeArgs) -> anyhow::Result<Application> {
    // A client that stops reading an export loses the connection too, not only the export (see exports).
    let listeners = Listeners::bind(&args.listen_options())?
        .with_tcp_user_timeout(args.exports.export_idle_timeout)
        .ending_half_closed();
    let blocklist = args.blocklist()?;
    let startup = Startup::new(listeners)?;
    let connections = connect(&args, &startup.registry).await?;
    let (shared, stopping) = start_tasks(&args, &connections, &startup).await?;
    let sender = Arc::new(crate::webhooks::send::Sender::new(
        args.allow_private_webhooks,
        crate::webhooks::send::DELIVERY_TIMEOUT,
    )?);
    let events = crate::delivery::start(
        &args.delivery,
        &args.redis.options(),
        (&connections.store, &connections.cache),
        sender.clone(),
        &startup.supervisor,
        &startup.registry,
    )
    .await?;
    let state = state(
        &args,
        connections,
        shared,
        blocklist,
        &startup.registry,
        (sender, events),
    )?;
    let readiness = readiness(&state, PrimaryGauge::register(&startup.registry)?);
    serve(startup, &args, state, readiness, stopping).await
}

/// The shortener's clients: PostgreSQL (migrated, or waited for) and Redis, and the code key it agreed with.
struct Connections {
    /// The primary.
    store: Store,
    /// Where search, stats and exports read.
    reads: Store,
    /// Written through on create, told of invalidations.
    cache: RedisCache,
    /// The code key, checked against the database's fingerprint; `None` when none is given.
    code_key: Option<links::code::CodeKey>,
    /// The registered domains, the default one recorded.
    domains: links::domain::Domains,
}

/// Connects to PostgreSQL and Redis, and registers the pools' series.
///
/// # Errors
/// When a dependency needed to start is unreachable or a migration fails.
async fn connect(args: &ServeArgs, registry: &Registry) -> anyhow::Result<Connections> {
    let store = stores::connect(&args.database, args.migrate).await?;
    let code_key = args.code_key.key()?;
    if let Some(key) = &code_key {
        codes::check_key(&store, key).await?;
    }
    let cache = RedisCache::connect(&args.redis.options())
        .await
        .context("invalid --redis-url (REDIS_URL)")?;
    links::cache::register_cluster_gauge(registry, cache.is_clustered())?;
    let reads = stores::reads_store(args, &store)?;
    let mut pools = PoolMetrics::new(store.pool().clone(), "primary")?;
    if !args.replica_urls.is_empty() {
        pools = pools.and(reads.pool().clone(), "replica");
    }
    registry.register(Box::new(pools))?;
    let domains = default_domain(args, &store).await?;
    Ok(Connections {
        store,
        reads,
        cache,
        code_key,
        domains,
    })
}

/// Records the public base URL's host as the default domain and loads the domains.
///
/// # Errors
/// When the database fails.
async fn default_domain(args: &ServeArgs, store: &Store) -> anyhow::Result<links::domain::Domains> {
    let base = args.public_base_url();
    let host = base
        .host_str()
        .and_then(links::domain::normalize_host)
        .context("--public-base-url has no host a domain can have")?;
    store
        .record_default_domain(&host)
        .await
        .context("recording the default domain")?;
    let domains = links::domain::Domains::default();
    domains.reload(store).await.context("loading the domains")?;
    Ok(domains)
}

/// What the background tasks share with the handlers (each as [`AppState`] says).
struct Shared {
    /// Issues while the lease keeper holds the worker ID.
    ids: Arc<Generator>,
    /// The codes of new links.
    codes: Minter,
    /// Swept of idle clients every minute.
    limits: Arc<RateLimits>,
    /// Its budgets swept with the limits.
    passwords: Arc<PasswordHasher>,
    /// Queues to the inserter tasks.
    inserter: GroupInserter,
    /// Dropped by the key listener whenever a key changes.
    key_owners: Arc<KeyOwners>,
    /// Retried by the outbox task while Redis fails.
    invalidations: Invalidations,
}

/// Leases a worker ID and starts every background task; returns what they share with the handlers and the
/// order they stop in: the queued inserts, the key listener, the lease, the cleanup and its election, the
/// outbox, and Redis last.
///
/// # Errors
/// When the lease cannot be taken or a series cannot be registered.
async fn start_tasks(
    args: &ServeArgs,
    connections: &Connections,
    startup: &Startup,
) -> anyhow::Result<(Shared, StopSequence)> {
    let (registry, supervisor) = (&startup.registry, &startup.supervisor);
    let metrics = IdgenMetrics::register(registry)?;
    let LeasedGenerator { generator, keeper } =
        idgen::start(&args.idgen, metrics, supervisor).await?;
    let (codes, announcer) = start_codes(args, connections, registry, supervisor).await?;
    let (limits, passwords) = start_forgetting_idle(args, registry, supervisor)?;
    let shutdown = supervisor.shutdown().clone();
    let reload = connections
        .domains
        .clone()
        .keep_loaded(
            connections.store.clone(),
            async move { shutdown.wait().await },
        );
    let _domains = supervisor.spawn("domain_reloader", Need::Optional, reload);
    let (election, cleanup) = args
        .cleanup
        .enabled
        .then(|| start_cleanup(args, connections, registry, supervisor))
        .transpose()?
        .unzip();
    let (inserter, inserters) = GroupInserter::start(
        connections.store.clone(),
        args.insert_workers.into(),
        direct_batches(args.database.database_pool_size, args.insert_workers.into()),
        Duration::from_millis(args.insert_linger_ms),
        group_insert::rows_per_statement(registry)?,
        supervisor,
    );
    let (key_owners, key_listener) = start_key_listener(args, registry, supervisor)?;
    let invalidations = Invalidations::register(
        connections.store.clone(),
        connections.cache.clone(),
        registry,
    )?;
    let outbox = invalidations.start_retrying(supervisor);
    let cache = connections.cache.clone();
    let stopping = StopSequence::new()
        .then(inserters.stopped())
        .then_each(key_listener.map(Task::stopped))
        .then(keeper.stopped())
        .then_each(announcer)
        .then_each(cleanup.map(CleanupTask::stopped))
        .then_each(election.map(Election::stopped))
        .then(outbox.stopped())
        .then(async move { cache.quit().await });
    let shared = Shared {
        ids: generator,
        codes,
        limits,
        passwords,
        inserter,
        key_owners,
        invalidations,
    };
    Ok((shared, stopping))
}

/// Waits until the block announcer and the refill of blocks have stopped.
type CodesStopped = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// What makes the codes of new links: for compact codes, the blocks of the code counter (the first one leased
/// now) and the task announcing them.
///
/// # Errors
/// Compact codes without a key, or no block leased.
async fn start_codes(
    args: &ServeArgs,
    connections: &Connections,
    registry: &Registry,
    supervisor: &Supervisor,
) -> anyhow::Result<(Minter, Option<CodesStopped>)> {
    if args.code_style == CodeStyle::Snowflake {
        return Ok((Minter::Snowflake, None));
    }
    let key = connections.code_key.as_ref().context(
        "--code-style compact needs the code key: set CODE_KEY (32+ hex digits, `openssl rand -hex 32`) or \
         CODE_KEY_FILE, the same for every shortener and redirect, or use --code-style snowflake",
    )?;
    let blocks = idgen::blocks::CodeBlocks::start(
        args.idgen.blocks()?,
        idgen::metrics::BlockMetrics::register(registry)?,
        supervisor,
    )
    .await
    .with_context(|| {
        format!(
            "cannot lease a block of the code counter from ZooKeeper at {} (--zookeeper-connect)",
            args.idgen.zookeeper_connect
        )
    })?;
    let announcer = codes::announce_blocks(&blocks, connections.cache.clone(), supervisor);
    let stopped = {
        let blocks = Arc::clone(&blocks);
        async move {
            announcer.stopped().await;
            blocks.stopped().await;
        }
    };
    let codes = links::code::CompactCodes::new(key);
    Ok((
        Minter::Compact { blocks, codes },
        Some(Box::pin(stopped) as CodesStopped),
    ))
}

/// The rate limits and the password hasher's budgets, and the task that forgets the clients they no longer
/// bound.
fn start_forgetting_idle(
    args: &ServeArgs,
    registry: &Registry,
    supervisor: &Supervisor,
) -> anyhow::Result<(Arc<RateLimits>, Arc<PasswordHasher>)> {
    let limits = Arc::new(args.rate_limits());
    let passwords = Arc::new(args.password_hasher(registry)?);
    supervisor.every("forget_idle_clients", FORGET_IDLE_CLIENTS_EVERY, {
        let (limits, passwords) = (Arc::clone(&limits), Arc::clone(&passwords));
        move || {
            limits.forget_idle();
            passwords.forget_idle();
        }
    });
    Ok((limits, passwords))
}

/// The cache of API keys' owners, and the task that drops it whenever a key changes (when it caches at all).
fn start_key_listener(
    args: &ServeArgs,
    registry: &Registry,
    supervisor: &Supervisor,
) -> anyhow::Result<(Arc<KeyOwners>, Option<Task>)> {
    let key_owners = KeyOwners::register(Duration::from_secs(args.api_key_cache_secs), registry)?;
    let listener = key_owners.caches().then(|| {
        // Essential: a cache that no longer hears key changes would keep honouring revoked keys.
        supervisor.spawn(
            "api_key_listener",
            Need::Essential,
            Arc::clone(&key_owners).listen(
                args.database.database_url.clone(),
                Duration::from_millis(args.database.database_connect_timeout_ms),
                supervisor.shutdown().clone(),
            ),
        )
    });
    Ok((key_owners, listener))
}

/// What every handler shares.
///
/// # Errors
/// When a series cannot be registered.
fn state(
    args: &ServeArgs,
    connections: Connections,
    shared: Shared,
    blocklist: Blocklist,
    registry: &Registry,
    (webhook_sender, events): (Arc<crate::webhooks::send::Sender>, crate::delivery::Events),
) -> anyhow::Result<web::Data<AppState>> {
    let (created, code_collisions, degraded) = write_metrics(registry)?;
    let redis_breaker = args
        .breaker
        .breaker(BackendSeries::register(registry, "shortener")?.backend("redis"));
    let exports = Arc::new(crate::exports::ExportLimits::register(
        &args.exports,
        registry,
    )?);
    Ok(web::Data::new(AppState {
        store: connections.store,
        reads: connections.reads,
        key_owners: shared.key_owners,
        inserter: shared.inserter,
        cache: connections.cache,
        redis_breaker,
        invalidations: shared.invalidations,
        ids: shared.ids,
        codes: shared.codes,
        own_hosts: args.own_hosts(),
        public_base_url: args.public_base_url(),
        domains: connections.domains,
        redis: args.redis.clone(),
        blocklist,
        trusted_proxies: args.client_ip.trusted(),
        limits: shared.limits,
        passwords: shared.passwords,
        allow_anonymous: args.allow_anonymous,
        exports,
        webhook_sender,
        events,
        imports: Arc::new(tokio::sync::Semaphore::new(1)),
        created,
        code_collisions,
        degraded,
        clock: args.clock.clone(),
    }))
}

/// Serves the API's routes with `state`.
async fn serve(
    startup: Startup,
    args: &ServeArgs,
    state: web::Data<AppState>,
    readiness: admin::ReadinessCheck,
    stopping: StopSequence,
) -> anyhow::Result<Application> {
    let http_metrics = web::Data::new(HttpMetrics::register(&startup.registry)?);
    let timeout = web::Data::new(RequestTimeout(Duration::from_millis(
        args.request_timeout_ms,
    )));
    let app = move || {
        App::new()
            .app_data(state.clone())
            .app_data(http_metrics.clone())
            .app_data(timeout.clone())
            .app_data(plumbing::http::json_config())
            .app_data(plumbing::http::query_config())
            .wrap(middleware::from_fn(deadline::enforce))
            .wrap(middleware::from_fn(plumbing::metrics::record))
            .wrap(middleware::from_fn(plumbing::request_id::trace))
            .configure(routes)
    };
    startup.serve(app, readiness, stopping).await
}

/// The API's routes. Each path is one resource, so a method it lacks answers 405 with `Allow` (listing what its
/// routes take, which the OpenAPI test compares with the document) rather than falling through to the 404.
fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/v1/openapi.json")
                .route(web::get().to(routes::openapi::serve))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/v1/urls")
                .route(web::post().to(routes::urls::create))
                .route(web::get().to(routes::owned::list))
                .default_service(method_not_allowed("GET, POST")),
        )
        .service(
            web::resource("/v1/domains")
                .route(web::get().to(crate::domains::list))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/v1/urls/export.csv")
                .route(web::get().to(routes::export::export))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource(crate::import::route::PATH)
                .route(web::post().to(crate::import::route::import))
                .default_service(method_not_allowed("POST")),
        )
        .service(
            web::resource("/v1/urls/batch")
                .app_data(plumbing::http::json_config().limit(routes::urls::MAX_BATCH_BODY))
                .route(web::post().to(routes::urls::create_batch))
                .default_service(method_not_allowed("POST")),
        )
        .service(
            web::resource("/v1/urls/{code}")
                .route(web::get().to(routes::owned::get))
                .route(web::delete().to(routes::owned::delete))
                .route(web::patch().to(routes::patch::patch))
                .default_service(method_not_allowed("DELETE, GET, PATCH")),
        )
        .service(
            web::resource("/v1/urls/{code}/qr")
                .route(web::get().to(routes::qr::qr))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/v1/urls/{code}/hits")
                .route(web::get().to(routes::hits::hits))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/v1/urls/{code}/stats")
                .route(web::get().to(routes::stats::stats))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/v1/urls/{code}/events")
                .route(web::get().to(routes::events::events))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/v1/webhooks")
                .route(web::post().to(crate::webhooks::routes::create))
                .route(web::get().to(crate::webhooks::routes::list))
                .default_service(method_not_allowed("GET, POST")),
        )
        .service(
            web::resource("/v1/webhooks/{id}")
                .route(web::delete().to(crate::webhooks::routes::delete))
                .default_service(method_not_allowed("DELETE")),
        )
        .service(
            web::resource("/")
                .route(web::get().to(routes::web::index))
                .default_service(method_not_allowed("GET")),
        )
        .service(
            web::resource("/static/{file}")
                .route(web::get().to(routes::web::asset))
                .default_service(method_not_allowed("GET")),
        )
        .default_service(web::to(crate::errors::no_such_route));
}

/// Batch inserts allowed at once beside the inserters: half the connections the inserters leave, so batches
/// never hold the whole pool and single creates, key lookups and reads always find one.
fn direct_batches(pool_size: usize, inserters: usize) -> usize {
    (pool_size.saturating_sub(inserters) / 2).max(1)
}

/// Links created, generated codes that met an alias, and dependency failures degraded around (Redis write-through
/// skipped, …).
fn write_metrics(
    registry: &Registry,
) -> prometheus::Result<(IntCounter, IntCounter, IntCounterVec)> {
    let created = IntCounter::new(
        "shortener_links_created_total",
        "Links created and committed",
    )?;
    registry.register(Box::new(created.clone()))?;
    let degraded = IntCounterVec::new(
        Opts::new(
            "shortener_degraded_total",
            "Dependency failures degraded around",
        ),
        &["dependency", "operation"],
    )?;
    registry.register(Box::new(degraded.clone()))?;
    let code_collisions = IntCounter::new(
        "shortener_generated_code_collisions_total",
        "Generated codes that were taken already (an alias equal to them), so another code was made",
    )?;
    registry.register(Box::new(code_collisions.clone()))?;
    Ok((created, code_collisions, degraded))
}

/// `/readyz`: blocked only without a worker lease (no IDs, so no creates). PostgreSQL and Redis are reported:
/// every replica shares them, so their loss is no reason to take this one out of the Service. The host the pool
/// reaches as primary is `postgresql_primary` (null while none answers), and the `postgres_primary` gauge.
fn readiness(state: &AppState, primary_gauge: PrimaryGauge) -> admin::ReadinessCheck {
    let (store, cache) = (state.store.clone(), state.cache.clone());
    let generator = Arc::clone(&state.ids);
    Arc::new(move || {
        let (store, cache, primary_gauge) = (store.clone(), cache.clone(), primary_gauge.clone());
        let leased = generator.worker().is_some();
        Box::pin(async move {
            let (primary, redis) = tokio::join!(primary_gauge.observe(store.pool()), cache.ping());
            let postgresql = primary.is_some();
            Readiness {
                blocking: if leased {
                    Vec::new()
                } else {
                    vec!["zookeeper_lease".to_owned()]
                },
                dependencies: vec![
                    ("postgresql".to_owned(), postgresql),
                    ("redis".to_owned(), redis.is_ok()),
                    ("zookeeper".to_owned(), leased),
                ],
                details: vec![
                    ("postgresql_primary".to_owned(), primary.into()),
                    ("redis_cluster".to_owned(), cache.is_clustered().into()),
                ],
            }
        })
    })
}

/// Campaigns for the cleanup leadership and starts the task that purges while it is held.
fn start_cleanup(
    args: &ServeArgs,
    connections: &Connections,
    registry: &Registry,
    supervisor: &Supervisor,
) -> anyhow::Result<(Election, CleanupTask)> {
    let metrics = CleanupMetrics::register(registry)?;
    let election = Election::start(
        ElectionOptions {
            zookeeper: args.idgen.zookeeper()?,
            path: args.cleanup.cleanup_election_path.clone(),
            call_timeout: std::time::Duration::from_millis(args.idgen.zookeeper_timeout_ms),
        },
        metrics.leader.clone(),
        supervisor,
    );
    let cleaner = Cleaner::new(
        connections.store.clone(),
        connections.cache.clone(),
        args.cleanup.purge.cleanup_batch,
        metrics,
    )
    .freeing_codes_after(args.cleanup.purge.retired_code_grace_days);
    let task = CleanupTask::start(
        cleaner,
        election.subscribe(),
        args.cleanup.cleanup_interval,
        supervisor,
    );
    Ok((election, task))
}
