//! links' tests against the real PostgreSQL and Redis started by `make test`: connecting over TLS, and the
//! redirect's batched lookups.

mod lookups;
mod tls;
