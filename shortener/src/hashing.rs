//! Password hashing with a process-wide bound. One Argon2id hash holds a blocking thread and 19 MiB for tens of
//! milliseconds of CPU; unbounded, 2,000 concurrent password PATCHes took the shortener to 20.7 GB and starved
//! every other request. So at most `slots` hashes run at once (about the core count: more cannot finish sooner)
//! and a request that finds them all busy is answered 503 at once rather than queued, since a queue of waiting
//! hashes is the memory and latency it was meant to bound. Each API key (each client, when anonymous) also has a
//! budget of password operations, so one key cannot keep the slots busy for everybody.

use std::{
    num::NonZeroU32,
    sync::{Arc, Mutex, PoisonError},
};

use governor::{
    clock::{Clock as _, DefaultClock},
    DefaultKeyedRateLimiter, Quota,
};
use plumbing::client_ip::ClientKey;
use prometheus::{IntCounterVec, Opts, Registry};
use tokio::sync::Semaphore;

use crate::{errors::ApiError, limits::Limit};

/// Who spends the password budget: an API key, or an anonymous client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spender {
    /// The API key's owner ID.
    Key(i64),
    /// An anonymous caller, by client.
    Client(ClientKey),
}

/// Hashes passwords within the process-wide bound and the spender's budget.
pub struct PasswordHasher {
    /// One permit per hash that may run at once.
    slots: Arc<Semaphore>,
    /// Argon2's memory, one per slot, made once and used again (see [`links::password::Workspace`]: a fresh
    /// 19 MiB per hash stayed in glibc's heap, 605 MiB after 34 hashes).
    workspaces: Arc<Mutex<Vec<links::password::Workspace>>>,
    /// Password operations per spender; `None`: no budget.
    budget: Option<DefaultKeyedRateLimiter<Spender>>,
    /// Hash requests by outcome: `hashed`, `busy` (no slot free), `over_budget`.
    outcomes: IntCounterVec,
    /// The budget's clock, to tell a refused spender how long to wait.
    clock: DefaultClock,
}

impl PasswordHasher {
    /// A hasher running at most `slots` hashes at once (0: one per core), with `budget` per spender.
    ///
    /// # Errors
    /// When the metric cannot be registered.
    pub fn register(slots: usize, budget: Limit, registry: &Registry) -> anyhow::Result<Self> {
        let slots = match slots {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            slots => slots,
        };
        let outcomes = IntCounterVec::new(
            Opts::new(
                "shortener_password_hashes_total",
                "Password hash requests by outcome: hashed, busy (503: every slot taken), over_budget (429)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(outcomes.clone()))?;
        let budget = NonZeroU32::new(budget.per_minute).map(|per_minute| {
            let burst = NonZeroU32::new(budget.burst).unwrap_or(NonZeroU32::MIN);
            DefaultKeyedRateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
        });
        Ok(Self {
            slots: Arc::new(Semaphore::new(slots)),
            workspaces: Arc::new(Mutex::new(Vec::with_capacity(slots))),
            budget,
            outcomes,
            clock: DefaultClock::default(),
        })
    }

    /// Counts a password operation of `spender` against its budget, before any other work for it is done.
    ///
    /// # Errors
    /// [`ApiError::RateLimited`] past the budget.
    pub fn spend(&self, spender: Spender) -> Result<(), ApiError> {
        let Some(budget) = &self.budget else {
            return Ok(());
        };
        budget.check_key(&spender).map_err(|not_until| {
            self.outcomes.with_label_values(&["over_budget"]).inc();
            ApiError::RateLimited(not_until.wait_time_from(self.clock.now()))
        })
    }

    /// The Argon2id hash of a checked `password`, on a blocking thread (it must not stall the async workers)
    /// holding one of the slots until it is done, even if the request is dropped meanwhile.
    ///
    /// # Errors
    /// 503 at once when every slot is taken; 500 when hashing fails.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            self.outcomes.with_label_values(&["busy"]).inc();
            return Err(ApiError::unavailable("password hashing"));
        };
        let workspaces = Arc::clone(&self.workspaces);
        let hashed = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            // A slot holder always finds a workspace once every slot has made one; the first uses make them.
            let taken = workspaces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut workspace = taken.unwrap_or_default();
            let hashed = links::password::hash_in(&password, &mut workspace);
            workspaces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(workspace);
            hashed
        })
        .await
        .map_err(|error| ApiError::Internal(error.into()))?
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("hashing a password: {error}")))?;
        self.outcomes.with_label_values(&["hashed"]).inc();
        Ok(hashed)
    }

    /// Forgets spenders whose budget has fully recovered, so the map stays as small as the set of recent ones.
    pub fn forget_idle(&self) {
        if let Some(budget) = &self.budget {
            budget.retain_recent();
            budget.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(slots: usize, per_minute: u32, burst: u32) -> PasswordHasher {
        PasswordHasher::register(slots, Limit { per_minute, burst }, &Registry::new())
            .expect("metrics register")
    }

    #[tokio::test]
    async fn a_hash_past_the_slots_is_refused_at_once() {
        let hasher = hasher(1, 0, 0);
        let held = Arc::clone(&hasher.slots)
            .try_acquire_owned()
            .expect("the one slot is free");

        let refused = hasher.hash("secret-1".into()).await;
        drop(held);
        let hashed = hasher.hash("secret-1".into()).await;

        assert!(matches!(refused, Err(ApiError::Unavailable { .. })));
        assert!(hashed.is_ok_and(|phc| phc.starts_with("$argon2id$")));
    }

    #[test]
    fn a_spender_past_its_budget_is_refused_and_others_are_not() {
        let hasher = hasher(1, 60, 2);
        let spent = [Spender::Key(1), Spender::Key(1), Spender::Key(1)].map(|s| hasher.spend(s));

        assert!(spent[0].is_ok() && spent[1].is_ok());
        assert!(matches!(spent[2], Err(ApiError::RateLimited(_))));
        assert!(hasher.spend(Spender::Key(2)).is_ok());
    }
}
