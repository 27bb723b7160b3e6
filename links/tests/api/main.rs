//! links' tests against the real PostgreSQL and Redis started by `make test`: connecting over TLS.

mod tls;
