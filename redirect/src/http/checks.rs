//! The password checks of protected links: every try counts against a bound per client and link (an IPv4 address
//! or IPv6 /64), one per IPv6 /48 and link (a site's 65,536 /64s share [`SITE_FACTOR`] times a client's budget),
//! and one per link whoever tries, with a lock that doubles each time it is spent ([`crate::http::tries`]); 429
//! past any. Checking costs tens of milliseconds of CPU by design, so it runs on blocking threads, a few at a time,
//! and a try that cannot get a turn within a second is a 503 rather than a queue that grows. Turns are shared
//! between links: one link holds at most one at a time, so a flood of tries on one link leaves the others a turn.

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash, Hasher},
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use plumbing::client_ip::ClientKey;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{misses::KeyedLimit, tries::LinkTries};

/// Password checks running at once (each holds a blocking thread and ~19 MiB for Argon2's memory).
const CONCURRENT_CHECKS: usize = 2;

/// Checks one link may have running at once: fewer than all, so other links always have a turn.
const CHECKS_PER_LINK: usize = 1;

/// How long a try waits for a turn to be checked.
const CHECK_WAIT: Duration = Duration::from_secs(1);

/// An IPv6 /48's budget of tries on one link, in clients' (/64s') budgets.
pub const SITE_FACTOR: u32 = 4;

/// How often idle tries are forgotten: the window every bound here is spent in.
pub const FORGET_TRIES_EVERY: Duration = super::tries::WINDOW;

/// The bounds on tries, and the turns of checks running at once.
pub struct Unlocker {
    /// Per client and link.
    tries: KeyedLimit<u64>,
    /// Per IPv6 /48 and link.
    site_tries: KeyedLimit<u64>,
    /// Per link, whoever tries.
    pub(super) link_tries: LinkTries,
    turns: Turns,
    seed: foldhash::quality::RandomState,
}

impl Unlocker {
    /// At most `tries_per_minute` tries per client and link (0: no bound), [`SITE_FACTOR`] times that per IPv6
    /// /48 and link, and `tries_per_link_per_minute` per link before it locks (0: no bound).
    pub fn new(tries_per_minute: u32, tries_per_link_per_minute: u32) -> Self {
        Self {
            tries: KeyedLimit::new(tries_per_minute),
            site_tries: KeyedLimit::new(tries_per_minute.saturating_mul(SITE_FACTOR)),
            link_tries: LinkTries::new(tries_per_link_per_minute),
            turns: Turns::default(),
            seed: foldhash::quality::RandomState::default(),
        }
    }

    /// Forgets idle clients' and links' tries (see [`KeyedLimit::forget_idle`]); run every
    /// [`FORGET_TRIES_EVERY`].
    pub fn forget_idle(&self) {
        self.tries.forget_idle();
        self.site_tries.forget_idle();
        self.link_tries.forget_idle();
    }

    /// One key per client (or none, for the link alone) and code, hashed with a per-process random seed: a
    /// fixed-size key whatever the code's length, and one a client cannot aim at another's bucket.
    pub(super) fn key(&self, client: Option<ClientKey>, code: &str) -> u64 {
        let mut hasher = self.seed.build_hasher();
        client.hash(&mut hasher);
        code.hash(&mut hasher);
        hasher.finish()
    }

    /// Counts a try by `client` on link `code` against every bound.
    ///
    /// # Errors
    /// How long to wait, past any bound.
    pub(super) fn count(&self, client: ClientKey, code: &str) -> Result<(), Duration> {
        self.tries.count(self.key(Some(client), code))?;
        if let Some(site) = client.site() {
            self.site_tries.count(self.key(Some(site), code))?;
        }
        self.link_tries.begin(self.key(None, code), Instant::now())
    }

    /// Whether `password` matches `hash`, checked in link `link`'s turn; `None` when no turn came in time.
    pub(super) async fn check(&self, link: u64, password: String, hash: String) -> Option<bool> {
        self.turns
            .run(link, move || links::password::verify(&password, &hash))
            .await
    }
}

/// The links with a try waiting or checked now (an entry lives while a try holds its semaphore).
type LinkTurns = Mutex<HashMap<u64, Arc<Semaphore>, foldhash::fast::FixedState>>;

/// The turns of checks: [`CONCURRENT_CHECKS`] in all, [`CHECKS_PER_LINK`] per link. A try first waits for its
/// link's turn, then for one of all; so the tries of a flooded link queue behind each other, not in front of
/// every other link's.
struct Turns {
    all: Arc<Semaphore>,
    links: Arc<LinkTurns>,
}

impl Default for Turns {
    fn default() -> Self {
        Self {
            all: Arc::new(Semaphore::new(CONCURRENT_CHECKS)),
            links: Arc::default(),
        }
    }
}

/// A check's turn; gives it back when dropped.
struct Turn {
    links: Arc<LinkTurns>,
    link: u64,
    own: Option<OwnedSemaphorePermit>,
    _all: OwnedSemaphorePermit,
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.own.take());
        forget(&self.links, self.link);
    }
}

impl Turns {
    /// Runs `work` on a blocking thread in a turn of `link`'s taken within [`CHECK_WAIT`] (`None` when none
    /// came). The turn goes with the work, not with the caller: a try whose request is dropped (the client went
    /// away) keeps its turn until its hash is done, so the hashes running never outnumber the turns.
    async fn run<T: Send + 'static>(
        &self,
        link: u64,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let turn = self.take(link).await?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            work()
        })
        .await
        .ok()
    }

    /// A turn for a check on `link`, within [`CHECK_WAIT`].
    async fn take(&self, link: u64) -> Option<Turn> {
        let own = Arc::clone(
            self.links
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(link)
                .or_insert_with(|| Arc::new(Semaphore::new(CHECKS_PER_LINK))),
        );
        let waited = tokio::time::timeout(CHECK_WAIT, async {
            let mine = Arc::clone(&own).acquire_owned().await.ok()?;
            let all = Arc::clone(&self.all).acquire_owned().await.ok()?;
            Some((mine, all))
        })
        .await
        .ok()
        .flatten();
        drop(own);
        let Some((own, all)) = waited else {
            forget(&self.links, link);
            return None;
        };
        Some(Turn {
            links: Arc::clone(&self.links),
            link,
            own: Some(own),
            _all: all,
        })
    }
}

/// Drops `link`'s semaphore once no try holds it (clones are only made under the map's lock, so a count of one
/// there is final).
fn forget(links: &LinkTurns, link: u64) {
    let mut links = links.lock().unwrap_or_else(PoisonError::into_inner);
    if links
        .get(&link)
        .is_some_and(|semaphore| Arc::strong_count(semaphore) == 1)
    {
        links.remove(&link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_turn_is_held_until_its_work_ends_even_when_its_caller_is_gone() {
        let turns = Arc::new(Turns::default());
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let caller = tokio::spawn({
            let turns = Arc::clone(&turns);
            async move {
                turns
                    .run(7, move || {
                        let _sent = started.send(());
                        released.recv().is_ok()
                    })
                    .await
            }
        });
        running.await.expect("the work started");

        caller.abort();
        assert!(caller.await.is_err(), "the caller is gone");

        assert_eq!(
            turns.all.available_permits(),
            CONCURRENT_CHECKS - 1,
            "the work still holds its turn"
        );
        release.send(()).expect("the work is waiting");
        testkit::eventually(Duration::from_secs(5), "the turn given back", || async {
            turns.all.available_permits() == CONCURRENT_CHECKS
        })
        .await;
        assert!(
            turns.links.lock().expect("links").is_empty(),
            "the link's own semaphore is forgotten"
        );
    }
}
