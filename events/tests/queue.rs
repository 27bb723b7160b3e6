//! The queue against the real Redis `make test` starts: what is appended is taken once in the group, survives a
//! consumer that never acknowledged it (claimed by another), retries come due with a lease, and live-stream
//! registrations lapse.

use std::time::Duration;

use chrono::Utc;
use events::{Event, Kind, Queue, Retry};
use links::cache::CacheOptions;

fn queue() -> Queue {
    let (url, prefix) = testkit::redis();
    Queue::start(
        &CacheOptions {
            url: url.into(),
            prefix,
            timeout: Duration::from_secs(2),
        },
        true,
    )
    .expect("a queue (is REDIS_URL set? run `make test`)")
}

fn event(owner: i64) -> Event {
    Event::new(
        Kind::Click,
        owner,
        "abc".into(),
        Utc::now(),
        serde_json::json!({"code": "abc"}),
    )
}

#[tokio::test]
async fn entries_are_taken_once_and_a_dead_consumer_s_are_claimed() {
    let queue = queue();
    queue
        .ensure_group()
        .await
        .expect("the group (is Redis up? run `make test`)");
    let sent: Vec<Event> = (0..5).map(event).collect();
    queue.publish(&sent).await.expect("appended");
    let first = queue
        .take("a", 100, Duration::from_millis(200))
        .await
        .expect("taken");
    assert_eq!(
        first.iter().map(|taken| &taken.event).collect::<Vec<_>>(),
        sent.iter().collect::<Vec<_>>()
    );
    let again = queue
        .take("b", 100, Duration::from_millis(200))
        .await
        .expect("taken");
    assert!(again.is_empty(), "handed out twice: {again:?}");
    // "a" died without acknowledging: "b" claims its entries once they have been idle long enough.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (claimed, cut) = queue
        .claim_stale("b", Duration::from_millis(200), 100)
        .await
        .expect("claimed");
    assert_eq!(claimed.len(), 5);
    assert_eq!(cut, 0);
    let entries: Vec<String> = claimed.iter().map(|taken| taken.entry.clone()).collect();
    queue.ack(&entries).await.expect("acknowledged");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (claimed, _) = queue
        .claim_stale("c", Duration::from_millis(200), 100)
        .await
        .expect("claimed");
    assert!(claimed.is_empty(), "acknowledged entries came back");
    let (followed, last) = queue.follow("0-0", 100).await.expect("followed");
    assert_eq!(followed.len(), 5, "a live reader sees every entry");
    assert_eq!(last, queue.last_entry().await.expect("the last entry"));
    queue.quit().await;
}

#[tokio::test]
async fn retries_come_due_with_a_lease_and_finish() {
    let queue = queue();
    let job = Retry {
        hook: 1,
        first_failed_ms: Utc::now().timestamp_millis(),
        attempts: 1,
        event: event(4),
    };
    let now = Utc::now();
    assert!(queue
        .schedule(&job, now + chrono::Duration::milliseconds(200))
        .await
        .expect("scheduled (is Redis up? run `make test`)"));
    assert!(queue
        .due(now, Duration::from_secs(60), 10)
        .await
        .expect("due")
        .is_empty());
    let later = now + chrono::Duration::seconds(1);
    let due = queue
        .due(later, Duration::from_secs(60), 10)
        .await
        .expect("due");
    assert_eq!(due, vec![job.clone()]);
    assert!(
        queue
            .due(later, Duration::from_secs(60), 10)
            .await
            .expect("due")
            .is_empty(),
        "a leased job is not due again within its lease"
    );
    let after_lease = later + chrono::Duration::seconds(61);
    assert_eq!(
        queue
            .due(after_lease, Duration::from_secs(60), 10)
            .await
            .expect("due")
            .len(),
        1,
        "a job whose taker died comes due again"
    );
    queue.finish(&job).await.expect("finished");
    assert_eq!(queue.retries_waiting().await.expect("counted"), 0);
    queue.quit().await;
}

#[tokio::test]
async fn live_stream_registrations_lapse() {
    let queue = queue();
    let now = Utc::now();
    queue
        .watch(7, now + chrono::Duration::seconds(30))
        .await
        .expect("registered (is Redis up? run `make test`)");
    queue
        .watch(8, now + chrono::Duration::seconds(1))
        .await
        .expect("registered");
    assert_eq!(sorted(queue.watchers(now).await.expect("read")), vec![7, 8]);
    assert_eq!(
        queue
            .watchers(now + chrono::Duration::seconds(2))
            .await
            .expect("read"),
        vec![7]
    );
    queue.quit().await;
}

fn sorted(mut owners: Vec<i64>) -> Vec<i64> {
    owners.sort_unstable();
    owners
}
