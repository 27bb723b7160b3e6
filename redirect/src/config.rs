//! The redirect's command line. Every setting is a flag with an environment-variable fallback.

use links::{cache::RedisArgs, db::DatabaseArgs};

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
    /// Share the listen port with other replicas (SO_REUSEPORT), so several processes serve one port.
    #[arg(long, env = "REDIRECT_REUSE_PORT", default_value_t = false)]
    pub reuse_port: bool,
    /// PostgreSQL read replica for lookups (repeatable, or comma separated); without one, lookups use the primary.
    #[arg(
        long = "replica-url",
        env = "DATABASE_REPLICA_URL",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub replica_urls: Vec<String>,
    /// Confirm a code missing on a replica on the primary before answering 404 (replica lag).
    #[arg(long, env = "CONFIRM_MISSES_ON_PRIMARY", default_value_t = true, action = clap::ArgAction::Set)]
    pub confirm_misses_on_primary: bool,
    /// How long an unknown code is cached as unknown, in seconds.
    #[arg(long, env = "NEGATIVE_TTL_SECS", default_value_t = 5)]
    pub negative_ttl_secs: u64,
    /// `max-age` of 301/308 answers, which browsers and CDNs may keep, in seconds.
    #[arg(long, env = "PERMANENT_MAX_AGE_SECS", default_value_t = 3_600)]
    pub permanent_max_age_secs: u64,
    /// The primary: hit counts, confirming misses, and lookups when there is no replica.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Redis.
    #[command(flatten)]
    pub redis: RedisArgs,
}

impl RedirectArgs {
    /// Settings for tests: ports chosen by the OS, everything else given.
    pub fn for_tests(database: DatabaseArgs, replica_urls: Vec<String>, redis: RedisArgs) -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            admin_listen: "127.0.0.1:0".into(),
            http_workers: 2,
            reuse_port: false,
            replica_urls,
            confirm_misses_on_primary: true,
            negative_ttl_secs: 5,
            permanent_max_age_secs: 3_600,
            database,
            redis,
        }
    }
}
