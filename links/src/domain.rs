//! Domains: the hosts one install answers on. A link lives on one domain; a code is unique per domain.
//!
//! A link on the default domain (the host of the shortener's public base URL) is stored under its bare code, as
//! every link was before domains; a link on another domain under `host/code` (its [`link_key`]). A host has no `/`
//! and a code never does, so the one unique constraint on `links.code` makes a code unique per domain, and the
//! Redis entry, the invalidation messages, retired codes and the redirect's caches carry the domain for free.
//!
//! The table is small (a few hosts) and read on every request that names a host, so each service keeps a
//! [`DomainTable`] in memory and reloads it every few seconds ([`Domains`]); a change reaches every replica within
//! that period.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use database::DbError;

use crate::{model::Link, store::Store};

/// What separates the host from the code in a [`link_key`].
pub const KEY_SEPARATOR: char = '/';

/// The longest host (DNS names are at most 253 bytes).
pub const MAX_HOST_LEN: usize = 253;

/// A registered domain and what its redirect answers besides links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Lowercase, no port, no trailing dot.
    pub host: String,
    /// The domain of links created without one (the shortener's public base URL's host).
    pub is_default: bool,
    /// Where `GET /` on this domain redirects; `None`: 404.
    pub root_url: Option<String>,
    /// Where an unknown code on this domain redirects; `None`: the 404 page.
    pub not_found_url: Option<String>,
    /// Whether search engines may index it (`robots.txt`, `X-Robots-Tag`).
    pub allow_indexing: bool,
}

/// The key a link is stored under: its code on the default domain (`host` `None`), `host/code` on another.
pub fn link_key(host: Option<&str>, code: &str) -> String {
    match host {
        None => code.to_owned(),
        Some(host) => format!("{host}{KEY_SEPARATOR}{code}"),
    }
}

/// The host (`None`: the default domain) and the code of a stored key.
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once(KEY_SEPARATOR) {
        Some((host, code)) => (Some(host), code),
        None => (None, key),
    }
}

/// The code of a stored key, without its host.
pub fn code_of_key(key: &str) -> &str {
    split_key(key).1
}

impl Link {
    /// The host of the domain it lives on; `None` for the default domain.
    pub fn domain_host(&self) -> Option<&str> {
        split_key(&self.code).0
    }

    /// Its code as visitors type it, without the domain its key carries.
    pub fn short_code(&self) -> &str {
        code_of_key(&self.code)
    }
}

/// A host as a request or an operator names it, normalised: lowercase, port and trailing dot dropped. `None` for
/// anything that cannot be a DNS name or an IP address literal (IPv6 in brackets keeps them).
pub fn normalize_host(raw: &str) -> Option<String> {
    let mut buffer = [0_u8; MAX_HOST_LEN];
    host_in(raw.as_bytes(), &mut buffer).map(str::to_owned)
}

/// [`normalize_host`] into `buffer`, with no allocation (the redirect reads `Host` on every request on a domain).
pub fn host_in<'b>(raw: &[u8], buffer: &'b mut [u8; MAX_HOST_LEN]) -> Option<&'b str> {
    let host = if raw.first() == Some(&b'[') {
        // An IPv6 literal: the port, if any, follows the bracket.
        let end = raw.iter().position(|&byte| byte == b']')?;
        &raw[..=end]
    } else {
        raw.split(|&byte| byte == b':').next().unwrap_or_default()
    };
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return None;
    }
    let out = &mut buffer[..host.len()];
    for (to, &from) in out.iter_mut().zip(host) {
        if !(from.is_ascii_alphanumeric() || matches!(from, b'.' | b'-' | b'[' | b']' | b':')) {
            return None;
        }
        *to = from.to_ascii_lowercase();
    }
    std::str::from_utf8(out).ok()
}

/// The registered domains, by host.
#[derive(Debug, Default)]
pub struct DomainTable {
    by_host: HashMap<String, Arc<Domain>>,
    default: Option<Arc<Domain>>,
}

impl DomainTable {
    /// A table of `domains` (at most one of them the default).
    pub fn new(domains: Vec<Domain>) -> Self {
        let mut table = Self::default();
        for domain in domains {
            let domain = Arc::new(domain);
            if domain.is_default {
                table.default = Some(Arc::clone(&domain));
            }
            table.by_host.insert(domain.host.clone(), domain);
        }
        table
    }

    /// The domain registered as `host` (normalised), if any.
    pub fn get(&self, host: &str) -> Option<&Arc<Domain>> {
        self.by_host.get(host)
    }

    /// The default domain's settings, if its row was recorded.
    pub fn default_domain(&self) -> Option<&Arc<Domain>> {
        self.default.as_ref()
    }

    /// Whether any domain besides the default one is registered: when none is, no request needs its `Host` read.
    pub fn has_others(&self) -> bool {
        self.by_host.len() > usize::from(self.default.is_some())
    }

    /// Every domain, the default first, then by host.
    pub fn all(&self) -> Vec<Arc<Domain>> {
        let mut all: Vec<_> = self.by_host.values().cloned().collect();
        all.sort_by(|a, b| b.is_default.cmp(&a.is_default).then(a.host.cmp(&b.host)));
        all
    }

    /// The domain a request's `Host` names (a non-default domain), or `None` for the default domain: a host that
    /// is no registered domain is served as the default one.
    pub fn for_request(&self, host_header: Option<&[u8]>) -> Option<&Arc<Domain>> {
        if !self.has_others() {
            return None;
        }
        let mut buffer = [0_u8; MAX_HOST_LEN];
        let host = host_in(host_header?, &mut buffer)?;
        self.by_host.get(host).filter(|domain| !domain.is_default)
    }
}

/// How often a service reloads the table: a domain added or changed reaches every replica within this.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// A name that is no registered domain reloads the table at most this often (see [`Domains::reload_for_miss`]).
const MISS_RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// The current [`DomainTable`], shared by a service's threads and swapped whole by its reloader.
#[derive(Clone, Default)]
pub struct Domains {
    table: Arc<ArcSwap<DomainTable>>,
    /// Moves with every [`store`](Self::store): a thread that keeps its own copy of the table (the redirect's
    /// HTTP workers) compares it, one relaxed load, instead of loading the table on every request.
    version: Arc<AtomicU64>,
    /// When a miss last reloaded the table; held while one does.
    last_miss_reload: Arc<tokio::sync::Mutex<Option<tokio::time::Instant>>>,
}

impl Domains {
    /// The table as last loaded (cheap: no lock shared by readers).
    pub fn load(&self) -> arc_swap::Guard<Arc<DomainTable>> {
        self.table.load()
    }

    /// The table as last loaded, owned.
    pub fn load_full(&self) -> Arc<DomainTable> {
        self.table.load_full()
    }

    /// Which table is held: it moves whenever one is stored.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Replaces the table.
    pub fn store(&self, table: DomainTable) {
        self.table.store(Arc::new(table));
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Reads the table from `store` and replaces the one held, within [`RELOAD_EVERY`].
    ///
    /// # Errors
    /// When the database fails or is too slow; the old table stays.
    pub async fn reload(&self, store: &Store) -> Result<(), DbError> {
        let domains = tokio::time::timeout(RELOAD_EVERY, store.list_domains())
            .await
            .map_err(|elapsed| DbError::Unavailable(Arc::new(elapsed)))??;
        self.store(DomainTable::new(domains));
        Ok(())
    }

    /// Reloads the table because a request named a host it lacks (an operator may have just added it), at
    /// most once per second whatever requests send: requests naming made-up hosts cost the database nothing
    /// more. Failures keep the table as it is.
    pub async fn reload_for_miss(&self, store: &Store) {
        let mut last = self.last_miss_reload.lock().await;
        if last.is_some_and(|at| at.elapsed() < MISS_RELOAD_AT_MOST_EVERY) {
            return;
        }
        *last = Some(tokio::time::Instant::now());
        if let Err(error) = self.reload(store).await {
            tracing::warn!(%error, "reloading the domains failed");
        }
    }

    /// Reloads the table every [`RELOAD_EVERY`] until `stop` completes; failures keep the last table and are
    /// logged.
    pub async fn keep_loaded(self, store: Store, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut every = tokio::time::interval(RELOAD_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    if let Err(error) = self.reload(&store).await {
                        tracing::warn!(%error, "reloading the domains failed; keeping the last ones");
                    }
                }
                () = &mut stop => return,
            }
        }
    }
}

/// Why a domain was not removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// Gone from the table.
    Removed,
    /// No such domain.
    NotFound,
    /// Live links use it: this many.
    InUse(i64),
    /// The default domain cannot be removed (it is the shortener's public base URL's).
    IsDefault,
}

const DOMAIN_COLUMNS: &str = "host, is_default, root_url, not_found_url, allow_indexing";

impl Store {
    /// Every registered domain.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn list_domains(&self) -> Result<Vec<Domain>, DbError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!("SELECT {DOMAIN_COLUMNS} FROM domains ORDER BY host"),
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|row| Domain {
                host: row.get(0),
                is_default: row.get(1),
                root_url: row.get(2),
                not_found_url: row.get(3),
                allow_indexing: row.get(4),
            })
            .collect())
    }

    /// Registers `domain` (its `is_default` is ignored: only the shortener records the default), or replaces the
    /// settings of the one registered with its host.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn put_domain(&self, domain: &Domain) -> Result<(), DbError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "INSERT INTO domains (host, root_url, not_found_url, allow_indexing) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (host) DO UPDATE SET root_url = EXCLUDED.root_url,
                     not_found_url = EXCLUDED.not_found_url, allow_indexing = EXCLUDED.allow_indexing",
                &[
                    &domain.host,
                    &domain.root_url,
                    &domain.not_found_url,
                    &domain.allow_indexing,
                ],
            )
            .await?;
        Ok(())
    }

    /// Marks `host` as the default domain (registering it if needed), unless it already is: run by every
    /// shortener at start with its public base URL's host.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn record_default_domain(&self, host: &str) -> Result<(), DbError> {
        let mut client = self.pool().get().await?;
        let current: Option<String> = client
            .query_opt("SELECT host FROM domains WHERE is_default", &[])
            .await?
            .map(|row| row.get(0));
        if current.as_deref() == Some(host) {
            return Ok(());
        }
        let transaction = client.transaction().await?;
        transaction
            .execute(
                "UPDATE domains SET is_default = false WHERE is_default",
                &[],
            )
            .await?;
        transaction
            .execute(
                "INSERT INTO domains (host, is_default) VALUES ($1, true)
                 ON CONFLICT (host) DO UPDATE SET is_default = true",
                &[&host],
            )
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Removes `host`, unless it is the default or live links use it (their codes would stop answering).
    /// Deleted and expired links keep their keys: the host registered again finds them as they were.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn remove_domain(&self, host: &str) -> Result<Removal, DbError> {
        let mut client = self.pool().get().await?;
        let transaction = client.transaction().await?;
        let Some(row) = transaction
            .query_opt(
                "SELECT is_default FROM domains WHERE host = $1 FOR UPDATE",
                &[&host],
            )
            .await?
        else {
            return Ok(Removal::NotFound);
        };
        if row.get::<_, bool>(0) {
            return Ok(Removal::IsDefault);
        }
        // starts_with, not a range or LIKE on the index: correct under any collation, and an operator's rare
        // command can afford the scan.
        let live: i64 = transaction
            .query_one(
                "SELECT count(*) FROM links WHERE starts_with(code, $1 || '/') AND deleted_at IS NULL
                   AND (expires_at IS NULL OR expires_at > now())",
                &[&host],
            )
            .await?
            .get(0);
        if live > 0 {
            return Ok(Removal::InUse(live));
        }
        transaction
            .execute("DELETE FROM domains WHERE host = $1", &[&host])
            .await?;
        transaction.commit().await?;
        Ok(Removal::Removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(host: &str, is_default: bool) -> Domain {
        Domain {
            host: host.into(),
            is_default,
            root_url: None,
            not_found_url: None,
            allow_indexing: false,
        }
    }

    #[test]
    fn keys_carry_the_host_only_off_the_default_domain() {
        assert_eq!(link_key(None, "abc"), "abc");
        assert_eq!(link_key(Some("go.example"), "abc"), "go.example/abc");
        assert_eq!(split_key("go.example/abc"), (Some("go.example"), "abc"));
        assert_eq!(split_key("abc"), (None, "abc"));
    }

    #[test]
    fn hosts_are_lowercased_without_port_or_trailing_dot() {
        for (raw, want) in [
            ("Go.Example", Some("go.example")),
            ("go.example:8081", Some("go.example")),
            ("go.example.", Some("go.example")),
            ("go.example.:443", Some("go.example")),
            ("[::1]:8081", Some("[::1]")),
            ("", None),
            (":80", None),
            ("evil/host", None),
            ("a b", None),
        ] {
            assert_eq!(normalize_host(raw).as_deref(), want, "{raw}");
        }
        assert_eq!(normalize_host(&"a".repeat(254)), None);
    }

    #[test]
    fn an_unregistered_host_is_the_default_domain() {
        let table = DomainTable::new(vec![domain("sho.rt", true), domain("go.example", false)]);
        assert!(table.has_others());
        assert_eq!(
            table
                .for_request(Some(b"GO.example:8081"))
                .map(|d| d.host.as_str()),
            Some("go.example")
        );
        assert!(table.for_request(Some(b"sho.rt")).is_none());
        assert!(table.for_request(Some(b"other.example")).is_none());
        assert!(table.for_request(None).is_none());
        let only_default = DomainTable::new(vec![domain("sho.rt", true)]);
        assert!(!only_default.has_others());
        assert_eq!(
            only_default.default_domain().map(|d| d.host.as_str()),
            Some("sho.rt")
        );
    }
}
