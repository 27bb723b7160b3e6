//! links' tests against the real PostgreSQL and Redis started by `make test`: connecting over TLS, the
//! redirect's batched lookups, and migrations on a big, busy table.

mod inserts;
mod lookups;
mod migrations;
mod tls;
mod webhooks;

/// A plain link to insert: `code` pointing at `https://example.com/{code}`.
fn new_link(id: i64, code: &str) -> links::model::NewLink {
    links::model::NewLink {
        id,
        code: code.into(),
        long_url: format!("https://example.com/{code}"),
        expires_at: None,
        redirect: links::model::RedirectStatus::Found302,
        owner_id: None,
        tags: Vec::new(),
        password_hash: None,
        max_hits: None,
        routing: None,
    }
}
