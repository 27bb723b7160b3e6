//! API key → owner, cached in memory so a create does not ask PostgreSQL who is calling every time (that query
//! was the primary's largest per-request cost once inserts were grouped). Keys the database does not know are
//! cached too, briefly and in a bounded map, so a client repeating a bad key costs one query, not one per request
//! (a client trying ever new keys is bounded per client by the caller, see [`Cached::NotCached`]).
//!
//! Revocation must still take effect at once on every instance: a trigger announces every change to `api_keys`
//! (migrations 0003 and 0004, inserts included, so a key created after it was cached as unknown works at once)
//! on the channel `snowlink_api_keys` and a dedicated connection LISTENs to it; a notification drops both caches.
//! The caches are trusted only while that connection is up: a lost connection drops them and every lookup goes
//! to the database until it is listening again. The TTLs bound what a connection that died without telling anyone
//! could leave behind: a new key is refused for at most [`UNKNOWN_TTL`] then.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use database::DbError;
use links::store::Store;
use plumbing::chain::Chain;
use plumbing::{flight::SingleFlight, shutdown::Shutdown};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use secrecy::{ExposeSecret as _, SecretString};
use tokio_postgres::AsyncMessage;

/// The channel the migration's trigger notifies.
const CHANNEL: &str = "snowlink_api_keys";

/// Most keys remembered.
const CAPACITY: u64 = 100_000;

/// Most unknown keys remembered: a flood of distinct bad keys evicts its own entries, never a known key's.
const UNKNOWN_CAPACITY: u64 = 10_000;

/// How long a key the database did not know is answered 401 without asking again, unless a change to
/// `api_keys` is heard first (then at once).
pub const UNKNOWN_TTL: Duration = Duration::from_secs(10);

/// A silent listener connection is found dead after idle + interval × retries (25 s), well inside the TTL.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;

/// Wait before reconnecting the listener.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What the cache says about a key without asking the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    /// A live key of this owner.
    Owner(i64),
    /// The database did not know it a moment ago.
    Unknown,
    /// Not cached: the database must be asked. The cache holds every key a client used recently, so a client
    /// asking often is trying new keys, and the caller bounds it.
    NotCached,
    /// Caching is off or not trusted now: every request asks the database, and bounding the lookups would
    /// refuse good keys.
    Untrusted,
}

/// Owners of API keys by key hash, and unknown keys, trusted only while changes are being heard.
pub struct KeyOwners {
    owners: Option<Caches>,
    listening: AtomicBool,
    /// Bumped on every change heard, so a lookup that overlapped a revoke does not cache what it read before.
    changes: AtomicU64,
    /// Database lookups by outcome (`found`, `unknown`).
    lookups: IntCounterVec,
    /// 1 while the caches are trusted (the change listener is up).
    trusted: IntGauge,
    /// Concurrent lookups of one key share one query (a client's burst while the cache is cold, or right after
    /// a key change dropped it). `None`: the shared query failed.
    flight: SingleFlight<Option<Option<i64>>>,
}

struct Caches {
    known: moka::sync::Cache<Vec<u8>, i64>,
    unknown: moka::sync::Cache<Vec<u8>, ()>,
}

impl KeyOwners {
    /// A cache whose known keys live at most `ttl` (unknown ones [`UNKNOWN_TTL`]); a zero `ttl` turns caching
    /// off. Its series are registered in `registry`.
    ///
    /// # Errors
    /// When the series are already registered.
    pub fn register(ttl: Duration, registry: &Registry) -> prometheus::Result<Arc<Self>> {
        let owners = (!ttl.is_zero()).then(|| Caches {
            known: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build(),
            unknown: moka::sync::Cache::builder()
                .max_capacity(UNKNOWN_CAPACITY)
                .time_to_live(UNKNOWN_TTL.min(ttl))
                .build(),
        });
        let lookups = IntCounterVec::new(
            Opts::new(
                "shortener_api_key_lookups_total",
                "API keys looked up in PostgreSQL (not answered from memory), by outcome",
            ),
            &["outcome"],
        )?;
        let trusted = IntGauge::new(
            "shortener_api_key_cache_trusted",
            "1 while API key changes are heard, so keys are answered from memory",
        )?;
        let merged = IntCounter::new(
            "shortener_api_key_lookups_merged_total",
            "API key lookups that joined the same key's query already running",
        )?;
        registry.register(Box::new(lookups.clone()))?;
        registry.register(Box::new(trusted.clone()))?;
        registry.register(Box::new(merged.clone()))?;
        Ok(Arc::new(Self {
            owners,
            listening: AtomicBool::new(false),
            changes: AtomicU64::new(0),
            lookups,
            trusted,
            flight: SingleFlight::new(merged),
        }))
    }

    /// Whether owners are cached at all (a zero TTL turns caching off, and with it the change listener).
    pub fn caches(&self) -> bool {
        self.owners.is_some()
    }

    /// What the cache knows about the key whose hash ([`links::apikey::hash`]) is `hash`.
    pub fn cached(&self, hash: &[u8]) -> Cached {
        let Some(caches) = self.trusted() else {
            return Cached::Untrusted;
        };
        if let Some(owner) = caches.known.get(hash) {
            Cached::Owner(owner)
        } else if caches.unknown.contains_key(hash) {
            Cached::Unknown
        } else {
            Cached::NotCached
        }
    }

    /// The owner of the live key whose hash is `hash`, from the database, one query for all concurrent callers;
    /// the answer is cached while the cache is trusted.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn look_up(&self, store: &Store, hash: Vec<u8>) -> Result<Option<i64>, DbError> {
        let key: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
        let shared = self
            .flight
            .run(&key, || async { self.ask(store, &hash).await.ok() });
        match shared.await {
            Some(owner) => Ok(owner),
            // The shared query failed: ask again for an error of this caller's own to answer with.
            None => self.ask(store, &hash).await,
        }
    }

    async fn ask(&self, store: &Store, hash: &[u8]) -> Result<Option<i64>, DbError> {
        let changes = self.changes.load(Ordering::Acquire);
        let owner = store.owner_of_key_hash(hash).await?;
        let outcome = if owner.is_some() { "found" } else { "unknown" };
        self.lookups.with_label_values(&[outcome]).inc();
        if let Some(caches) = self.trusted() {
            // Insert, then look again: a change heard in between (or a lost listener, which also counts as one)
            // takes the entry back out, whichever way the two interleave.
            match owner {
                Some(owner) => caches.known.insert(hash.to_vec(), owner),
                None => caches.unknown.insert(hash.to_vec(), ()),
            }
            if self.changes.load(Ordering::Acquire) != changes {
                caches.known.invalidate(hash);
                caches.unknown.invalidate(hash);
            }
        }
        Ok(owner)
    }

    fn trusted(&self) -> Option<&Caches> {
        self.owners
            .as_ref()
            .filter(|_| self.listening.load(Ordering::Acquire))
    }

    fn forget_all(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        if let Some(caches) = &self.owners {
            caches.known.invalidate_all();
            caches.unknown.invalidate_all();
        }
    }

    fn set_listening(&self, listening: bool) {
        self.listening.store(listening, Ordering::Release);
        self.trusted.set(i64::from(listening));
    }

    /// Keeps a connection LISTENing on the change channel until `shutdown`; reconnects after failures. Only
    /// worth running when [`KeyOwners::caches`].
    pub async fn listen(
        self: Arc<Self>,
        database_url: SecretString,
        timeout: Duration,
        shutdown: Shutdown,
    ) {
        loop {
            tokio::select! {
                () = self.listen_once(&database_url, timeout) => {}
                () = shutdown.wait() => return,
            }
            self.set_listening(false);
            self.forget_all();
            tokio::select! {
                () = tokio::time::sleep(RECONNECT_AFTER) => {}
                () = shutdown.wait() => return,
            }
        }
    }

    /// One connection's life: connect, LISTEN, then drop the cache on every notification until it fails.
    async fn listen_once(&self, database_url: &SecretString, timeout: Duration) {
        // The same URL, TLS included, as the pools (database::tls).
        let database::tls::PgTarget { mut config, tls } = match database::tls::postgres(
            database_url.expose_secret(),
        ) {
            Ok(target) => target,
            Err(error) => {
                return tracing::warn!(error = %Chain(&error), "API key change listener: bad database URL")
            }
        };
        // The connection only ever waits: TCP keepalives are what notice a peer that vanished without a word.
        config
            .application_name("snowlink-shortener-key-listener")
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES);
        let connecting = config.connect(tls);
        let (client, mut connection) = match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(connected)) => connected,
            Ok(Err(error)) => {
                return tracing::warn!(error = %Chain(&error), "API key change listener cannot connect")
            }
            Err(_) => return tracing::warn!("API key change listener: connect timed out"),
        };
        // Polling the connection is what sends LISTEN and reads its answer, so both run together.
        let statement = format!("LISTEN {CHANNEL}");
        let listen = client.batch_execute(&statement);
        let listening = async {
            tokio::pin!(listen);
            loop {
                tokio::select! {
                    listened = &mut listen => return listened.is_ok(),
                    message = std::future::poll_fn(|cx| connection.poll_message(cx)) => {
                        if !matches!(message, Some(Ok(_))) {
                            return false;
                        }
                    }
                }
            }
        };
        if !matches!(tokio::time::timeout(timeout, listening).await, Ok(true)) {
            return tracing::warn!("API key change listener: LISTEN failed");
        }
        // Whatever changed while nobody listened is unknown: start empty.
        self.forget_all();
        self.set_listening(true);
        tracing::debug!("listening for API key changes");
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => self.forget_all(),
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    return tracing::warn!(error = %Chain(&error), "API key change listener failed")
                }
                None => return tracing::warn!("API key change listener: connection closed"),
            }
        }
    }
}
