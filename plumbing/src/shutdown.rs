//! Shutdown: the signals that start it and the token that background tasks wait on.

use tokio::sync::watch;

/// A cloneable token: `trigger` once, and every `wait` returns. Background tasks (lease keeper, hit flusher,
/// cleanup) select on `wait()` and flush what they hold before they return.
#[derive(Debug, Clone)]
pub struct Shutdown {
    sender: std::sync::Arc<watch::Sender<bool>>,
    receiver: watch::Receiver<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A token that has not been triggered.
    pub fn new() -> Self {
        let (sender, receiver) = watch::channel(false);
        Self {
            sender: std::sync::Arc::new(sender),
            receiver,
        }
    }

    /// Starts the shutdown; idempotent.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Whether the shutdown has started.
    pub fn is_triggered(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Returns once the shutdown has started.
    pub async fn wait(&self) {
        let mut receiver = self.receiver.clone();
        // An error means every sender is gone, which only happens when the token itself is dropped.
        let _ = receiver.wait_for(|stopped| *stopped).await;
    }

    /// Triggers the token on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C), whichever comes first.
    pub fn trigger_on_signals(&self) {
        let token = self.clone();
        tokio::spawn(async move {
            signal().await;
            tracing::info!("shutdown signal received, draining");
            token.trigger();
        });
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the process");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_trigger() {
        let token = Shutdown::new();
        let waiter = token.clone();
        let task = tokio::spawn(async move { waiter.wait().await });
        assert!(!token.is_triggered());
        token.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("waiter returns after trigger")
            .expect("task joins");
        assert!(token.is_triggered());
    }
}
