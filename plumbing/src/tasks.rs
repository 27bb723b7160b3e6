//! Background tasks, and the one way every service starts and stops them.
//!
//! - A service's [`Supervisor`] owns its tasks' token ([`Supervisor::new`]): a task stops on
//!   [`Supervisor::shutdown`] and on nothing else. It is not the stop signal's token, so the tasks outlive the
//!   API's drain (the lease, the cache subscription and the hit counter serve the last requests too).
//! - Each task spawned here is joined by a watcher that logs how it ended, counts it in
//!   `background_task_ends_total{task, how}`, and, for a task the service cannot live without, makes `/readyz`
//!   fail from then on. A `let _ = handle.await` would drop a panic or an early end without a trace.
//! - Housekeeping that runs every so often is [`Supervisor::every`], not a loop of each service's own.
//! - What a service waits for once its API has drained is a [`StopSequence`]: its tasks, then its clients, in
//!   the order given. [`Supervisor::stop`] triggers the token and runs it (`server::Application` does, at the
//!   point [`crate::drain`] gives).

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
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

/// What a service waits for once its API has drained, step by step in the order given: its tasks (the ones that
/// flush first), then its clients to close. Run by [`Supervisor::stop`].
#[derive(Default)]
#[must_use = "a stop sequence does nothing until the supervisor runs it"]
pub struct StopSequence {
    steps: Vec<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Supervisor {
    /// A service's supervisor: its tasks stop on a token of its own, counting their ends in `registry`.
    ///
    /// # Errors
    /// When the metric is already registered.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        Self::counting_in(registry, Shutdown::new())
    }

    /// A supervisor whose counter is not exported and whose tasks stop on `shutdown`, for tools and tests that
    /// run a component alone and stop it themselves.
    pub fn unregistered(shutdown: Shutdown) -> Self {
        #[expect(clippy::unwrap_used, reason = "a fresh registry holds no series yet")]
        Self::counting_in(&Registry::new(), shutdown).unwrap()
    }

    fn counting_in(registry: &Registry, shutdown: Shutdown) -> prometheus::Result<Self> {
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

    /// Spawns the optional task `name`, which runs `job` every `period` (the first time at once) until the
    /// token triggers: housekeeping such as forgetting clients whose rate limits have recovered.
    pub fn every(
        &self,
        name: &'static str,
        period: Duration,
        mut job: impl FnMut() + Send + 'static,
    ) -> Task {
        let shutdown = self.inner.shutdown.clone();
        self.spawn(name, Need::Optional, async move {
            let mut every = tokio::time::interval(period);
            loop {
                tokio::select! {
                    _ = every.tick() => job(),
                    () = shutdown.wait() => return,
                }
            }
        })
    }

    /// Stops the tasks: triggers their token, then waits for `sequence`, step by step.
    pub async fn stop(&self, sequence: StopSequence) {
        self.inner.shutdown.trigger();
        for step in sequence.steps {
            step.await;
        }
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

impl StopSequence {
    /// A sequence with no step yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `step` (a task's `stopped()`, a client's close) after the steps given so far.
    pub fn then(mut self, step: impl Future<Output = ()> + Send + 'static) -> Self {
        self.steps.push(Box::pin(step));
        self
    }

    /// Adds each of `steps` in turn: an `Option` for a task that not every configuration starts.
    pub fn then_each<F>(self, steps: impl IntoIterator<Item = F>) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        steps.into_iter().fold(self, Self::then)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn supervisor() -> (Supervisor, Registry, Shutdown) {
        let registry = Registry::new();
        let supervisor = Supervisor::new(&registry).expect("registers");
        let shutdown = supervisor.shutdown().clone();
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

    #[tokio::test]
    async fn a_stop_sequence_runs_its_steps_in_order_once_the_token_has_triggered() {
        let (supervisor, _registry, shutdown) = supervisor();
        let order = Arc::new(Mutex::new(Vec::new()));
        let step = |name: &'static str| {
            let (order, shutdown) = (Arc::clone(&order), shutdown.clone());
            async move {
                let triggered = shutdown.is_triggered();
                order.lock().expect("not poisoned").push((name, triggered));
            }
        };
        let sequence = StopSequence::new()
            .then(step("flusher"))
            .then_each(None::<std::future::Ready<()>>)
            .then_each(Some(step("lease")))
            .then(step("redis"));
        supervisor.stop(sequence).await;
        let order = order.lock().expect("not poisoned").clone();
        assert_eq!(
            order,
            vec![("flusher", true), ("lease", true), ("redis", true)]
        );
    }

    #[tokio::test]
    async fn a_job_run_every_period_runs_at_once_and_stops_on_the_token() {
        let (supervisor, registry, shutdown) = supervisor();
        let (ran, mut first_run) = tokio::sync::mpsc::unbounded_channel();
        let task = supervisor.every("forget_idle", Duration::from_secs(3600), move || {
            let _ = ran.send(());
        });
        tokio::time::timeout(Duration::from_secs(5), first_run.recv())
            .await
            .expect("the first run comes at once")
            .expect("the job is alive");
        shutdown.trigger();
        task.stopped().await;
        assert!(
            first_run.try_recv().is_err(),
            "no second run within the period"
        );
        assert_eq!(ends(&registry, "forget_idle", "stopped"), 1);
    }
}
