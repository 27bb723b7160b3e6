//! Bounds on CSV exports, the one request that can run for minutes and read a whole table: at most
//! `--exports-per-key` at once per API key (more answers 429 at once) and `--exports-max` in the process (more
//! answers 503 at once), and a client that stops reading for `--export-idle-timeout-secs` loses its export and its
//! slot. Without them one key could open exports until the pod ran out of memory, or hold every slot with
//! downloads it never reads (each parked on a full socket with a page of links in hand).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use prometheus::{IntCounter, IntGauge, Registry};

use crate::{config::ExportArgs, errors::ApiError};

/// How long a refused export is told to wait: exports last seconds to minutes, so sooner is pointless.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// The exports running now, per key and in all.
pub struct ExportLimits {
    per_key: usize,
    max: usize,
    idle_timeout: Duration,
    running: Mutex<Running>,
    /// Exports holding a slot (`shortener_exports_running`).
    running_gauge: IntGauge,
    /// Export responses still on a connection, cut ones included (`shortener_exports_open`): one that stays up
    /// after its export was cut is a connection the kernel has not yet dropped.
    pub open: IntGauge,
    /// Exports cut because their client stopped reading (`shortener_exports_cut_total`).
    pub cut: IntCounter,
}

#[derive(Default)]
struct Running {
    total: usize,
    by_key: HashMap<i64, usize>,
}

/// One running export's place; dropping it frees the place.
pub struct ExportSlot {
    limits: Arc<ExportLimits>,
    owner_id: i64,
}

impl ExportLimits {
    /// The bounds `args` set, with their series in `registry`.
    ///
    /// # Errors
    /// When a series is registered twice.
    pub fn register(args: &ExportArgs, registry: &Registry) -> prometheus::Result<Self> {
        let limits = Self::new(args)?;
        registry.register(Box::new(limits.running_gauge.clone()))?;
        registry.register(Box::new(limits.open.clone()))?;
        registry.register(Box::new(limits.cut.clone()))?;
        Ok(limits)
    }

    /// The bounds `args` set, with series of their own.
    ///
    /// # Errors
    /// Never in practice: the series' names are constants.
    pub fn new(args: &ExportArgs) -> prometheus::Result<Self> {
        let count = |value: u32| usize::try_from(value).unwrap_or(usize::MAX);
        Ok(Self {
            per_key: count(args.exports_per_key),
            max: count(args.exports_max),
            idle_timeout: args.export_idle_timeout,
            running: Mutex::default(),
            running_gauge: IntGauge::new(
                "shortener_exports_running",
                "CSV exports holding a slot (see --exports-max)",
            )?,
            open: IntGauge::new(
                "shortener_exports_open",
                "CSV export responses still on a connection, cut ones included",
            )?,
            cut: IntCounter::new(
                "shortener_exports_cut_total",
                "CSV exports cut because their client stopped reading",
            )?,
        })
    }

    /// How long an export waits for a client that stopped reading.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// A place for an export of `owner_id`'s links.
    ///
    /// # Errors
    /// 429 `rate_limited` when the key already runs its share, 503 `unavailable` when the process runs its
    /// maximum; both with `Retry-After`, at once (nothing waits for a place).
    pub fn take(self: &Arc<Self>, owner_id: i64) -> Result<ExportSlot, ApiError> {
        // A panic while holding the lock leaves the counts as they were: still right to use.
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let of_key = running.by_key.get(&owner_id).copied().unwrap_or(0);
        if of_key >= self.per_key {
            return Err(ApiError::Busy {
                per_caller: true,
                message: format!(
                    "this API key already runs {of_key} CSV exports, the most it may; retry when one has ended"
                ),
                retry_after: RETRY_AFTER,
            });
        }
        if running.total >= self.max {
            return Err(ApiError::Busy {
                per_caller: false,
                message: "the service runs as many CSV exports as it can; retry shortly".into(),
                retry_after: RETRY_AFTER,
            });
        }
        running.total += 1;
        running.by_key.insert(owner_id, of_key + 1);
        self.running_gauge.inc();
        Ok(ExportSlot {
            limits: Arc::clone(self),
            owner_id,
        })
    }
}

impl ExportSlot {
    /// Whose export holds it.
    pub fn owner_id(&self) -> i64 {
        self.owner_id
    }
}

impl Drop for ExportSlot {
    fn drop(&mut self) {
        let mut running = self
            .limits
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        running.total = running.total.saturating_sub(1);
        self.limits.running_gauge.dec();
        if let Some(count) = running.by_key.get_mut(&self.owner_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.by_key.remove(&self.owner_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError as _;

    use super::*;

    fn limits(per_key: u32, max: u32) -> Arc<ExportLimits> {
        Arc::new(
            ExportLimits::new(&ExportArgs {
                exports_per_key: per_key,
                exports_max: max,
                ..ExportArgs::default()
            })
            .expect("series"),
        )
    }

    #[test]
    fn a_key_past_its_share_is_a_429_and_a_full_process_a_503() {
        let limits = limits(2, 3);
        let _first = limits.take(1).expect("first");
        let _second = limits.take(1).expect("second");

        let third = limits.take(1).err().expect("a third of one key is refused");
        let _other = limits.take(2).expect("another key still gets one");
        let full = limits.take(3).err().expect("the process is full");

        assert_eq!(third.status_code(), 429);
        assert_eq!(third.code().as_str(), "rate_limited");
        assert_eq!(full.status_code(), 503);
        assert_eq!(full.code().as_str(), "unavailable");
    }

    #[test]
    fn the_default_idle_timeout_parses() {
        assert_eq!(
            ExportArgs::default().export_idle_timeout,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn a_dropped_slot_is_free_again() {
        let limits = limits(1, 1);
        let slot = limits.take(7).expect("first");
        assert!(limits.take(7).is_err());

        drop(slot);

        assert!(limits.take(7).is_ok());
    }
}
