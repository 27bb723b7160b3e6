//! The idgen binary: serves Snowflake IDs and blocks of the code counter over HTTP for services that do not
//! embed the library.

use idgen::service::{build, ServiceArgs};
use plumbing::{server, telemetry};

/// Snowflake-style 64-bit IDs over HTTP, with the worker ID leased from ZooKeeper.
///
/// GET /v1/ids?count=N (1..=10000) answers {"ids": ["…"]}; GET /v1/ids/{id} decodes an ID. While no worker ID
/// is leased, both answer 503 with Retry-After. POST /v1/blocks?size=N (1..=1000000, default 1000) leases a
/// block of the code counter, {"start", "end"} with end exclusive. Admin port: /metrics, /healthz, /readyz.
///
/// Any environment variable below, X, may instead be given as X_FILE: the path of a file holding the value (one
/// trailing newline dropped), e.g. ZOOKEEPER_AUTH_FILE for a mounted Secret. Setting both is an error.
#[derive(Debug, clap::Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
    #[command(flatten)]
    log: telemetry::LogArgs,
}

fn main() -> anyhow::Result<()> {
    // Settings from `*_FILE` fill the environment, so before the runtime starts any thread.
    let cli: Cli = plumbing::env_files::parse()?;
    run(cli)
}

#[tokio::main]
async fn run(Cli { service, log }: Cli) -> anyhow::Result<()> {
    server::main("idgen", log.log_format, build(service)).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
