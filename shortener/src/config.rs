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
