//! Logging setup: one subscriber for the whole process, filtered by `RUST_LOG`, pretty for people, JSON for
//! log collectors.

use tracing_subscriber::EnvFilter;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The `--log-format` flag, written once for every binary (global, so it may follow a subcommand).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct LogArgs {
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

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset.
///
/// Calling it twice is harmless (tests start several services in one process): the second call keeps the first
/// subscriber.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_set = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
