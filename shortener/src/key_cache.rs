//! API key → owner, cached in memory so a create does not ask PostgreSQL who is calling every time (that query
//! was the primary's largest per-request cost once inserts were grouped).
//!
//! Revocation must still take effect at once on every instance: a trigger announces every change to `api_keys`
//! on the channel `snowlink_api_keys` (migration 0003) and a dedicated connection LISTENs to it; a notification
//! drops the whole cache. The cache is trusted only while that connection is up: a lost connection drops the cache
//! and every lookup goes to the database until it is listening again. The TTL bounds what a connection that died
//! without telling anyone could leave behind.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use links::{apikey, chain::Chain, db::DbError, store::Store};
use plumbing::shutdown::Shutdown;
use secrecy::{ExposeSecret as _, SecretString};
use tokio_postgres::AsyncMessage;

/// The channel the migration's trigger notifies.
const CHANNEL: &str = "snowlink_api_keys";

/// Most keys remembered.
const CAPACITY: u64 = 100_000;

/// A silent listener connection is found dead after idle + interval × retries (25 s), well inside the TTL.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;

/// Wait before reconnecting the listener.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Owners of API keys by key hash, trusted only while changes are being heard.
pub struct KeyOwners {
    owners: Option<moka::sync::Cache<Vec<u8>, i64>>,
    listening: AtomicBool,
    /// Bumped on every change heard, so a lookup that overlapped a revoke does not cache what it read before.
    changes: AtomicU64,
}

impl KeyOwners {
    /// A cache whose entries live at most `ttl`; a zero `ttl` turns caching off.
    pub fn new(ttl: Duration) -> Arc<Self> {
        let owners = (!ttl.is_zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(ttl)
                .build()
        });
        Arc::new(Self {
            owners,
            listening: AtomicBool::new(false),
            changes: AtomicU64::new(0),
        })
    }

    /// Whether owners are cached at all (a zero TTL turns caching off, and with it the change listener).
    pub fn caches(&self) -> bool {
        self.owners.is_some()
    }

    /// The owner of the live key `key`, from the cache while it is trusted, else from the database.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn owner_of(&self, store: &Store, key: &str) -> Result<Option<i64>, DbError> {
        let hash = apikey::hash(key);
        let Some(owners) = self.trusted() else {
            return store.owner_of_key_hash(&hash).await;
        };
        if let Some(owner) = owners.get(&hash) {
            return Ok(Some(owner));
        }
        let changes = self.changes.load(Ordering::Acquire);
        let owner = store.owner_of_key_hash(&hash).await?;
        if let Some(owner) = owner {
            // Insert, then look again: a change heard in between (or a lost listener, which also counts as one)
            // takes the entry back out, whichever way the two interleave.
            owners.insert(hash.clone(), owner);
            if self.changes.load(Ordering::Acquire) != changes {
                owners.invalidate(&hash);
            }
        }
        Ok(owner)
    }

    fn trusted(&self) -> Option<&moka::sync::Cache<Vec<u8>, i64>> {
        self.owners
            .as_ref()
            .filter(|_| self.listening.load(Ordering::Acquire))
    }

    fn forget_all(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        if let Some(owners) = &self.owners {
            owners.invalidate_all();
        }
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
            self.listening.store(false, Ordering::Release);
            self.forget_all();
            tokio::select! {
                () = tokio::time::sleep(RECONNECT_AFTER) => {}
                () = shutdown.wait() => return,
            }
        }
    }

    /// One connection's life: connect, LISTEN, then drop the cache on every notification until it fails.
    async fn listen_once(&self, database_url: &SecretString, timeout: Duration) {
        // The same URL, TLS included, as the pools (links::tls).
        let links::tls::PgTarget { mut config, tls } = match links::tls::postgres(
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
        self.listening.store(true, Ordering::Release);
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
