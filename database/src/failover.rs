//! Following the primary across a failover without a restart. A URL that lists several hosts with
//! `target_session_attrs=read-write` makes every new connection find whichever host is primary now
//! (tokio-postgres tries them in turn); this module makes sure old connections do not outlive the role of the
//! server they reach, and says which server is primary for `/readyz` and the metrics.
//!
//! A primary that is killed closes its connections, and the pool's fast recycling drops closed ones. A primary
//! that is demoted but keeps running (a switchover that does not restart it; a fenced node) would keep them
//! open, answering every write with `25006 read_only_sql_transaction`. So pools that want the primary check the
//! server's role on recycle, but not on every checkout (a round trip per request on the hot path): once a
//! connection has been idle a while, and every [`ROLE_CHECK_EVERY`]th checkout of a busy one. One connection found
//! read-only condemns every connection opened before that moment, since they may all reach the same demoted
//! server; new ones go where the URL says.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use deadpool_postgres::{ClientWrapper, Hook, HookError, Metrics, Pool};
use prometheus::{core::Collector as _, IntGaugeVec, Opts, Registry};
use tokio_postgres::SimpleQueryMessage;

use crate::error::DbError;

/// A connection idle this long is checked before it is handed out again.
pub(crate) const ROLE_CHECK_IDLE: Duration = Duration::from_secs(1);
/// A busy connection is checked on every this many checkouts (1/64 of a round trip a request at most).
const ROLE_CHECK_EVERY: usize = 64;

/// Bound on finding out which server is primary, for `/readyz`.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the pool's recycle hook shares between connections.
#[derive(Default)]
struct Condemned {
    /// Connections created before this instant reach a server that was found read-only: discard them.
    before: Mutex<Option<Instant>>,
}

impl Condemned {
    fn condemns(&self, created: Instant) -> bool {
        self.before
            .lock()
            .map(|before| before.is_some_and(|before| created < before))
            .unwrap_or(false)
    }

    fn condemn_until_now(&self) {
        if let Ok(mut before) = self.before.lock() {
            *before = Some(Instant::now());
        }
    }
}

/// The `post_recycle` hook of a pool that must reach the primary: an `Err` makes deadpool drop the connection
/// and hand out (or open) another.
pub(crate) fn primary_only_hook() -> Hook {
    let condemned = Arc::new(Condemned::default());
    Hook::async_fn(move |client: &mut ClientWrapper, metrics: &Metrics| {
        let condemned = Arc::clone(&condemned);
        Box::pin(async move {
            if condemned.condemns(metrics.created) {
                return Err(HookError::message(
                    "opened before its server was found read-only",
                ));
            }
            let due = metrics.last_used() >= ROLE_CHECK_IDLE
                || metrics.recycle_count % ROLE_CHECK_EVERY == ROLE_CHECK_EVERY - 1;
            if !due {
                return Ok(());
            }
            // What target_session_attrs=read-write asks when connecting (a replica, or a server told to refuse
            // writes, says "on"); the simple protocol: one round trip, no statement to prepare.
            let answer = client
                .simple_query("SHOW transaction_read_only")
                .await
                .map_err(HookError::Backend)?;
            let read_only = answer.iter().any(|message| {
                matches!(message, SimpleQueryMessage::Row(row) if row.get(0) == Some("on"))
            });
            if read_only {
                tracing::warn!(
                    "a pooled connection reaches a server that is no longer primary; reconnecting"
                );
                condemned.condemn_until_now();
                return Err(HookError::message("its server is no longer primary"));
            }
            Ok(())
        })
    })
}

/// `host:port` of the server a connection of `pool` reaches (for a primary pool: the primary now).
///
/// # Errors
/// [`DbError::Unavailable`] when no connection can be had in time.
pub async fn server_address(pool: &Pool) -> Result<String, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            // A unix-socket connection has no address: name the socket's port alone then.
            "SELECT coalesce(host(inet_server_addr()), 'local') || ':' || current_setting('port')",
            &[],
        )
        .await?;
    Ok(row.try_get(0)?)
}

/// `postgres_primary{host}`: 1 for the host a primary pool reached at the last readiness check, 0 for the hosts
/// it reached before. Set when `/readyz` asks, as `dependency_up` is.
#[derive(Clone)]
pub struct PrimaryGauge {
    gauge: IntGaugeVec,
}

impl PrimaryGauge {
    /// Creates the gauge and registers it in `registry`.
    ///
    /// # Errors
    /// When the gauge is registered already.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let gauge = IntGaugeVec::new(
            Opts::new(
                "postgres_primary",
                "Which PostgreSQL host the primary pool reached at the last readiness check (1), or before (0)",
            ),
            &["host"],
        )?;
        registry.register(Box::new(gauge.clone()))?;
        Ok(Self { gauge })
    }

    /// Asks `pool` which server it reaches and records it; `None` when no connection answers.
    pub async fn observe(&self, pool: &Pool) -> Option<String> {
        // Bounded here too: the pool bounds getting a connection, but a server that stops answering mid-query
        // would hold up /readyz until the statement timeout.
        let address = tokio::time::timeout(OBSERVE_TIMEOUT, server_address(pool))
            .await
            .ok()?
            .ok()?;
        // Labels are server addresses from our own configuration, never from a request: a handful at most.
        for metric in self
            .gauge
            .collect()
            .iter()
            .flat_map(|family| family.get_metric())
        {
            if let Some(host) = metric.get_label().first() {
                self.gauge.with_label_values(&[host.value()]).set(0);
            }
        }
        self.gauge.with_label_values(&[address.as_str()]).set(1);
        Some(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_before_a_read_only_finding_are_condemned_and_later_ones_not() {
        let condemned = Condemned::default();
        let before = Instant::now();
        assert!(!condemned.condemns(before));

        condemned.condemn_until_now();
        let after = Instant::now() + Duration::from_millis(1);

        assert!(condemned.condemns(before));
        assert!(!condemned.condemns(after));
    }
}
