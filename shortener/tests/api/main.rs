//! The shortener's API tests, against the real PostgreSQL, Redis and ZooKeeper started by `make test`.

mod cleanup;
mod create;
mod helpers;
