//! The shortener binary: parses the command line and runs the chosen subcommand.

use anyhow::Context as _;
use plumbing::{server, shutdown::Shutdown, telemetry};
use shortener::{
    config::{Cli, Command, KeysArgs, KeysCommand},
    startup::build,
    stores::connect_and_migrate,
};

fn main() -> anyhow::Result<std::process::ExitCode> {
    // Settings from `*_FILE` fill the environment, so before the runtime starts any thread.
    let cli: Cli = plumbing::env_files::parse()?;
    run(cli)
}

#[tokio::main]
async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    telemetry::init(cli.log.log_format, "info");
    match cli.command {
        Command::Serve(args) => {
            server::main("shortener", cli.log.log_format, build(*args)).await?;
        }
        Command::Migrate(database) => {
            connect_and_migrate(&database).await?;
            tracing::info!("database schema is up to date");
        }
        Command::Keys(args) => keys(args).await?,
        Command::Links(args) => return shortener::takedown::run(args).await,
        Command::Domains(args) => return shortener::domains::run(args).await,
        Command::Import(args) => return shortener::import::command::run(*args).await,
        Command::Cleanup(args) => {
            let shutdown = Shutdown::new();
            shutdown.trigger_on_signals();
            let summary = shortener::cleanup::run_once(&args, &shutdown).await?;
            tracing::info!(
                deleted = summary.deleted,
                batches = summary.batches,
                redis_failures = summary.redis_failures,
                duration_ms = summary.duration.as_millis(),
                "cleanup pass done"
            );
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn keys(args: KeysArgs) -> anyhow::Result<()> {
    let store = connect_and_migrate(&args.database).await?;
    match args.command {
        KeysCommand::Create { name } => {
            let (id, key) = store
                .create_api_key(&name)
                .await
                .context("cannot create the API key")?;
            tracing::info!(id, %name, "API key created; it is printed once on stdout");
            println!("{key}");
        }
        KeysCommand::List => {
            let keys = store
                .list_api_keys()
                .await
                .context("cannot list API keys")?;
            println!("{:>6}  {:<24}  {:<20}  revoked", "id", "name", "created");
            for key in keys {
                let revoked = key
                    .revoked_at
                    .map_or_else(|| "-".to_owned(), |at| at.format("%F %T").to_string());
                println!(
                    "{:>6}  {:<24}  {:<20}  {revoked}",
                    key.id,
                    key.name,
                    key.created_at.format("%F %T").to_string()
                );
            }
        }
        KeysCommand::Revoke { name } => {
            let revoked = store
                .revoke_api_keys(&name)
                .await
                .context("cannot revoke the API key")?;
            if revoked == 0 {
                anyhow::bail!("no live API key is named {name:?}");
            }
            tracing::info!(%name, revoked, "API key revoked");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        shortener::config::Cli::command().debug_assert();
    }
}
