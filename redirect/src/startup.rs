//! Building the redirect as a list of named steps (listeners, connections, background tasks, state, serve) and
//! the order it stops in.

use std::{
    cell::RefCell,
    sync::{atomic::AtomicUsize, Arc},
    time::Duration,
};

use actix_web::{web, App};
use anyhow::Context as _;
use database::{failover::PrimaryGauge, PoolOptions};
use links::{cache::RedisCache, store::Store};
use plumbing::{
    admin::{self, Readiness},
    flight::SingleFlight,
    server::{Application, Listeners, Startup},
    tasks::{Need, StopSequence, Supervisor, Task},
};
use prometheus::Registry;
use secrecy::ExposeSecret as _;

use crate::{
    clicks::{self, watchers::Watchers, ClickMetrics, Clicks},
    config::RedirectArgs,
    hits::{Flusher, HitCounter},
    http::{
        answer::PermanentMaxAge,
        checks::{Unlocker, FORGET_TRIES_EVERY},
        follow::follow,
        misses::{MissLimit, FORGET_IDLE_EVERY},
        state::{RedirectState, Worker},
    },
    invalidation::Subscriber,
    metrics::Metrics,
    tiers::{
        confirm::Confirmations,
        fresh::Freshness,
        front::FrontCache,
        local::LocalCache,
        lookup::{Database, Redis, Tiers},
        resolver::Resolver,
    },
};

/// Slots of each worker's copies ([`FrontCache`]): 16k slots of 40 bytes (~640 KiB a worker, within a core's
/// L2) hold the head of a Zipf distribution, which is where most requests go.
const FRONT_SLOTS: usize = 16_384;

/// Binds both listeners (port 0 picks a free port), connects, starts the hit flusher and the invalidation
/// subscriber, and serves. Once the stop signal has come and the servers have drained, the background tasks
/// stop (the flusher writes the hits of the last requests) and Redis is closed.
///
/// # Errors
/// When an address cannot be bound or the primary is unreachable at start.
pub async fn build(args: RedirectArgs) -> anyhow::Result<Application> {
    let startup = Startup::new(Listeners::bind(&args.listen_options())?)?;
    let metrics = Arc::new(Metrics::register(&startup.registry)?);
    let (tiers, subscriber) = connect(&args, &startup.registry, &metrics).await?;
    let local = local_cache(&args);
    let (hits, flusher) = start_flusher(&args, &startup.supervisor, &tiers, &local, &metrics);
    let watchers = Watchers::default();
    let subscriber = start_subscriber(
        &startup.supervisor,
        subscriber,
        &tiers,
        &local,
        &metrics,
        &watchers,
    );
    let (clicks, click_flusher) = start_clicks(&args, &startup, &tiers, &watchers).await?;
    let (misses, unlocker) = start_forgetting_idle(&args, &startup.supervisor);
    let domains = start_domains(&startup.supervisor, &tiers).await;
    // The flusher first: the tasks stop only once the servers have drained, so the last requests' hits are in.
    let cache = tiers.redis.cache.clone();
    let stopping = StopSequence::new()
        .then(flusher.stopped())
        .then(click_flusher.stopped())
        .then(subscriber.stopped())
        .then(async move { cache.quit().await });
    let resolver = resolver(tiers, local, &metrics);
    let state = state(
        &args,
        resolver,
        Counting {
            hits,
            misses,
            unlocker,
            metrics,
        },
        domains,
        (watchers, clicks),
    );
    let readiness = readiness(state.clone(), PrimaryGauge::register(&startup.registry)?);
    serve(startup, &args, state, readiness, stopping).await
}

/// Connects the tiers (see [`connect_tiers`]) and, over Redis, the subscriber to changed codes.
///
/// # Errors
/// When the ID layout is invalid, the primary is unreachable or a URL does not parse.
async fn connect(
    args: &RedirectArgs,
    registry: &Registry,
    metrics: &Metrics,
) -> anyhow::Result<(Tiers, Subscriber)> {
    let layout = args
        .id_layout
        .layout()
        .context("invalid ID layout (--epoch-ms, --time-bits, --worker-bits, --sequence-bits)")?;
    let compact = args
        .code_key
        .key()?
        .map(|key| links::code::CompactCodes::new(&key));
    if compact.is_none() {
        tracing::warn!("no CODE_KEY: a replica miss of a compact code is confirmed on the primary only if the code itself was announced");
    }
    let freshness = Arc::new(Freshness::new(layout, compact, args.clock.clone()));
    let tiers = connect_tiers(args, metrics, freshness).await?;
    links::cache::register_cluster_gauge(registry, tiers.redis.cache.is_clustered())?;
    let subscriber = Subscriber::connect(&args.redis.options())
        .await
        .context("invalid --redis-url (REDIS_URL)")?;
    Ok((tiers, subscriber))
}

/// The registered domains, loaded now (a failure leaves them empty: every request is on the default domain until
/// the reloader reads them), and the task reloading them every few seconds from a replica (the primary without
/// one).
async fn start_domains(supervisor: &Supervisor, tiers: &Tiers) -> links::domain::Domains {
    let store = tiers
        .replicas
        .first()
        .map_or(&tiers.primary.store, |replica| &replica.store)
        .clone();
    let domains = links::domain::Domains::default();
    if let Err(error) = domains.reload(&store).await {
        tracing::warn!(%error, "the domains could not be read yet; serving the default domain until they are");
    }
    let shutdown = supervisor.shutdown().clone();
    let reload = domains
        .clone()
        .keep_loaded(store, async move { shutdown.wait().await });
    let _task = supervisor.spawn("domain_reloader", Need::Optional, reload);
    domains
}

/// The in-process cache in front of every tier.
fn local_cache(args: &RedirectArgs) -> Arc<LocalCache> {
    Arc::new(LocalCache::new(
        args.local_cache_memory_mb.saturating_mul(1 << 20),
        Duration::from_secs(args.local_cache_ttl_secs),
        Duration::from_secs(args.negative_ttl_secs),
    ))
}

/// Starts the task that writes the counted hits to the primary; returns the counter the handlers count in.
fn start_flusher(
    args: &RedirectArgs,
    supervisor: &Supervisor,
    tiers: &Tiers,
    local: &Arc<LocalCache>,
    metrics: &Arc<Metrics>,
) -> (Arc<HitCounter>, Task) {
    let hits = Arc::new(HitCounter::default());
    let flusher = Flusher {
        counter: hits.clone(),
        // Never the lookups' pool: a flood of misses confirmed on the primary must not starve the flush.
        primary: tiers.primary_flush.store.clone(),
        cache: tiers.redis.cache.clone(),
        interval: Duration::from_millis(args.hits_flush_interval_ms.max(1)),
        sources_interval: Duration::from_millis(args.hit_sources_flush_interval_ms),
        writes_per_second: args.hit_writes_per_second,
        timeout: args.database.pool_options().statement_timeout,
        pending_max: args.hits_pending_max,
        metrics: metrics.clone(),
        local: local.clone(),
    };
    let task = supervisor.spawn(
        "hits_flusher",
        Need::Essential,
        flusher.run(supervisor.shutdown().clone()),
    );
    (hits, task)
}

/// Starts the task that drops changed codes from the local cache.
fn start_subscriber(
    supervisor: &Supervisor,
    subscriber: Subscriber,
    tiers: &Tiers,
    local: &Arc<LocalCache>,
    metrics: &Arc<Metrics>,
    watchers: &Watchers,
) -> Task {
    // Essential: without it the local cache keeps serving links that were changed or deleted.
    supervisor.spawn(
        "invalidation_subscriber",
        Need::Essential,
        subscriber.run(
            local.clone(),
            tiers.freshness.clone(),
            metrics.clone(),
            watchers.clone(),
            supervisor.shutdown().clone(),
        ),
    )
}

/// Starts what click events need: the queue, the task keeping the watchers loaded (from a replica, the primary
/// without one) and the flusher appending the buffered events. Returns where handlers put them and the flusher.
///
/// # Errors
/// When the Redis URL is invalid or the series are registered already.
async fn start_clicks(
    args: &RedirectArgs,
    startup: &Startup,
    tiers: &Tiers,
    watchers: &Watchers,
) -> anyhow::Result<(Clicks, Task)> {
    let queue = events::Queue::start(&args.redis.options(), false)
        .context("invalid --redis-url (REDIS_URL)")?;
    let metrics = ClickMetrics::register(&startup.registry)?;
    let (clicks, buffer) = Clicks::new(metrics.clone());
    let store = tiers
        .replicas
        .first()
        .map_or(&tiers.primary.store, |replica| &replica.store)
        .clone();
    let supervisor = &startup.supervisor;
    let shutdown = supervisor.shutdown().clone();
    let reload = watchers
        .clone()
        .load_then_keep(store, queue.clone(), async move { shutdown.wait().await })
        .await;
    let _task = supervisor.spawn("watchers_reloader", Need::Optional, reload);
    let shutdown = supervisor.shutdown().clone();
    let flusher = supervisor.spawn("click_flusher", Need::Optional, async move {
        clicks::flusher::run(buffer, queue.clone(), metrics, async move {
            shutdown.wait().await
        })
        .await;
        queue.quit().await;
    });
    Ok((clicks, flusher))
}

/// The limits on unknown codes and password tries, and the tasks that forget the clients they no longer bound.
fn start_forgetting_idle(
    args: &RedirectArgs,
    supervisor: &Supervisor,
) -> (Arc<MissLimit>, Arc<Unlocker>) {
    let misses = Arc::new(MissLimit::new(args.unknown_codes_per_minute));
    supervisor.every("forget_idle_clients", FORGET_IDLE_EVERY, {
        let misses = Arc::clone(&misses);
        move || misses.forget_idle()
    });
    let unlocker = Arc::new(Unlocker::new(
        args.password_tries_per_minute,
        args.password_tries_per_link_per_minute,
    ));
    supervisor.every("forget_idle_password_tries", FORGET_TRIES_EVERY, {
        let unlocker = Arc::clone(&unlocker);
        move || unlocker.forget_idle()
    });
    (misses, unlocker)
}

/// Lookups through the local cache and the tiers below it.
fn resolver(tiers: Tiers, local: Arc<LocalCache>, metrics: &Arc<Metrics>) -> Resolver {
    Resolver {
        local,
        tiers,
        flight: SingleFlight::new(metrics.single_flight_merged.clone()),
        metrics: metrics.clone(),
    }
}

/// What the handlers count with.
struct Counting {
    hits: Arc<HitCounter>,
    misses: Arc<MissLimit>,
    unlocker: Arc<Unlocker>,
    metrics: Arc<Metrics>,
}

/// What every handler shares.
fn state(
    args: &RedirectArgs,
    resolver: Resolver,
    counting: Counting,
    domains: links::domain::Domains,
    (watchers, clicks): (Watchers, Clicks),
) -> web::Data<RedirectState> {
    let Counting {
        hits,
        misses,
        unlocker,
        metrics,
    } = counting;
    if let Some(warning) = args.client_ip_warning() {
        tracing::warn!("{warning}");
    }
    web::Data::new(RedirectState {
        resolver,
        hits,
        metrics,
        misses,
        unlocker,
        country_header: args.country_header.clone(),
        trusted_proxies: args.client_ip.trusted(),
        permanent_max_age: PermanentMaxAge::new(args.permanent_max_age_secs),
        clock: args.clock.clone(),
        domains,
        watchers,
        clicks,
    })
}

/// Serves every path with one handler: actix's pattern routes (`/{code}`) match with a regex engine, which
/// showed up as the largest user-space cost in a profile of the hot path. A code is the whole path.
async fn serve(
    startup: Startup,
    args: &RedirectArgs,
    state: web::Data<RedirectState>,
    readiness: admin::ReadinessCheck,
    stopping: StopSequence,
) -> anyhow::Result<Application> {
    // Runs on each HTTP worker's thread: its Redis client connects there. A client that cannot be built (it
    // could at start, with the same options) leaves the worker on the process's client.
    let redis_options = args.redis.options();
    let shared_redis = state.resolver.tiers.redis.cache.clone();
    // Each worker's copies sit in front of the local cache, so they are off when it is.
    let front_slots = if args.local_cache_memory_mb == 0 {
        0
    } else {
        FRONT_SLOTS
    };
    let app = move || {
        crate::priority::http_worker_started();
        let client = RedisCache::start(&redis_options).unwrap_or_else(|_| shared_redis.clone());
        let worker = Worker {
            redis: state.resolver.tiers.redis.for_worker(client),
            shared: state.clone(),
            front: RefCell::new(FrontCache::new(front_slots)),
            domains: RefCell::new((u64::MAX, Arc::default())),
            watchers: RefCell::new((u64::MAX, None)),
        };
        App::new()
            .app_data(web::Data::new(worker))
            .default_service(web::to(follow))
    };
    startup.serve(app, readiness, stopping).await
}

/// The tiers below the local cache: Redis, the read replicas (each behind its own breaker), and the primary
/// through two pools: one for lookups (misses confirmed, lookups while no replica answers), one for what must
/// never wait behind them (the hit flush, reads of codes changed a moment ago).
async fn connect_tiers(
    args: &RedirectArgs,
    metrics: &Metrics,
    freshness: Arc<Freshness>,
) -> anyhow::Result<Tiers> {
    let options = args.database.pool_options();
    let primary_pool = |max_size: usize, application_name| {
        let options = PoolOptions {
            max_size: max_size.max(1),
            ..options
        };
        database::pool(
            args.database.database_url.expose_secret(),
            application_name,
            options,
        )
        .context("invalid --database-url (DATABASE_URL)")
    };
    let lookups_pool = primary_pool(args.primary_pool_size, "snowlink-redirect")?;
    let flush_pool = primary_pool(args.primary_flush_pool_size, "snowlink-redirect-flush")?;
    database::check(&lookups_pool)
        .await
        .context("cannot reach PostgreSQL at --database-url (DATABASE_URL)")?;
    let breaker = |backend| args.breaker.breaker(backend);
    let database_timeout = Duration::from_millis(args.database_lookup_timeout_ms);
    let mut replicas = Vec::new();
    for (index, url) in args
        .replica_urls
        .iter()
        .filter(|url| !url.expose_secret().is_empty())
        .enumerate()
    {
        let pool = database::pool(url.expose_secret(), "snowlink-redirect", options)
            .context("invalid --replica-url (DATABASE_REPLICA_URL)")?;
        if let Err(error) = database::check(&pool).await {
            tracing::warn!(error = %plumbing::chain::Chain(&error), "a read replica is not reachable yet; lookups skip it until it answers");
        }
        replicas.push(Database::new(
            Store::new(pool),
            options.max_size,
            breaker(metrics.replica(index)),
            "replica",
            database_timeout,
        ));
    }
    let cache = RedisCache::connect(&args.redis.options())
        .await
        .context("invalid --redis-url (REDIS_URL)")?;
    Ok(Tiers {
        redis: Redis {
            cache,
            breaker: Arc::new(breaker(metrics.redis.clone())),
            settings: args.redis.clone(),
        },
        replicas,
        primary: Database::new(
            Store::new(lookups_pool),
            args.primary_pool_size,
            breaker(metrics.primary.clone()),
            "primary",
            database_timeout,
        ),
        primary_flush: Database::new(
            Store::new(flush_pool),
            args.primary_flush_pool_size,
            breaker(metrics.primary_flush.clone()),
            "primary (flush pool)",
            database_timeout,
        ),
        confirm_misses_on_primary: args.confirm_misses_on_primary,
        confirmations: Confirmations::new(
            args.primary_confirmations_per_second,
            args.primary_confirmations_burst,
        ),
        freshness,
        negative_ttl: Duration::from_secs(args.negative_ttl_secs),
        next_replica: AtomicUsize::new(0),
        clock: args.clock.clone(),
    })
}

/// `/readyz`: the redirect serves from whatever still answers, so nothing it depends on blocks it (only a dead
/// essential task does). Each dependency's state (`postgresql`, `postgresql-replicaN`, `redis`) is reported, and
/// the host the primary pool reaches (`postgresql_primary`, and the `postgres_primary` gauge).
fn readiness(
    state: web::Data<RedirectState>,
    primary_gauge: PrimaryGauge,
) -> admin::ReadinessCheck {
    Arc::new(move || {
        let (state, primary_gauge) = (state.clone(), primary_gauge.clone());
        Box::pin(async move {
            let tiers = &state.resolver.tiers;
            let redis = tiers.redis.cache.ping();
            let primary = primary_gauge.observe(tiers.primary.store.pool());
            let (redis, primary) = tokio::join!(redis, primary);
            let mut dependencies = vec![("postgresql".to_owned(), primary.is_some())];
            // Few replicas: checking them in turn is bounded by the pool's connect timeout each.
            for (index, replica) in tiers.replicas.iter().enumerate() {
                let up = database::check(replica.store.pool()).await.is_ok();
                dependencies.push((format!("postgresql-replica{index}"), up));
            }
            dependencies.push(("redis".to_owned(), redis.is_ok()));
            Readiness {
                blocking: Vec::new(),
                dependencies,
                details: vec![
                    ("postgresql_primary".to_owned(), primary.into()),
                    (
                        "redis_cluster".to_owned(),
                        tiers.redis.cache.is_clustered().into(),
                    ),
                ],
            }
        })
    })
}
