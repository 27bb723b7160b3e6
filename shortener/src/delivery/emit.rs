//! Link events from the API's handlers: `link.created`, `link.updated` and `link.deleted`, with the link as the
//! API shows it, put on the queue only when the owner has a webhook that wants them (checked in memory, so a
//! caller without one pays nothing). A queue that is down loses the event, counted; the change itself stands.

use chrono::Utc;
use events::{Event, Kind, Queue};
use prometheus::IntCounterVec;

use super::Hooks;

/// Puts link events on the queue.
#[derive(Clone)]
pub struct Emitter {
    /// The queue.
    pub queue: Queue,
    /// The webhooks.
    pub hooks: Hooks,
    /// `shortener_link_events_total{outcome}`.
    pub outcomes: IntCounterVec,
}

impl Emitter {
    /// Queues a `kind` event about `link` (the key it is stored under) of `owner`, whose `data` is `shown`
    /// (the link's JSON), if a webhook of `owner` wants it.
    pub async fn link(
        &self,
        kind: Kind,
        owner: Option<i64>,
        link: &str,
        shown: impl FnOnce() -> serde_json::Value,
    ) {
        let Some(owner) = owner.filter(|owner| self.hooks.any_wanting(*owner, kind)) else {
            return;
        };
        let event = Event::new(kind, owner, link.to_owned(), Utc::now(), shown());
        self.queue_all(&[event]).await;
    }

    /// Queues events already built (a batch create's).
    pub async fn queue_all(&self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let outcome = match self.queue.publish(events).await {
            Ok(()) => "queued",
            Err(error) => {
                tracing::warn!(%error, count = events.len(), "link events could not be queued; dropped");
                "dropped_queue_down"
            }
        };
        self.outcomes
            .with_label_values(&[outcome])
            .inc_by(events.len() as u64);
    }
}
