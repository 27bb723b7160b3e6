//! Live streams of a link's click events (`GET /v1/urls/{code}/events`, Server-Sent Events). One task per
//! process follows the queue (outside the consumer group: it sees every entry) only while a stream is open, and
//! hands each click to the streams open on its link; each stream has a small buffer of its own, and a client that
//! does not keep up misses events rather than growing it. While a stream is open its owner is registered as
//! watching (renewed every few seconds, lapsing on its own if this process dies), which is what makes the
//! redirect take click events for a link whose owner has no webhook.
//!
//! Bounded: [`PER_KEY`] streams per API key and [`TOTAL`] per process; past either the call is a 429.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use actix_web::web::Bytes;
use chrono::Utc;
use events::{Kind, Queue};
use tokio::sync::mpsc;

/// Streams one API key may have open in one process.
pub const PER_KEY: usize = 5;
/// Streams one process serves at most.
pub const TOTAL: usize = 1_000;
/// Events waiting for one slow client, at most.
const CLIENT_BUFFER: usize = 256;
/// How often the queue is read while a stream is open: events reach a client within this after they are queued.
const FOLLOW_EVERY: Duration = Duration::from_millis(250);
/// How often the open streams' owners are registered again, and how long a registration lasts.
const RENEW_EVERY: Duration = Duration::from_secs(10);
const REGISTRATION_LASTS: Duration = Duration::from_secs(30);
/// Entries read per round.
const READ: u64 = 2_000;

/// The process's live streams.
#[derive(Clone)]
pub struct LiveStreams {
    queue: Queue,
    open: Arc<Mutex<Open>>,
}

#[derive(Default)]
struct Open {
    by_link: HashMap<String, Vec<mpsc::Sender<Bytes>>>,
    by_key: HashMap<i64, usize>,
    total: usize,
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The key has [`PER_KEY`] open.
    KeyFull,
    /// The process has [`TOTAL`] open.
    ProcessFull,
}

/// An open stream: its events, and its place in the counts until dropped.
pub struct Subscription {
    /// Each event as an SSE message.
    pub events: mpsc::Receiver<Bytes>,
    owner: i64,
    open: Arc<Mutex<Open>>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_key.get_mut(&self.owner) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.by_key.remove(&self.owner);
            }
        }
    }
}

impl LiveStreams {
    /// Streams fed from `queue`.
    pub fn new(queue: Queue) -> Self {
        Self {
            queue,
            open: Arc::default(),
        }
    }

    /// Opens a stream of the link `link` for its owner `owner`, and registers the owner as watching.
    ///
    /// # Errors
    /// When a bound is reached.
    pub async fn open(&self, owner: i64, link: String) -> Result<Subscription, Refused> {
        let (sender, events) = mpsc::channel(CLIENT_BUFFER);
        {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            if open.total >= TOTAL {
                return Err(Refused::ProcessFull);
            }
            let count = open.by_key.entry(owner).or_default();
            if *count >= PER_KEY {
                return Err(Refused::KeyFull);
            }
            *count += 1;
            open.total += 1;
            open.by_link.entry(link).or_default().push(sender);
        }
        if let Err(error) = self.register(owner).await {
            tracing::warn!(%error, "registering a live stream failed; it gets events once a renewal goes through");
        }
        Ok(Subscription {
            events,
            owner,
            open: self.open.clone(),
        })
    }

    async fn register(&self, owner: i64) -> Result<(), events::QueueError> {
        let until = Utc::now() + chrono::Duration::from_std(REGISTRATION_LASTS).unwrap_or_default();
        self.queue.watch(owner, until).await
    }

    /// Follows the queue while streams are open, until `stop` completes.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut follow = tokio::time::interval(FOLLOW_EVERY);
        follow.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renew = tokio::time::interval(RENEW_EVERY);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<String> = None;
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = renew.tick() => self.renew().await,
                _ = follow.tick() => last = self.follow(last).await,
            }
        }
    }

    /// One round: `None` while no stream is open (the next one starts from the queue's end).
    async fn follow(&self, last: Option<String>) -> Option<String> {
        if self
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
            == 0
        {
            return None;
        }
        let after = match last {
            Some(last) => last,
            None => match self.queue.last_entry().await {
                Ok(last) => last,
                Err(error) => {
                    tracing::warn!(%error, "live streams cannot read the queue");
                    return None;
                }
            },
        };
        match self.queue.follow(&after, READ).await {
            Ok((events, next)) => {
                self.hand_out(events);
                Some(next)
            }
            Err(error) => {
                tracing::warn!(%error, "live streams cannot read the queue");
                Some(after)
            }
        }
    }

    fn hand_out(&self, events: Vec<events::Event>) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        for event in events {
            if event.kind != Kind::Click {
                continue;
            }
            let Some(senders) = open.by_link.get_mut(&event.link) else {
                continue;
            };
            let message = Bytes::from(format!(
                "id: {}\nevent: click\ndata: {}\n\n",
                event.id, event.body
            ));
            senders.retain(|sender| !sender.is_closed());
            for sender in senders.iter() {
                // A client that does not keep up misses events; its buffer does not grow.
                let _ = sender.try_send(message.clone());
            }
        }
        open.by_link.retain(|_, senders| {
            senders.retain(|sender| !sender.is_closed());
            !senders.is_empty()
        });
    }

    async fn renew(&self) {
        let owners: Vec<i64> = {
            let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            open.by_key.keys().copied().collect()
        };
        for owner in owners {
            if let Err(error) = self.register(owner).await {
                tracing::warn!(%error, "renewing a live stream's registration failed");
            }
        }
    }
}
