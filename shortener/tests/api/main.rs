//! The shortener's API, end to end against the real PostgreSQL, Redis and ZooKeeper.

mod batch;
mod cleanup;
mod codes;
mod concurrency;
mod create;
mod degradation;
mod export;
mod freed_codes;
mod group_insert;
mod helpers;
mod hits;
mod hostile;
mod idempotency;
mod keys;
mod lifecycle;
mod limits;
mod openapi;
mod owned;
mod passwords;
mod patch;
mod qr;
mod retries;
mod search;
mod takedown;
mod web;
