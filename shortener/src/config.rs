//! The shortener's command line. Every setting is a flag with an environment-variable fallback.

use database::DatabaseArgs;
use idgen::config::IdgenArgs;
use links::cache::RedisArgs;
use plumbing::telemetry::LogArgs;

/// snowlink shortener: the write API for short links.
///
/// `serve` runs the API (/v1/urls …) and its admin port (/metrics, /healthz, /readyz); it applies pending
/// migrations at start. `migrate` only applies them. `keys` creates, lists and revokes API keys. `links` shows,
/// disables and enables a link. `cleanup --once` purges expired and deleted links once (for a CronJob).
///
/// Any environment variable below, X, may instead be given as X_FILE: the path of a file holding the value (one
/// trailing newline dropped), e.g. DATABASE_URL_FILE for a mounted Secret. Setting both is an error.
#[derive(Debug, clap::Parser)]
#[command(version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// How it logs.
    #[command(flatten)]
    pub log: LogArgs,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the API.
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations, then exit.
    Migrate(DatabaseArgs),
    /// Manage API keys.
    Keys(KeysArgs),
    /// Look at a link, and take it down or put it back (abuse reports). Exit status 3: no link has that code.
    Links(LinksArgs),
    /// Purge expired and deleted links once, then exit (for a Kubernetes CronJob; run `serve` with
    /// `--cleanup off` then). Concurrent runs are safe.
    Cleanup(CleanupCommandArgs),
    /// Register, list and remove the domains links live on (the default one is the --public-base-url's host).
    Domains(DomainsArgs),
    /// Import another shortener's export file as an API key's links and print the report (JSON) on stdout, as
    /// `POST /v1/import` answers it. Leases a worker ID (and blocks of the code counter) like `serve`.
    Import(Box<ImportArgs>),
}

/// `import` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The file's format.
    #[arg(long, value_parser = ["bitly", "shlink", "yourls", "kutt", "csv"])]
    pub format: String,
    /// The export file.
    pub file: std::path::PathBuf,
    /// The ID of the API key whose links they become (`shortener keys list`).
    #[arg(long)]
    pub owner: i64,
    /// The registered domain the links go on (default: the default domain).
    #[arg(long)]
    pub domain: Option<String>,
    /// Check every line, codes taken included, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Host names long URLs may not point at, besides the registered domains (as `serve` takes them).
    #[arg(long, env = "OWN_HOSTS", value_delimiter = ',')]
    pub own_hosts: Vec<String>,
    /// Domains long URLs may not point at (as `serve` takes them).
    #[arg(long, env = "BLOCKED_DOMAINS", value_delimiter = ',')]
    pub blocked_domains: Vec<String>,
    /// A file of blocked domains (as `serve` takes it).
    #[arg(long, env = "BLOCKLIST_FILE")]
    pub blocklist_file: Option<std::path::PathBuf>,
    /// Which codes lines without one get (as `serve` makes them).
    #[arg(long, env = "CODE_STYLE", value_enum, default_value_t = crate::codes::CodeStyle::Compact)]
    pub code_style: crate::codes::CodeStyle,
    /// The key of compact codes.
    #[command(flatten)]
    pub code_key: links::code::CodeKeyArgs,
    /// ID generation (a worker ID is leased for the import).
    #[command(flatten)]
    pub idgen: IdgenArgs,
    /// PostgreSQL.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `domains` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct DomainsArgs {
    /// What to do with domains.
    #[command(subcommand)]
    pub command: DomainsCommand,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `domains` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum DomainsCommand {
    /// Register a domain, or change the settings of one registered (the default one's too). Every shortener and
    /// redirect picks it up within 5 s. Point its DNS at the redirect.
    Add {
        /// The host, e.g. go.example.com (lowercased; a port or trailing dot is dropped).
        host: String,
        /// Where `GET /` on the domain redirects (default: 404).
        #[arg(long)]
        root_url: Option<url::Url>,
        /// Where an unknown code on the domain redirects (default: the 404 page).
        #[arg(long)]
        not_found_url: Option<url::Url>,
        /// Let search engines index the domain's links (default: robots.txt disallows all, and redirects carry
        /// `X-Robots-Tag: noindex`).
        #[arg(long)]
        allow_indexing: bool,
    },
    /// List the domains: host, default, root URL, not-found URL, indexing.
    List,
    /// Remove a domain; refused while live links use it (exit status 3), and for the default domain.
    Remove {
        /// The host.
        host: String,
    },
}

/// `keys` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct KeysArgs {
    /// What to do with keys.
    #[command(subcommand)]
    pub command: KeysCommand,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// `keys` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once on stdout (only its SHA-256 hash is stored; it cannot be shown again).
    Create {
        /// A name that says whose key it is (used to revoke it).
        #[arg(long)]
        name: String,
    },
    /// List keys: id, name, created, revoked (never the keys themselves).
    List,
    /// Revoke every live key with this name; running shorteners refuse it at once, their links keep working.
    Revoke {
        /// The key's name.
        name: String,
    },
}

/// `links` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct LinksArgs {
    /// What to do with the link.
    #[command(subcommand)]
    pub command: LinksCommand,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Redis (the cached copy to drop, the invalidation channel to publish on).
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// `links` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum LinksCommand {
    /// Print a link: code, long URL, owner, created, expires, state, hits.
    Show {
        /// The short code (`host/code` for a link on a domain other than the default one).
        code: String,
    },
    /// Disable a link: every redirect replica answers 410 within a second (once Redis is reachable, if it is
    /// down now). Its owner still sees it in the API.
    Disable {
        /// The short code (`host/code` for a link on a domain other than the default one).
        code: String,
        /// Why (an abuse report's reference, say), shown by `links show`.
        #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
        reason: String,
    },
    /// Enable a disabled link again.
    Enable {
        /// The short code (`host/code` for a link on a domain other than the default one).
        code: String,
    },
    /// Free the code of an expired or deleted link (an alias, most often) for a new link at once, instead of
    /// after --retired-code-grace-days: the link and its hits are purged and its old short URL answers 404, then
    /// whatever its next owner makes of it. A live link keeps its code.
    Free {
        /// The short code or alias.
        code: String,
    },
}

// Defaults, each written once for its flag and for `ServeArgs::for_tests`, so the two cannot drift.
const DEFAULT_RATE_LIMIT_ANONYMOUS_PER_MINUTE: u32 = 10;
const DEFAULT_RATE_LIMIT_ANONYMOUS_BURST: u32 = 5;
const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 2_000;
const DEFAULT_INSERT_WORKERS: u16 = 2;
const DEFAULT_INSERT_LINGER_MS: u64 = 5;
const DEFAULT_API_KEY_CACHE_SECS: u64 = 60;
const DEFAULT_RATE_LIMIT_UNKNOWN_KEYS_PER_MINUTE: u32 = 60;
const DEFAULT_RATE_LIMIT_UNKNOWN_KEYS_BURST: u32 = 20;
const DEFAULT_PASSWORD_OPS_PER_MINUTE: u32 = 120;
const DEFAULT_PASSWORD_OPS_BURST: u32 = 30;

/// What `serve` does about schema migrations at start (`--migrate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MigrateMode {
    /// Apply pending migrations.
    Auto,
    /// Apply none; wait until a migration Job has applied them.
    Skip,
}

/// `serve` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// API address.
    #[arg(long, env = "SHORTENER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Admin address (/metrics, /healthz, /readyz).
    #[arg(long, env = "SHORTENER_ADMIN_LISTEN", default_value = "127.0.0.1:9080")]
    pub admin_listen: String,
    /// HTTP worker threads (0: one per core).
    #[arg(long, env = "SHORTENER_HTTP_WORKERS", default_value_t = 0)]
    pub http_workers: usize,
    /// Base of the short URLs handed out: the redirect's public address.
    #[arg(long, env = "PUBLIC_BASE_URL", default_value = "http://127.0.0.1:8081")]
    pub public_base_url: url::Url,
    /// Host names of the shortener itself that long URLs may not point at (comma separated; the public base
    /// URL's host is always included).
    #[arg(long, env = "OWN_HOSTS", value_delimiter = ',')]
    pub own_hosts: Vec<String>,
    /// Domains long URLs may not point at (comma separated; each blocks its subdomains too).
    #[arg(long, env = "BLOCKED_DOMAINS", value_delimiter = ',')]
    pub blocked_domains: Vec<String>,
    /// A file of blocked domains, one per line (`#` comments), read at start.
    #[arg(long, env = "BLOCKLIST_FILE")]
    pub blocklist_file: Option<std::path::PathBuf>,
    /// Let requests without an API key create links (a public demo); they get the anonymous rate limit.
    #[arg(long, env = "ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,
    /// Let webhooks reach loopback, private, link-local and other non-public addresses (a receiver on this
    /// machine under `make run`). Off in production: a webhook is a request from inside the network on a user's
    /// say, and cloud metadata answers on a link-local address.
    #[arg(long, env = "ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
    /// Requests per minute per client (an IPv4 address or IPv6 /64; see --trusted-proxies) on /v1 (0: no limit).
    #[arg(long, env = "RATE_LIMIT_IP_PER_MINUTE", default_value_t = 60_000)]
    pub rate_limit_ip_per_minute: u32,
    /// Burst allowed per client.
    #[arg(long, env = "RATE_LIMIT_IP_BURST", default_value_t = 2_000)]
    pub rate_limit_ip_burst: u32,
    /// Requests per minute per API key (0: no limit).
    #[arg(long, env = "RATE_LIMIT_KEY_PER_MINUTE", default_value_t = 30_000)]
    pub rate_limit_key_per_minute: u32,
    /// Burst allowed per API key.
    #[arg(long, env = "RATE_LIMIT_KEY_BURST", default_value_t = 1_000)]
    pub rate_limit_key_burst: u32,
    /// Anonymous creations per minute per client (with --allow-anonymous).
    #[arg(long, env = "RATE_LIMIT_ANONYMOUS_PER_MINUTE", default_value_t = DEFAULT_RATE_LIMIT_ANONYMOUS_PER_MINUTE)]
    pub rate_limit_anonymous_per_minute: u32,
    /// Burst of anonymous creations per client.
    #[arg(long, env = "RATE_LIMIT_ANONYMOUS_BURST", default_value_t = DEFAULT_RATE_LIMIT_ANONYMOUS_BURST)]
    pub rate_limit_anonymous_burst: u32,
    /// API keys the database does not know, per client and minute; past it, the client's keys that are not
    /// in memory are refused with 429 before any query (keys it uses successfully keep working; 0: no bound).
    #[arg(long, env = "RATE_LIMIT_UNKNOWN_KEYS_PER_MINUTE", default_value_t = DEFAULT_RATE_LIMIT_UNKNOWN_KEYS_PER_MINUTE)]
    pub rate_limit_unknown_keys_per_minute: u32,
    /// Burst of unknown keys per client.
    #[arg(long, env = "RATE_LIMIT_UNKNOWN_KEYS_BURST", default_value_t = DEFAULT_RATE_LIMIT_UNKNOWN_KEYS_BURST)]
    pub rate_limit_unknown_keys_burst: u32,
    /// Password hashes (Argon2id, 19 MiB and tens of milliseconds of CPU each) that may run at once in this
    /// process; a request finding them all taken is answered 503 at once (0: one per core).
    #[arg(long, env = "PASSWORD_HASH_SLOTS", default_value_t = 0)]
    pub password_hash_slots: usize,
    /// Password operations (a create or PATCH that sets a password) per API key, or per anonymous client, and
    /// minute; past it 429 before any hashing (0: no budget).
    #[arg(long, env = "PASSWORD_OPS_PER_MINUTE", default_value_t = DEFAULT_PASSWORD_OPS_PER_MINUTE)]
    pub password_ops_per_minute: u32,
    /// Burst of password operations per API key or anonymous client.
    #[arg(long, env = "PASSWORD_OPS_BURST", default_value_t = DEFAULT_PASSWORD_OPS_BURST)]
    pub password_ops_burst: u32,
    /// Longest a request may take before it is answered 503 (a dependency is too slow), in milliseconds.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = DEFAULT_REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,
    /// Insert statements in flight at once. Links of concurrent creates queue and the next free inserter writes
    /// all of them in one statement and commit, so a few are enough; each holds a database connection.
    #[arg(long, env = "INSERT_WORKERS", default_value_t = DEFAULT_INSERT_WORKERS, value_parser = clap::value_parser!(u16).range(1..))]
    pub insert_workers: u16,
    /// While creates keep coming, how long a group of fewer than 8 links waits for more before its statement and
    /// commit, in milliseconds (0: never). A lone create after a quiet spell never waits; under load, this is the
    /// most a create waits for company, and what it buys is fewer durable commits (WAL flushes) per link.
    #[arg(long, env = "INSERT_LINGER_MS", default_value_t = DEFAULT_INSERT_LINGER_MS, value_parser = clap::value_parser!(u64).range(0..=50))]
    pub insert_linger_ms: u64,
    /// Longest an API key's owner is remembered in memory, in seconds (0: ask the database on every request).
    /// A revoke reaches every instance at once through PostgreSQL LISTEN/NOTIFY; this bounds only what a
    /// listening connection that died silently could leave behind.
    #[arg(long, env = "API_KEY_CACHE_SECS", default_value_t = DEFAULT_API_KEY_CACHE_SECS)]
    pub api_key_cache_secs: u64,
    /// Who the client is behind proxies (the key of the per-client limits).
    #[command(flatten)]
    pub client_ip: plumbing::client_ip::ClientIpArgs,
    /// How it stops (SIGTERM, SIGINT).
    #[command(flatten)]
    pub drain: plumbing::drain::DrainArgs,
    /// Schema migrations at start: `auto` applies those pending (instances take turns under an advisory lock);
    /// `skip` applies none, because a migration Job does (the chart's), and waits until the database has every
    /// migration this binary knows.
    #[arg(long, env = "SHORTENER_MIGRATE", value_enum, default_value_t = MigrateMode::Auto)]
    pub migrate: MigrateMode,
    /// PostgreSQL.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// PostgreSQL read replicas (comma separated, as the redirect takes them; the first is used) for search,
    /// stats, hits per day and exports, which may lag the primary a moment; without one they read the primary.
    /// Reads of one link and everything a write needs stay on the primary. Secret: each carries a password.
    #[arg(
        long = "replica-url",
        env = "DATABASE_REPLICA_URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub replica_urls: Vec<secrecy::SecretString>,
    /// Redis.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// The breaker in front of Redis: while open, creates skip the write-through instead of each waiting out
    /// Redis's command timeout.
    #[command(flatten)]
    pub breaker: plumbing::breaker::BreakerArgs,
    /// ID generation.
    #[command(flatten)]
    pub idgen: IdgenArgs,
    /// Which codes new links get: `compact` (7 characters, needs CODE_KEY) or `snowflake` (base62 of the ID,
    /// 10–11 characters). Codes of either style keep redirecting whatever is chosen later.
    #[arg(long, env = "CODE_STYLE", value_enum, default_value_t = crate::codes::CodeStyle::Compact)]
    pub code_style: crate::codes::CodeStyle,
    /// The key of compact codes.
    #[command(flatten)]
    pub code_key: links::code::CodeKeyArgs,
    /// Webhook delivery.
    #[command(flatten)]
    pub delivery: crate::delivery::DeliveryArgs,
    /// The expiry cleanup.
    #[command(flatten)]
    pub cleanup: CleanupArgs,
    /// Bounds on CSV exports.
    #[command(flatten)]
    pub exports: ExportArgs,
    /// Not a flag: what checks that an expiry lies ahead and which day "today" is. Tests hand in a manual
    /// clock, so a day boundary or an expiry happens when they say.
    #[arg(skip = plumbing::clock::system())]
    pub clock: plumbing::clock::SharedClock,
}

impl ServeArgs {
    /// Settings for tests: ports chosen by the OS, everything else given.
    pub fn for_tests(database: DatabaseArgs, redis: RedisArgs, idgen: IdgenArgs) -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            admin_listen: "127.0.0.1:0".into(),
            http_workers: 2,
            #[expect(clippy::unwrap_used, reason = "a constant, valid URL")]
            public_base_url: url::Url::parse("http://sho.rt.test/").unwrap(),
            own_hosts: Vec::new(),
            blocked_domains: Vec::new(),
            blocklist_file: None,
            allow_anonymous: false,
            allow_private_webhooks: false,
            rate_limit_ip_per_minute: 0,
            rate_limit_ip_burst: 0,
            rate_limit_key_per_minute: 0,
            rate_limit_key_burst: 0,
            rate_limit_anonymous_per_minute: DEFAULT_RATE_LIMIT_ANONYMOUS_PER_MINUTE,
            rate_limit_anonymous_burst: DEFAULT_RATE_LIMIT_ANONYMOUS_BURST,
            rate_limit_unknown_keys_per_minute: DEFAULT_RATE_LIMIT_UNKNOWN_KEYS_PER_MINUTE,
            rate_limit_unknown_keys_burst: DEFAULT_RATE_LIMIT_UNKNOWN_KEYS_BURST,
            password_hash_slots: 0,
            password_ops_per_minute: DEFAULT_PASSWORD_OPS_PER_MINUTE,
            password_ops_burst: DEFAULT_PASSWORD_OPS_BURST,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            insert_workers: DEFAULT_INSERT_WORKERS,
            insert_linger_ms: DEFAULT_INSERT_LINGER_MS,
            api_key_cache_secs: DEFAULT_API_KEY_CACHE_SECS,
            client_ip: plumbing::client_ip::ClientIpArgs::default(),
            drain: plumbing::drain::DrainArgs::immediate(),
            migrate: MigrateMode::Auto,
            database,
            replica_urls: Vec::new(),
            redis,
            breaker: plumbing::breaker::BreakerArgs::default(),
            idgen,
            code_style: crate::codes::CodeStyle::Compact,
            code_key: links::code::CodeKeyArgs::with_key(links::code::key::TEST_KEY),
            delivery: crate::delivery::DeliveryArgs::default(),
            // Off unless a test is about it: every instance would otherwise campaign in ZooKeeper.
            cleanup: CleanupArgs {
                enabled: false,
                ..CleanupArgs::default()
            },
            exports: ExportArgs::default(),
            clock: plumbing::clock::system(),
        }
    }

    /// Where the API and admin servers listen.
    pub fn listen_options(&self) -> plumbing::server::ListenOptions {
        plumbing::server::ListenOptions {
            listen: self.listen.clone(),
            admin_listen: self.admin_listen.clone(),
            http_workers: self.http_workers,
            reuse_port: false,
            drain_delay: self.drain.delay(),
        }
    }

    /// The base of short URLs, ending in `/` so that a code can be appended.
    pub fn public_base_url(&self) -> url::Url {
        let mut base = self.public_base_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base
    }

    /// The host names long URLs may not point at, lower-case.
    pub fn own_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .own_hosts
            .iter()
            .map(|host| host.trim().to_ascii_lowercase())
            .collect();
        hosts.extend(self.public_base_url.host_str().map(str::to_ascii_lowercase));
        hosts.retain(|host| !host.is_empty());
        hosts
    }

    /// The blocklist from `--blocked-domains` and `--blocklist-file`.
    ///
    /// # Errors
    /// When the file cannot be read or an entry is not a host name.
    pub fn blocklist(&self) -> anyhow::Result<links::validate::Blocklist> {
        blocklist(&self.blocked_domains, self.blocklist_file.as_deref())
    }

    /// The password hasher's slots and per-key budget.
    pub fn password_hasher(
        &self,
        registry: &prometheus::Registry,
    ) -> anyhow::Result<crate::hashing::PasswordHasher> {
        crate::hashing::PasswordHasher::register(
            self.password_hash_slots,
            crate::limits::Limit {
                per_minute: self.password_ops_per_minute,
                burst: self.password_ops_burst,
            },
            registry,
        )
    }

    /// The rate limits.
    pub fn rate_limits(&self) -> crate::limits::RateLimits {
        use crate::limits::Limit;
        crate::limits::RateLimits::new(
            Limit {
                per_minute: self.rate_limit_ip_per_minute,
                burst: self.rate_limit_ip_burst,
            },
            Limit {
                per_minute: self.rate_limit_key_per_minute,
                burst: self.rate_limit_key_burst,
            },
            Limit {
                per_minute: self.rate_limit_anonymous_per_minute,
                burst: self.rate_limit_anonymous_burst,
            },
        )
        .with_unknown_keys(Limit {
            per_minute: self.rate_limit_unknown_keys_per_minute,
            burst: self.rate_limit_unknown_keys_burst,
        })
    }
}

/// The blocklist from `--blocked-domains` and `--blocklist-file`.
///
/// # Errors
/// When the file cannot be read or an entry is not a host name.
pub fn blocklist(
    blocked_domains: &[String],
    blocklist_file: Option<&std::path::Path>,
) -> anyhow::Result<links::validate::Blocklist> {
    use anyhow::Context as _;
    let mut list = links::validate::Blocklist::new(blocked_domains)
        .map_err(|entry| anyhow::anyhow!("--blocked-domains: {entry:?} is not a host name"))?;
    if let Some(path) = blocklist_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --blocklist-file {}", path.display()))?;
        let from_file = links::validate::Blocklist::parse_file(&text).map_err(|entry| {
            anyhow::anyhow!(
                "--blocklist-file {}: {entry:?} is not a host name",
                path.display()
            )
        })?;
        list.extend(from_file);
    }
    Ok(list)
}

// Defaults, each written once for its flag and for `PurgeArgs::default`, so the two cannot drift.
const DEFAULT_CLEANUP_BATCH: u32 = 1000;
const DEFAULT_RETIRED_CODE_GRACE_DAYS: u32 = 30;

/// How much one cleanup statement purges.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct PurgeArgs {
    /// Links purged per statement (each batch is one transaction; smaller batches hold row locks shorter).
    #[arg(long, env = "SHORTENER_CLEANUP_BATCH", default_value_t = DEFAULT_CLEANUP_BATCH,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub cleanup_batch: u32,
    /// Days a purged link's code stays taken (its short URL answers 410) before the cleanup frees it, so an
    /// expired alias can be taken again; 0 keeps codes taken forever. `shortener links free CODE` frees one at
    /// once.
    #[arg(long, env = "RETIRED_CODE_GRACE_DAYS", default_value_t = DEFAULT_RETIRED_CODE_GRACE_DAYS)]
    pub retired_code_grace_days: u32,
}

impl Default for PurgeArgs {
    fn default() -> Self {
        Self {
            cleanup_batch: DEFAULT_CLEANUP_BATCH,
            retired_code_grace_days: DEFAULT_RETIRED_CODE_GRACE_DAYS,
        }
    }
}

// Defaults, each written once for its flag and for `CleanupArgs::default`, so the two cannot drift.
const DEFAULT_CLEANUP_ELECTION_PATH: &str = "/snowlink/shortener/cleanup";
const DEFAULT_CLEANUP_INTERVAL_SECS: &str = "60";

/// The expiry cleanup inside `serve`: it runs on the one instance elected leader in ZooKeeper.
#[derive(Debug, Clone, clap::Args)]
pub struct CleanupArgs {
    /// Run the cleanup on whichever instance is elected (`on`), or not at all (`off`: a CronJob runs
    /// `shortener cleanup --once` instead).
    #[arg(long = "cleanup", env = "SHORTENER_CLEANUP", default_value = "on", action = clap::ArgAction::Set,
          value_name = "on|off", hide_possible_values = true,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub enabled: bool,
    /// Seconds between cleanup passes (fractions allowed).
    #[arg(long = "cleanup-interval-secs", env = "SHORTENER_CLEANUP_INTERVAL_SECS", default_value = DEFAULT_CLEANUP_INTERVAL_SECS,
          value_name = "SECS", value_parser = parse_seconds)]
    pub cleanup_interval: std::time::Duration,
    /// ZooKeeper node under which shortener instances elect the cleanup leader.
    #[arg(
        long,
        env = "SHORTENER_CLEANUP_ELECTION_PATH",
        default_value = DEFAULT_CLEANUP_ELECTION_PATH
    )]
    pub cleanup_election_path: String,
    /// Batch size.
    #[command(flatten)]
    pub purge: PurgeArgs,
}

impl Default for CleanupArgs {
    fn default() -> Self {
        Self {
            enabled: true,
            // The flag's parser, so the two cannot disagree; the constant's test below shows it parses.
            cleanup_interval: parse_seconds(DEFAULT_CLEANUP_INTERVAL_SECS).unwrap_or_default(),
            cleanup_election_path: DEFAULT_CLEANUP_ELECTION_PATH.into(),
            purge: PurgeArgs::default(),
        }
    }
}

/// `cleanup` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct CleanupCommandArgs {
    /// Run one pass and exit (the only mode: the recurring, elected cleanup runs inside `serve`).
    #[arg(long, required = true)]
    pub once: bool,
    /// Batch size.
    #[command(flatten)]
    pub purge: PurgeArgs,
    /// PostgreSQL.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Redis (keys to drop, the invalidation channel to publish on).
    #[command(flatten)]
    pub redis: RedisArgs,
}

// Export defaults, each written once for its flag and for `ExportArgs::default`, so the two cannot drift.
const DEFAULT_EXPORTS_PER_KEY: u32 = 2;
const DEFAULT_EXPORTS_MAX: u32 = 8;
const DEFAULT_EXPORT_IDLE_TIMEOUT_SECS: &str = "30";

/// The export bounds (`serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// CSV exports one API key may run at once; one more is answered 429 at once.
    #[arg(long, env = "EXPORTS_PER_KEY", default_value_t = DEFAULT_EXPORTS_PER_KEY,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub exports_per_key: u32,
    /// CSV exports the process runs at once, all keys together; one more is answered 503 at once.
    #[arg(long, env = "EXPORTS_MAX", default_value_t = DEFAULT_EXPORTS_MAX,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub exports_max: u32,
    /// Seconds an export waits for a client that has stopped reading (fractions allowed); then the export is cut
    /// (the download ends without its final chunk) and its slot is free for another. Also the longest any API
    /// connection's sent data may wait for its client before the kernel drops the connection (TCP_USER_TIMEOUT).
    #[arg(long = "export-idle-timeout-secs", env = "EXPORT_IDLE_TIMEOUT_SECS",
          default_value = DEFAULT_EXPORT_IDLE_TIMEOUT_SECS, value_name = "SECS",
          value_parser = parse_seconds)]
    pub export_idle_timeout: std::time::Duration,
}

impl Default for ExportArgs {
    fn default() -> Self {
        Self {
            exports_per_key: DEFAULT_EXPORTS_PER_KEY,
            exports_max: DEFAULT_EXPORTS_MAX,
            // The flag's parser, so the two cannot disagree; the test below shows the constant parses.
            export_idle_timeout: parse_seconds(DEFAULT_EXPORT_IDLE_TIMEOUT_SECS)
                .unwrap_or_default(),
        }
    }
}

/// A positive number of seconds, fractions allowed.
pub(crate) fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    match std::time::Duration::try_from_secs_f64(seconds) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(format!("{text:?}: expected a positive number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use secrecy::ExposeSecret as _;

    use super::{Cli, Command};

    #[test]
    fn a_debug_print_of_the_command_line_shows_no_password() {
        let url = "postgres://app:s3cr3t@127.0.0.1:55432/db";

        let cli = Cli::try_parse_from([
            "shortener",
            "serve",
            "--database-url",
            url,
            "--redis-url",
            "redis://:s3cr3t@127.0.0.1:56379",
        ])
        .expect("the command line parses");

        let printed = format!("{cli:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        let Command::Serve(args) = cli.command else {
            panic!("not serve: {printed}");
        };
        assert_eq!(args.database.database_url.expose_secret(), url);
    }

    #[test]
    fn the_default_cleanup_interval_parses() {
        assert_eq!(
            super::CleanupArgs::default().cleanup_interval,
            std::time::Duration::from_secs(60)
        );
    }
}
