//! The redirect's command line. Every setting is a flag with an environment-variable fallback.

use database::DatabaseArgs;
use links::cache::RedisArgs;
use plumbing::clock::SharedClock;
use secrecy::SecretString;

// Defaults, each written once for its flag and for `RedirectArgs::for_tests`, so the two cannot drift.
const DEFAULT_REUSE_PORT: bool = false;
const DEFAULT_PERMANENT_MAX_AGE_SECS: u64 = 3_600;
// Lookups: which tier is asked, how long its answer is kept, how long it may take.
const DEFAULT_CONFIRM_MISSES_ON_PRIMARY: bool = true;
const DEFAULT_NEGATIVE_TTL_SECS: u64 = 5;
const DEFAULT_LOCAL_CACHE_TTL_SECS: u64 = 600;
const DEFAULT_DATABASE_LOOKUP_TIMEOUT_MS: u64 = 1_000;
// Misses: the primary's share of the redirect, and how many unknown codes one client may ask for.
const DEFAULT_PRIMARY_POOL_SIZE: usize = 4;
const DEFAULT_PRIMARY_FLUSH_POOL_SIZE: usize = 2;
const DEFAULT_PRIMARY_CONFIRMATIONS_PER_SECOND: u32 = 50;
const DEFAULT_PRIMARY_CONFIRMATIONS_BURST: u32 = 10;
const DEFAULT_UNKNOWN_CODES_PER_MINUTE: u32 = 600;
/// Five tries a minute: a person who mistyped gets on; guessing a password takes years.
const DEFAULT_PASSWORD_TRIES_PER_MINUTE: u32 = 5;
/// Thirty tries a minute on one link from everyone: six clients' worth, far more than the people who share a
/// link mistype, and the lock doubles from there.
const DEFAULT_PASSWORD_TRIES_PER_LINK_PER_MINUTE: u32 = 30;

/// Settings of the redirect service.
#[derive(Debug, Clone, clap::Args)]
pub struct RedirectArgs {
    /// Public address (GET/HEAD /{code}).
    #[arg(long, env = "REDIRECT_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: String,
    /// Admin address (/metrics, /healthz, /readyz).
    #[arg(long, env = "REDIRECT_ADMIN_LISTEN", default_value = "127.0.0.1:9081")]
    pub admin_listen: String,
    /// HTTP worker threads (0: one per core).
    #[arg(long, env = "REDIRECT_HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,
    /// Share the listen port with other replicas (SO_REUSEPORT), so several processes serve one port. Never the
    /// admin port: each replica answers its own probes and scrapes.
    #[arg(long, env = "REDIRECT_REUSE_PORT", default_value_t = DEFAULT_REUSE_PORT)]
    pub reuse_port: bool,
    /// PostgreSQL read replica for lookups (repeatable, or comma separated); without one, lookups use the primary.
    /// Secret: each carries a password.
    #[arg(
        long = "replica-url",
        env = "DATABASE_REPLICA_URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub replica_urls: Vec<SecretString>,
    /// Confirm a code missing on a replica on the primary before answering 404, when replica lag can explain
    /// the miss: the code was announced within the last minute, or minted within it by a generator that is minting
    /// now (within --primary-confirmations-per-second). Any other code is a 404 on the replica's word.
    #[arg(long, env = "CONFIRM_MISSES_ON_PRIMARY", default_value_t = DEFAULT_CONFIRM_MISSES_ON_PRIMARY, action = clap::ArgAction::Set)]
    pub confirm_misses_on_primary: bool,
    /// Most connections to the primary for lookups (misses confirmed, lookups while every replica fails). Small
    /// on purpose: every redirect replica has its own, and the primary's connections are what creates need.
    #[arg(long, env = "REDIRECT_PRIMARY_POOL_SIZE", default_value_t = DEFAULT_PRIMARY_POOL_SIZE)]
    pub primary_pool_size: usize,
    /// Connections to the primary for hit flushes and reads of codes changed a moment ago: a pool apart from
    /// --primary-pool-size's, so that a flood of misses cannot starve them.
    #[arg(long, env = "REDIRECT_PRIMARY_FLUSH_POOL_SIZE", default_value_t = DEFAULT_PRIMARY_FLUSH_POOL_SIZE)]
    pub primary_flush_pool_size: usize,
    /// Replica misses this process may confirm on the primary per second, all redirect workers together; past
    /// it (after a burst of --primary-confirmations-burst) the replica's 404 stands and is counted in
    /// `redirect_miss_confirmations_total{outcome="over_budget"}` (0: none are confirmed).
    #[arg(long, env = "PRIMARY_CONFIRMATIONS_PER_SECOND", default_value_t = DEFAULT_PRIMARY_CONFIRMATIONS_PER_SECOND)]
    pub primary_confirmations_per_second: u32,
    /// The token bucket's size: confirmations that may be made at once before the per-second rate applies.
    #[arg(long, env = "PRIMARY_CONFIRMATIONS_BURST", default_value_t = DEFAULT_PRIMARY_CONFIRMATIONS_BURST)]
    pub primary_confirmations_burst: u32,
    /// Unknown codes one client (an IPv4 address, an IPv6 /64; see --trusted-proxies) may ask for per minute; past
    /// it, until its Retry-After has passed, it gets 429 for every code this process does not hold in memory,
    /// without Redis or a database being asked, while the links held in memory keep redirecting (0: no bound).
    #[arg(long, env = "UNKNOWN_CODES_PER_MINUTE", default_value_t = DEFAULT_UNKNOWN_CODES_PER_MINUTE)]
    pub unknown_codes_per_minute: u32,
    /// Password tries one client (an IPv4 address, an IPv6 /64) may make per minute on one password-protected
    /// link, and four times that from one IPv6 /48; past it, 429 with Retry-After (0: no bound).
    #[arg(long, env = "PASSWORD_TRIES_PER_MINUTE", default_value_t = DEFAULT_PASSWORD_TRIES_PER_MINUTE)]
    pub password_tries_per_minute: u32,
    /// Password tries on one link per minute from all clients together; past it the link takes no tries for a
    /// minute, then twice as long each time it is spent again (up to 15 minutes), 429 with Retry-After to
    /// everyone meanwhile; a right password or 15 quiet minutes forget it (0: no bound).
    #[arg(long, env = "PASSWORD_TRIES_PER_LINK_PER_MINUTE", default_value_t = DEFAULT_PASSWORD_TRIES_PER_LINK_PER_MINUTE)]
    pub password_tries_per_link_per_minute: u32,
    /// The request header a CDN in front sets to the client's country (e.g. `CF-IPCountry`), counted per link in
    /// `GET /v1/urls/{code}/stats`; none by default (countries are not counted). Read only on requests whose
    /// peer is one of --trusted-proxies (a client could set it itself); name a header the CDN always overwrites.
    #[arg(long, env = "COUNTRY_HEADER", value_parser = parse_header_name)]
    pub country_header: Option<actix_web::http::header::HeaderName>,
    /// The service runs behind a proxy or an ingress (the chart sets it when its ingress is on): without
    /// --trusted-proxies every client is then the proxy, and a warning says so at start.
    #[arg(long, env = "BEHIND_PROXY", default_value_t = false, action = clap::ArgAction::Set)]
    pub behind_proxy: bool,
    /// How long an unknown code is cached as unknown, in seconds.
    #[arg(long, env = "NEGATIVE_TTL_SECS", default_value_t = DEFAULT_NEGATIVE_TTL_SECS)]
    pub negative_ttl_secs: u64,
    /// Memory for the in-process cache, in MiB (0 turns it off: every lookup goes to Redis). Entries weigh
    /// what they hold in the process (~680 bytes for a 60-byte URL, so 192 MiB is ~290k links); the default
    /// fits a 512 MiB pod.
    #[arg(long, env = "LOCAL_CACHE_MEMORY_MB", default_value_t = 192)]
    pub local_cache_memory_mb: u64,
    /// How long a found link stays in the in-process cache, in seconds. Invalidation messages drop entries at
    /// once; a message is lost only with its connection, and every reconnect drops the whole cache, so this is a
    /// backstop. Long enough that a cache of a million links is not refilled from Redis every minute.
    #[arg(long, env = "LOCAL_CACHE_TTL_SECS", default_value_t = DEFAULT_LOCAL_CACHE_TTL_SECS)]
    pub local_cache_ttl_secs: u64,
    /// Bound on one database lookup, in milliseconds (a lookup that takes longer counts as a failure).
    #[arg(long, env = "DATABASE_LOOKUP_TIMEOUT_MS", default_value_t = DEFAULT_DATABASE_LOOKUP_TIMEOUT_MS)]
    pub database_lookup_timeout_ms: u64,
    #[command(flatten)]
    pub breaker: plumbing::breaker::BreakerArgs,
    /// How often the hits of links with a visit limit are written to PostgreSQL, in milliseconds (a crash loses at
    /// most this much of them, and a visit limit can be overshot by this much traffic per replica). The hits of
    /// every other link are written with where they came from (`--hit-sources-flush-interval-ms`).
    #[arg(long, env = "HITS_FLUSH_INTERVAL_MS", default_value_t = 5_000)]
    pub hits_flush_interval_ms: u64,
    /// How often where hits came from (referrers, devices, countries), and the hits of links without a visit
    /// limit, are taken to be written, in milliseconds: summed in memory meanwhile (a link visited every second
    /// costs one write per interval, not one per second), then written a chunk every 250 ms over the next
    /// interval, so the database sees a trickle, not a burst. `/stats` lags by up to about two intervals, and a
    /// crash loses at most that much of those counts.
    #[arg(long, env = "HIT_SOURCES_FLUSH_INTERVAL_MS", default_value_t = 30_000)]
    pub hit_sources_flush_interval_ms: u64,
    /// Links whose counts (hits and where they came from) the paced write upserts a second, at most: the bound on
    /// what one redirect's analytics ask of the primary (about two row upserts per link). When more links are
    /// visited in a sources interval than this writes in one, the write takes longer and the next interval starts
    /// when it ends: `/stats` lags more, and past --hits-pending-max further counts are dropped
    /// (`redirect_hits_dropped_total`). Limited links' hits are not paced and not bounded by this.
    #[arg(long, env = "HIT_WRITES_PER_SECOND", default_value_t = 4_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub hit_writes_per_second: u64,
    /// Most (link, day) counts kept while flushes fail; counts for further links are dropped and counted.
    #[arg(long, env = "HITS_PENDING_MAX", default_value_t = 1_000_000)]
    pub hits_pending_max: usize,
    /// `max-age` of 301/308 answers, which browsers and CDNs may keep, in seconds.
    #[arg(long, env = "PERMANENT_MAX_AGE_SECS", default_value_t = DEFAULT_PERMANENT_MAX_AGE_SECS)]
    pub permanent_max_age_secs: u64,
    /// Who the client is behind proxies (the key of the bound on unknown codes).
    #[command(flatten)]
    pub client_ip: plumbing::client_ip::ClientIpArgs,
    /// How it stops (SIGTERM, SIGINT).
    #[command(flatten)]
    pub drain: plumbing::drain::DrainArgs,
    /// The primary: hit counts, confirming misses, and lookups when there is no replica.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Redis.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// The generators' ID layout, to read when a generated code was minted.
    #[command(flatten)]
    pub id_layout: idgen::config::LayoutArgs,
    /// The code key, to tell which counter number a compact code is (a miss of one from a block being issued may
    /// be replica lag). Without it, only compact codes announced one by one are confirmed on the primary.
    #[command(flatten)]
    pub code_key: links::code::CodeKeyArgs,
    /// Not a flag: what decides whether a link has expired and which day a hit counts for. Tests hand in a
    /// manual clock to make expiry exact.
    #[arg(skip = plumbing::clock::system())]
    pub clock: SharedClock,
}

impl RedirectArgs {
    /// Where the API and admin servers listen.
    pub fn listen_options(&self) -> plumbing::server::ListenOptions {
        plumbing::server::ListenOptions {
            listen: self.listen.clone(),
            admin_listen: self.admin_listen.clone(),
            http_workers: self.http_workers,
            reuse_port: self.reuse_port,
            drain_delay: self.drain.delay(),
        }
    }

    /// Settings for tests: ports chosen by the OS, everything else given.
    pub fn for_tests(database: DatabaseArgs, replica_urls: Vec<String>, redis: RedisArgs) -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            admin_listen: "127.0.0.1:0".into(),
            http_workers: 2,
            reuse_port: DEFAULT_REUSE_PORT,
            replica_urls: replica_urls.into_iter().map(SecretString::from).collect(),
            confirm_misses_on_primary: DEFAULT_CONFIRM_MISSES_ON_PRIMARY,
            primary_pool_size: DEFAULT_PRIMARY_POOL_SIZE,
            primary_flush_pool_size: DEFAULT_PRIMARY_FLUSH_POOL_SIZE,
            primary_confirmations_per_second: DEFAULT_PRIMARY_CONFIRMATIONS_PER_SECOND,
            primary_confirmations_burst: DEFAULT_PRIMARY_CONFIRMATIONS_BURST,
            unknown_codes_per_minute: DEFAULT_UNKNOWN_CODES_PER_MINUTE,
            password_tries_per_minute: DEFAULT_PASSWORD_TRIES_PER_MINUTE,
            password_tries_per_link_per_minute: DEFAULT_PASSWORD_TRIES_PER_LINK_PER_MINUTE,
            country_header: None,
            behind_proxy: false,
            negative_ttl_secs: DEFAULT_NEGATIVE_TTL_SECS,
            local_cache_memory_mb: 16,
            local_cache_ttl_secs: DEFAULT_LOCAL_CACHE_TTL_SECS,
            database_lookup_timeout_ms: DEFAULT_DATABASE_LOOKUP_TIMEOUT_MS,
            breaker: plumbing::breaker::BreakerArgs::default(),
            hits_flush_interval_ms: 200,
            hit_sources_flush_interval_ms: 200,
            hits_pending_max: 100_000,
            hit_writes_per_second: 4_000,
            permanent_max_age_secs: DEFAULT_PERMANENT_MAX_AGE_SECS,
            client_ip: plumbing::client_ip::ClientIpArgs::default(),
            drain: plumbing::drain::DrainArgs::immediate(),
            database,
            redis,
            id_layout: idgen::config::LayoutArgs::default(),
            code_key: links::code::CodeKeyArgs::with_key(links::code::key::TEST_KEY),
            clock: plumbing::clock::system(),
        }
    }
}

impl RedirectArgs {
    /// What is wrong with how clients are told apart, if anything: a country header or a proxy in front, and no
    /// proxy trusted to name the client.
    pub fn client_ip_warning(&self) -> Option<&'static str> {
        if !self.client_ip.trusted_proxies.is_empty() {
            return None;
        }
        if self.country_header.is_some() {
            Some(
                "--country-header is set but --trusted-proxies is empty: the header is never believed, every \
                 visit's country is unknown; list the proxies that write it",
            )
        } else if self.behind_proxy {
            Some(
                "behind a proxy (--behind-proxy) with no --trusted-proxies: every request counts as the proxy's, \
                 so all clients share one bound on unknown codes and on password tries; list the proxies",
            )
        } else {
            None
        }
    }
}

fn parse_header_name(raw: &str) -> Result<actix_web::http::header::HeaderName, String> {
    actix_web::http::header::HeaderName::from_bytes(raw.as_bytes())
        .map_err(|_| format!("{raw:?} is not a header name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> RedirectArgs {
        RedirectArgs::for_tests(
            DatabaseArgs::new("postgres://localhost/x"),
            vec![],
            RedisArgs::new("redis://localhost", "p:"),
        )
    }

    #[test]
    fn a_country_header_or_a_proxy_without_trusted_proxies_is_warned_about() {
        let mut plain = args();
        assert_eq!(plain.client_ip_warning(), None);
        plain.behind_proxy = true;
        assert!(plain
            .client_ip_warning()
            .is_some_and(|warning| warning.contains("--trusted-proxies")));

        let mut country = args();
        country.country_header = Some(actix_web::http::header::HeaderName::from_static(
            "cf-ipcountry",
        ));
        assert!(country
            .client_ip_warning()
            .is_some_and(|warning| warning.contains("--country-header")));

        country.behind_proxy = true;
        country.client_ip.trusted_proxies = vec!["10.0.0.0/8".parse().expect("a CIDR block")];
        assert_eq!(country.client_ip_warning(), None);
    }
}
