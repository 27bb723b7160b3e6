//! Appends buffered click events to the queue: whatever the buffer holds (up to [`BATCH`]) in one round trip,
//! then again as soon as that returns, so events wait at most one append behind the one in flight. A failed
//! append is tried again for [`HOLD_FOR`] while the buffer keeps filling; then its events are dropped, counted.
//! On shutdown what is left is appended once more.

use std::time::Duration;

use events::{Event, Queue};
use tokio::sync::mpsc;

use super::ClickMetrics;

/// Events appended per round trip, at most.
const BATCH: usize = 1_000;

/// How long a batch the queue refused is tried again before it is dropped.
const HOLD_FOR: Duration = Duration::from_secs(5);

/// Pause between tries of a refused batch.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// Runs until the buffer's senders are gone or `stop` completes; then appends what is left.
pub async fn run(
    mut buffer: mpsc::Receiver<Event>,
    queue: Queue,
    metrics: ClickMetrics,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = buffer.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    break;
                }
                append(&queue, &mut batch, &metrics).await;
            }
            () = &mut stop => break,
        }
    }
    buffer.close();
    while buffer.recv_many(&mut batch, BATCH).await > 0 {
        append(&queue, &mut batch, &metrics).await;
    }
}

/// Appends `batch` (and empties it), trying again for [`HOLD_FOR`].
async fn append(queue: &Queue, batch: &mut Vec<Event>, metrics: &ClickMetrics) {
    let give_up = tokio::time::Instant::now() + HOLD_FOR;
    loop {
        match queue.publish(batch).await {
            Ok(()) => {
                metrics.queued.inc_by(batch.len() as u64);
                break;
            }
            Err(error) if tokio::time::Instant::now() >= give_up => {
                tracing::warn!(%error, dropped = batch.len(), "the event queue refused click events; dropping them");
                metrics.dropped_queue_down.inc_by(batch.len() as u64);
                break;
            }
            Err(_) => tokio::time::sleep(RETRY_EVERY).await,
        }
    }
    batch.clear();
}
