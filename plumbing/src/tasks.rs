//! Background tasks that cannot fail unseen: each one spawned here is joined by a watcher that logs how it ended,
//! counts it in `background_task_ends_total{task, how}`, and, for a task the service cannot live without, makes
//! `/readyz` fail from then on. A `let _ = handle.await` would drop a panic or an early end without a trace.

use std::{
    future::Future,
    sync::{Arc, Mutex},
};

use prometheus::{IntCounterVec, Opts, Registry};
use tokio::task::JoinHandle;

use crate::shutdown::Shutdown;

/// Whether the service can keep serving without a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Without it the service answers wrongly (stale cache, no lease): it is not ready once the task ends early.
    Essential,
    /// Housekeeping: an early end is logged and counted, readiness stays.
    Optional,
}

/// Spawns and watches the background tasks of one service. Cloning shares it.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    /// The token the tasks stop on: an end after it triggered is the expected one.
    shutdown: Shutdown,
    ends: IntCounterVec,
    /// Essential tasks that ended before shutdown.
    dead: Mutex<Vec<&'static str>>,
}

/// A watched task; [`Task::stopped`] waits for it and its report.
pub struct Task {
    watcher: JoinHandle<()>,
}

impl Supervisor {
    /// A supervisor for tasks that stop on `shutdown`, counting their ends in `registry`.
    ///
    /// # Errors
    /// When the metric is already registered.
    pub fn new(registry: &Registry, shutdown: Shutdown) -> prometheus::Result<Self> {
        let ends = IntCounterVec::new(
            Opts::new(
                "background_task_ends_total",
                "Background tasks that ended, by task and how (stopped, ended early, panicked)",
            ),
            &["task", "how"],
        )?;
        registry.register(Box::new(ends.clone()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                shutdown,
                ends,
                dead: Mutex::new(Vec::new()),
            }),
        })
    }

    /// A supervisor whose counter is not exported, for tools and tests that run a component alone.
    pub fn unregistered(shutdown: Shutdown) -> Self {
        #[expect(clippy::unwrap_used, reason = "a fresh registry holds no series yet")]
        Self::new(&Registry::new(), shutdown).unwrap()
    }

    /// The token the supervised tasks stop on.
    pub fn shutdown(&self) -> &Shutdown {
        &self.inner.shutdown
    }

    /// Spawns `future` as the task `name`, watched.
    pub fn spawn(
        &self,
        name: &'static str,
        need: Need,
        future: impl Future<Output = ()> + Send + 'static,
    ) -> Task {
        let task = tokio::spawn(future);
        let inner = Arc::clone(&self.inner);
        let watcher = tokio::spawn(async move { inner.report(name, need, task.await) });
        Task { watcher }
    }

    /// Essential tasks that ended before shutdown, as `/readyz` names them (`task:NAME`).
    pub fn dead(&self) -> Vec<String> {
        self.inner
            .dead
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|name| format!("task:{name}"))
            .collect()
    }
}

impl Inner {
    fn report(&self, name: &'static str, need: Need, joined: Result<(), tokio::task::JoinError>) {
        let stopping = self.shutdown.is_triggered();
        let how = match (&joined, stopping) {
            (Ok(()), true) => {
                tracing::debug!(task = name, "background task stopped");
                "stopped"
            }
            (Ok(()), false) => {
                tracing::error!(task = name, ?need, "background task ended before shutdown");
                "ended"
            }
            (Err(error), _) => {
                tracing::error!(task = name, ?need, %error, "background task panicked");
                "panicked"
            }
        };
        self.ends.with_label_values(&[name, how]).inc();
        if need == Need::Essential && !stopping {
            self.dead
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(name);
        }
    }
}

impl Task {
    /// Waits until the task has ended and its end is reported.
    pub async fn stopped(self) {
        // The watcher only reports; it cannot panic unless logging does, and then there is nothing left to say.
        let _reported = self.watcher.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervisor() -> (Supervisor, Registry, Shutdown) {
        let registry = Registry::new();
        let shutdown = Shutdown::new();
        let supervisor = Supervisor::new(&registry, shutdown.clone()).expect("registers");
        (supervisor, registry, shutdown)
    }

    fn ends(registry: &Registry, task: &str, how: &str) -> u64 {
        registry
            .gather()
            .iter()
            .filter(|family| family.name() == "background_task_ends_total")
            .flat_map(|family| family.get_metric())
            .filter(|metric| {
                let labels: Vec<_> = metric
                    .get_label()
                    .iter()
                    .map(|pair| (pair.name(), pair.value()))
                    .collect();
                labels.contains(&("task", task)) && labels.contains(&("how", how))
            })
            .map(|metric| metric.get_counter().get_value() as u64)
            .sum()
    }

    #[tokio::test]
    async fn an_essential_task_that_panics_makes_the_service_not_ready() {
        let (supervisor, registry, _shutdown) = supervisor();
        supervisor
            .spawn("subscriber", Need::Essential, async { panic!("boom") })
            .stopped()
            .await;
        assert_eq!(supervisor.dead(), vec!["task:subscriber".to_owned()]);
        assert_eq!(ends(&registry, "subscriber", "panicked"), 1);
    }

    #[tokio::test]
    async fn an_optional_task_that_ends_early_is_counted_but_keeps_readiness() {
        let (supervisor, registry, _shutdown) = supervisor();
        supervisor
            .spawn("sweeper", Need::Optional, async {})
            .stopped()
            .await;
        assert!(supervisor.dead().is_empty());
        assert_eq!(ends(&registry, "sweeper", "ended"), 1);
    }

    #[tokio::test]
    async fn a_task_that_stops_on_shutdown_is_no_failure() {
        let (supervisor, registry, shutdown) = supervisor();
        let waiter = shutdown.clone();
        let task = supervisor.spawn("flusher", Need::Essential, async move {
            waiter.wait().await;
        });
        shutdown.trigger();
        task.stopped().await;
        assert!(supervisor.dead().is_empty());
        assert_eq!(ends(&registry, "flusher", "stopped"), 1);
    }
}
