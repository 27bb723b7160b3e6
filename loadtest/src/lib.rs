//! snowlink's load generator, as a library so its parts are tested on their own.
//!
//! # Layout
//! - [`engine`]: open-loop (constant rate, coordinated-omission corrected) and closed-loop runs; [`pacer`]: the
//!   clock open-loop sends wait on.
//! - [`client`]: the minimal HTTP/1.1 keep-alive client the engine drives.
//! - [`workload`]: which request comes next (Zipf-drawn or sequential codes, unique creates).
//! - [`zipf`]: the popularity-skew sampler.
//! - [`report`]: tables and JSON; [`plot`]: SVG latency-by-percentile charts.
//! - [`seed`]: links through the batch API; [`ceiling`]: the fixed-302 server.
//! - [`receiver`]: the webhook receiver that measures click events' delivery (latency from visit, duplicates).
#![forbid(unsafe_code)]

pub mod ceiling;
pub mod client;
pub mod engine;
pub mod pacer;
pub mod plot;
pub mod receiver;
pub mod report;
pub mod seed;
pub mod workload;
pub mod zipf;
