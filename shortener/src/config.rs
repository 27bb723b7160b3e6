//! The shortener's command line. Every setting is a flag with an environment-variable fallback.

use idgen::config::IdgenArgs;
use links::{cache::RedisArgs, db::DatabaseArgs};
use plumbing::telemetry::LogFormat;

/// snowlink shortener: the write API for short links.
///
/// `serve` runs the API (POST /v1/urls …) and its admin port (/metrics, /healthz, /readyz); it applies pending
/// migrations at start. `migrate` only applies them. `create-key` makes an API key and prints it once.
#[derive(Debug, clap::Parser)]
#[command(version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log format.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,
}

/// Subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the API.
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations, then exit.
    Migrate(DatabaseArgs),
    /// Create an API key and print it on stdout (it is stored hashed and cannot be shown again).
    CreateKey(CreateKeyArgs),
    /// Purge expired and deleted links once, then exit (for a Kubernetes CronJob; run `serve` with
    /// `--cleanup off` then). Concurrent runs are safe.
    Cleanup(CleanupCommandArgs),
}

/// `create-key` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct CreateKeyArgs {
    /// A name that says whose key it is.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
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
    /// PostgreSQL.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Redis.
    #[command(flatten)]
    pub redis: RedisArgs,
    /// ID generation.
    #[command(flatten)]
    pub idgen: IdgenArgs,
    /// The expiry cleanup.
    #[command(flatten)]
    pub cleanup: CleanupArgs,
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
            database,
            redis,
            idgen,
            // Off unless a test is about it: every instance would otherwise campaign in ZooKeeper.
            cleanup: CleanupArgs {
                enabled: false,
                ..CleanupArgs::default()
            },
        }
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
}

/// How much one cleanup statement purges.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct PurgeArgs {
    /// Links purged per statement (each batch is one transaction; smaller batches hold row locks shorter).
    #[arg(long, env = "SHORTENER_CLEANUP_BATCH", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub cleanup_batch: u32,
}

impl Default for PurgeArgs {
    fn default() -> Self {
        Self {
            cleanup_batch: 1000,
        }
    }
}

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
    #[arg(long = "cleanup-interval-secs", env = "SHORTENER_CLEANUP_INTERVAL_SECS", default_value = "60",
          value_name = "SECS", value_parser = parse_seconds)]
    pub cleanup_interval: std::time::Duration,
    /// ZooKeeper node under which shortener instances elect the cleanup leader.
    #[arg(
        long,
        env = "SHORTENER_CLEANUP_ELECTION_PATH",
        default_value = "/snowlink/shortener/cleanup"
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
            cleanup_interval: std::time::Duration::from_secs(60),
            cleanup_election_path: "/snowlink/shortener/cleanup".into(),
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

/// A positive number of seconds, fractions allowed.
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    match std::time::Duration::try_from_secs_f64(seconds) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err(format!("{text:?}: expected a positive number of seconds")),
    }
}
