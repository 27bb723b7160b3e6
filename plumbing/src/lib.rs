//! Service plumbing that every snowlink binary shares, so that the three services start, log, report and stop
//! the same way.
//!
//! # Layout
//! - [`chain`]: an error with its causes, for the one log line that reports it.
//! - [`client_ip`]: who the client is behind trusted proxies (`--trusted-proxies`), as limits key it.
//! - [`clock`]: the injected wall clock (`Clock`, `SystemClock`, `ManualClock`).
//! - [`env_files`]: `X_FILE` for every setting `X`: secrets from mounted files, read before clap parses.
//! - [`telemetry`]: `tracing` setup (`--log-format pretty|json`, `RUST_LOG`).
//! - [`breaker`]: a circuit breaker per dependency, and each dependency's series.
//! - [`admin`]: the admin listener with `/metrics`, `/healthz` and `/readyz`.
//! - [`flight`]: single flight: concurrent lookups of one key share one.
//! - [`batch`]: batching: concurrent calls share one round trip.
//! - [`http`]: the JSON error body of every API and the JSON extractor limits every API uses.
//! - [`request_id`]: a request id and a span per API request, answered in `x-request-id`.
//! - [`metrics`]: request count and latency by route and status, as actix middleware.
//! - [`shutdown`]: SIGTERM/SIGINT and the token background tasks stop on.
//! - [`drain`]: the order every service stops in: `/readyz` 503, serve on for the drain delay, drain, flush.
//! - [`server`]: binding, the API and admin servers, the [`server::Startup`] every service's `build` starts
//!   from and ends by serving, and the `main` every service binary runs.
//! - [`tasks`]: the one convention for background tasks: the supervisor owns their token, their panics and early
//!   ends are logged, counted and seen by `/readyz`, housekeeping runs `every` period, and a stop sequence
//!   joins them in the order given once the API has drained.
#![forbid(unsafe_code)]

pub mod admin;
pub mod batch;
pub mod breaker;
pub mod chain;
pub mod client_ip;
pub mod clock;
pub mod drain;
pub mod env_files;
pub mod flight;
pub mod http;
pub mod metrics;
pub mod request_id;
pub mod server;
pub mod shutdown;
pub mod tasks;
pub mod telemetry;

/// This machine's host name (the pod's name under Kubernetes), for ZooKeeper nodes that say who holds them;
/// `unknown` where the kernel does not tell.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}
