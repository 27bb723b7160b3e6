//! links' tests against the real PostgreSQL and Redis started by `make test`: connecting over TLS, the
//! redirect's batched lookups, and migrations on a big, busy table.

mod lookups;
mod migrations;
mod tls;
