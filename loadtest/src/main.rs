//! loadtest: placeholder binary until the load generator lands (issue 6); it only explains itself.

use clap::Parser;

/// snowlink load tester. Seeding, open-loop redirect load and the ceiling server come with the loadtest issue;
/// this build only prints its help.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    eprintln!("loadtest: no subcommands yet; see `loadtest --help`");
}
