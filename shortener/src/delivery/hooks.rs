//! The webhooks every shortener holds in memory, by owner: read again every few seconds, at once when this
//! process changed one, and at most once a second when an event names an owner the table has no webhook for
//! (another shortener may have just created it, and the redirect heard of it first).

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use events::Kind;
use links::{store::Store, webhooks::Webhook};

/// How often the table is read again without a reason.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// Reloads for an owner the table lacks, at most this often.
const MISS_RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// The webhooks, by owner.
#[derive(Clone, Default)]
pub struct Hooks {
    by_owner: Arc<ArcSwap<HashMap<i64, Vec<Arc<Webhook>>>>>,
    last_miss_reload: Arc<tokio::sync::Mutex<Option<tokio::time::Instant>>>,
}

impl Hooks {
    /// The webhooks of `owner` that want `kind`.
    pub fn wanting(&self, owner: i64, kind: Kind) -> Vec<Arc<Webhook>> {
        self.by_owner
            .load()
            .get(&owner)
            .map(|hooks| {
                hooks
                    .iter()
                    .filter(|hook| wants(hook, kind))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `owner` has a webhook that wants `kind`.
    pub fn any_wanting(&self, owner: i64, kind: Kind) -> bool {
        self.by_owner
            .load()
            .get(&owner)
            .is_some_and(|hooks| hooks.iter().any(|hook| wants(hook, kind)))
    }

    /// The webhook `id`, if it is active.
    pub fn get(&self, owner: i64, id: i64) -> Option<Arc<Webhook>> {
        self.by_owner
            .load()
            .get(&owner)?
            .iter()
            .find(|hook| hook.id == id)
            .cloned()
    }

    /// Reads the table from `store`.
    ///
    /// # Errors
    /// When the database fails; the table stays as it was.
    pub async fn reload(&self, store: &Store) -> Result<(), database::DbError> {
        let hooks = tokio::time::timeout(RELOAD_EVERY, store.active_webhooks())
            .await
            .map_err(|elapsed| database::DbError::Unavailable(Arc::new(elapsed)))??;
        let mut by_owner: HashMap<i64, Vec<Arc<Webhook>>> = HashMap::new();
        for hook in hooks {
            by_owner
                .entry(hook.owner_id)
                .or_default()
                .push(Arc::new(hook));
        }
        self.by_owner.store(Arc::new(by_owner));
        Ok(())
    }

    /// Reloads because an event named an owner without webhooks here, at most once a second.
    pub async fn reload_for_miss(&self, store: &Store) {
        let mut last = self.last_miss_reload.lock().await;
        if last.is_some_and(|at| at.elapsed() < MISS_RELOAD_AT_MOST_EVERY) {
            return;
        }
        *last = Some(tokio::time::Instant::now());
        if let Err(error) = self.reload(store).await {
            tracing::warn!(%error, "reloading the webhooks failed");
        }
    }

    /// Reloads every [`RELOAD_EVERY`] until `stop` completes.
    pub async fn keep_loaded(self, store: Store, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut every = tokio::time::interval(RELOAD_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    if let Err(error) = self.reload(&store).await {
                        tracing::warn!(%error, "reloading the webhooks failed; keeping the last ones");
                    }
                }
                () = &mut stop => return,
            }
        }
    }
}

fn wants(hook: &Webhook, kind: Kind) -> bool {
    hook.events.contains(kind)
}
