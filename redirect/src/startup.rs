//! Building the redirect (pools, Redis, listeners) and running it until shutdown.

use std::{
    net::TcpListener,
    sync::{atomic::AtomicUsize, Arc},
    time::Duration,
};

use actix_web::{
    dev::Server,
    http::{header::HeaderValue, Method},
    web, App, HttpRequest, HttpResponse, HttpServer,
};
use anyhow::Context as _;
use chrono::Utc;
use links::{cache::RedisCache, code, db, model::Resolution, store::Store};
use plumbing::{admin, shutdown::Shutdown};
use prometheus::Registry;

use crate::{
    answer,
    breaker::Breaker,
    config::RedirectArgs,
    flight::SingleFlight,
    hits::{Flusher, HitCounter},
    invalidation::Subscriber,
    local::LocalCache,
    lookup::{Database, Redis, Tiers},
    metrics::Metrics,
    resolver::Resolver,
};

/// What the handler shares.
pub struct RedirectState {
    /// Local cache, single flight and the lower tiers.
    pub resolver: Resolver,
    /// Hits counted since the last flush.
    pub hits: Arc<HitCounter>,
    /// Series the handler updates on every request.
    pub metrics: Arc<Metrics>,
    /// `Cache-Control` of 301/308 answers, built once.
    pub permanent_max_age: HeaderValue,
}

/// The running redirect.
pub struct Application {
    port: u16,
    admin_port: u16,
    servers: Vec<Server>,
    cache: RedisCache,
    /// Stops the hit flusher and the invalidation subscriber, once the servers have drained (so hits counted
    /// by the last requests are flushed too).
    background: Shutdown,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Connects, starts the background tasks, then binds both listeners (port 0 picks a free port).
    ///
    /// # Errors
    /// When the primary is unreachable at start or an address cannot be bound.
    pub async fn build(args: RedirectArgs) -> anyhow::Result<Self> {
        let registry = Registry::new();
        let metrics = Arc::new(Metrics::register(&registry)?);
        let options = args.database.pool_options();
        let primary_pool = db::pool(&args.database.database_url, "snowlink-redirect", options)
            .context("invalid --database-url (DATABASE_URL)")?;
        db::check(&primary_pool)
            .await
            .context("cannot reach PostgreSQL at --database-url (DATABASE_URL)")?;
        let primary = Store::new(primary_pool);
        let breaker = |backend| {
            Breaker::new(
                args.breaker_failures,
                Duration::from_millis(args.breaker_cooldown_ms),
                backend,
            )
        };
        let mut replicas = Vec::new();
        for (index, url) in args
            .replica_urls
            .iter()
            .filter(|url| !url.is_empty())
            .enumerate()
        {
            let pool = db::pool(url, "snowlink-redirect", options)
                .context("invalid --replica-url (DATABASE_REPLICA_URL)")?;
            if let Err(error) = db::check(&pool).await {
                tracing::warn!(error = %links::chain::Chain(&error), "a read replica is not reachable yet; lookups skip it until it answers");
            }
            replicas.push(Database {
                store: Store::new(pool),
                breaker: breaker(metrics.replica(index)),
            });
        }
        let cache = RedisCache::connect(&args.redis.options())
            .await
            .context("invalid --redis-url (REDIS_URL)")?;
        let negative_ttl = Duration::from_secs(args.negative_ttl_secs);
        let local = Arc::new(LocalCache::new(
            args.local_cache_capacity,
            Duration::from_secs(args.local_cache_ttl_secs),
            negative_ttl,
        ));
        let subscriber = Subscriber::connect(&args.redis.options())
            .await
            .context("invalid --redis-url (REDIS_URL)")?;

        let tiers = Tiers {
            redis: Redis {
                cache: cache.clone(),
                breaker: breaker(metrics.redis.clone()),
                settings: args.redis.clone(),
            },
            replicas,
            primary: Database {
                store: primary.clone(),
                breaker: breaker(metrics.primary.clone()),
            },
            confirm_misses_on_primary: args.confirm_misses_on_primary,
            negative_ttl,
            database_timeout: Duration::from_millis(args.database_lookup_timeout_ms),
            next_replica: AtomicUsize::new(0),
        };
        let hits = Arc::new(HitCounter::default());
        let background = Shutdown::new();
        let flusher = Flusher {
            counter: hits.clone(),
            primary: primary.clone(),
            interval: Duration::from_millis(args.hits_flush_interval_ms.max(1)),
            timeout: options.statement_timeout,
            pending_max: args.hits_pending_max,
            metrics: metrics.clone(),
            local: local.clone(),
        };
        let tasks = vec![
            tokio::spawn(flusher.run(background.clone())),
            tokio::spawn(subscriber.run(local.clone(), metrics.clone(), background.clone())),
        ];
        let state = web::Data::new(RedirectState {
            resolver: Resolver {
                local,
                tiers,
                flight: SingleFlight::new(metrics.single_flight_merged.clone()),
                metrics: metrics.clone(),
            },
            hits,
            metrics,
            permanent_max_age: HeaderValue::from_str(&format!(
                "public, max-age={}",
                args.permanent_max_age_secs
            ))?,
        });

        let listener = bind(&args.listen, args.reuse_port)
            .with_context(|| format!("cannot bind --listen {}", args.listen))?;
        let admin_listener = bind(&args.admin_listen, args.reuse_port)
            .with_context(|| format!("cannot bind --admin-listen {}", args.admin_listen))?;
        let port = listener.local_addr()?.port();
        let admin_port = admin_listener.local_addr()?.port();
        let readiness = readiness(state.clone());
        let mut server = HttpServer::new(move || {
            // One handler for every path: actix's pattern routes (`/{code}`) match with a regex engine, which
            // showed up as the largest user-space cost in a profile of the hot path. A code is the whole path.
            App::new()
                .app_data(state.clone())
                .default_service(web::to(follow))
        })
        .disable_signals()
        .shutdown_timeout(10);
        if args.http_workers > 0 {
            server = server.workers(args.http_workers);
        }
        let api = server.listen(listener)?.run();
        let admin = admin::serve(admin_listener, registry, readiness)?;
        Ok(Self {
            port,
            admin_port,
            servers: vec![api, admin],
            cache,
            background,
            tasks,
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

    /// Serves until `shutdown`, lets in-flight requests finish, then stops the background tasks (the flusher
    /// writes the last hits) and closes Redis.
    ///
    /// # Errors
    /// When a server fails.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let served = admin::run_until_stopped(self.servers, shutdown).await;
        self.background.trigger();
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "a background task panicked");
            }
        }
        self.cache.quit().await;
        served
    }
}

/// `/readyz`: ready while every dependency answers; otherwise the names of those that do not (`postgresql`,
/// `postgresql-replicaN`, `redis`). The redirect keeps answering from what still works meanwhile.
fn readiness(state: web::Data<RedirectState>) -> admin::ReadinessCheck {
    Arc::new(move || {
        let state = state.clone();
        Box::pin(async move {
            let tiers = &state.resolver.tiers;
            let redis = tiers.redis.cache.ping();
            let primary = db::check(tiers.primary.store.pool());
            let (redis, primary) = tokio::join!(redis, primary);
            let mut failing = Vec::new();
            if primary.is_err() {
                failing.push("postgresql".to_owned());
            }
            // Few replicas: checking them in turn is bounded by the pool's connect timeout each.
            for (index, replica) in tiers.replicas.iter().enumerate() {
                if db::check(replica.store.pool()).await.is_err() {
                    failing.push(format!("postgresql-replica{index}"));
                }
            }
            if redis.is_err() {
                failing.push("redis".to_owned());
            }
            if failing.is_empty() {
                Ok(())
            } else {
                Err(failing)
            }
        })
    })
}

/// `GET`/`HEAD /{code}`; anything else is a 404. Codes that cannot exist (other characters, a `/`, too long)
/// are 404 before any backend is asked. The hot path: no allocation beyond the response, no lock shared by all
/// requests, no log line.
async fn follow(req: HttpRequest, state: web::Data<RedirectState>) -> HttpResponse {
    let timer = state.metrics.request_latency.start_timer();
    let code = req.path().strip_prefix('/').unwrap_or_default();
    let method = req.method();
    let response =
        if !(method == Method::GET || method == Method::HEAD) || !code::is_plausible(code) {
            answer::not_found(&req)
        } else {
            match state.resolver.resolve(code).await {
                Ok(entry) => {
                    let now = Utc::now();
                    let response = answer::respond(&req, &entry, now, &state.permanent_max_age);
                    if let Resolution::Live { id, .. } = entry.target {
                        if response.status().is_redirection() && method == Method::GET {
                            state.hits.record(id, now);
                        }
                    }
                    response
                }
                Err(_) => answer::unavailable(&req),
            }
        };
    state.metrics.status.of(response.status().as_u16()).inc();
    timer.observe_duration();
    response
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
