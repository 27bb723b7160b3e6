//! The services' logs in the test's own output: services under test run in the test process, so their
//! `tracing` events go through libtest's capture. A failing test prints what the service logged before it
//! failed; a passing test prints nothing.

use std::sync::Once;

use tracing_subscriber::EnvFilter;

/// Our crates at debug (what a failure needs explained), everything else only when it warns: actix, fred and
/// the PostgreSQL driver are loud at info. `RUST_LOG` overrides it.
const DEFAULT_FILTER: &str =
    "warn,idgen=debug,links=debug,plumbing=debug,redirect=debug,shortener=debug";

/// Installs the process's subscriber, writing through libtest's capture; later calls do nothing. Threads the
/// services spawn (actix workers) inherit the capture of the test that started them.
pub fn capture() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
        // Err only when a subscriber is already set; that one then gets the events.
        let _already_set = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_test_writer()
            .try_init();
    });
}
