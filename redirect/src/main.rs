//! The redirect binary: parses the command line and runs the service.

use clap::Parser;
use plumbing::{server, telemetry};
use redirect::{config::RedirectArgs, startup::build};

/// snowlink redirect: answers GET/HEAD /{code} with the link's 301/302/307/308.
///
/// Lookups go to an in-process cache, then Redis, then a PostgreSQL read replica (round robin), then the
/// primary; 404 for unknown codes, 410 for expired or deleted ones. Changed codes arrive over Redis pub/sub;
/// hits are flushed to the primary every interval and on shutdown. Admin port: /metrics, /healthz, /readyz.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(flatten)]
    redirect: RedirectArgs,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "pretty")]
    log_format: telemetry::LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    server::main("redirect", cli.log_format, |shutdown| {
        build(cli.redirect, shutdown)
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
