//! The group inserter against the real PostgreSQL: requests that queue while a statement is in flight go in the
//! next one together, each gets exactly its own links, and a request whose row the database refuses (or whose
//! deadline left no time) fails alone.

use std::{future::ready, time::Duration};

use database::DatabaseArgs;
use links::model::{NewLink, RedirectStatus};
use plumbing::{shutdown::Shutdown, tasks::Supervisor};
use prometheus::{Histogram, HistogramOpts};
use shortener::{group_insert::GroupInserter, stores::connect_and_migrate};
use testkit::{eventually, TestDb};

const DEADLINE: Duration = Duration::from_secs(20);

/// A request deadline far enough off not to matter.
fn later() -> tokio::time::Instant {
    tokio::time::Instant::now() + DEADLINE
}

fn link(id: i64, code: &str, owner_id: Option<i64>) -> NewLink {
    NewLink {
        id,
        code: code.to_owned(),
        long_url: format!("https://example.com/{code}"),
        expires_at: None,
        redirect: RedirectStatus::default(),
        owner_id,
        tags: Vec::new(),
        password_hash: None,
        max_hits: None,
        routing: None,
    }
}

/// A single inserter whose first statement waits on a table lock held by the returned transaction's client,
/// so everything sent meanwhile queues. Returns the inserter, its histogram and the lock holder.
async fn blocked_inserter(
    db: &TestDb,
) -> (
    GroupInserter,
    Histogram,
    tokio_postgres::Client,
    tokio::task::JoinHandle<()>,
) {
    let store = connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let (locker, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("db");
    tokio::spawn(connection);
    locker
        .batch_execute("BEGIN; LOCK TABLE links IN SHARE MODE")
        .await
        .expect("lock");
    let histogram = Histogram::with_opts(HistogramOpts::new("rows", "rows")).expect("histogram");
    let (inserter, _tasks) = GroupInserter::start(
        store,
        1,
        1,
        Duration::ZERO,
        histogram.clone(),
        &Supervisor::unregistered(Shutdown::new()),
    );
    let first = inserter.clone();
    let blocked = tokio::spawn(async move {
        let links = first
            .insert(vec![link(1, "first", None)], later())
            .await
            .expect("the first insert succeeds once the lock is gone");
        assert_eq!(links.len(), 1);
    });
    let first_done = || ready(inserter.queued() == 0 && histogram.get_sample_count() == 1);
    eventually(DEADLINE, "the first statement is done", first_done).await;
    (inserter, histogram, locker, blocked)
}

#[tokio::test]
async fn requests_queued_behind_a_statement_share_the_next_one_and_each_gets_its_own_links() {
    let db = TestDb::create().await;
    let (inserter, histogram, locker, blocked) = blocked_inserter(&db).await;

    let waiting: Vec<_> = (0..50_i64)
        .map(|n| {
            let inserter = inserter.clone();
            let links = vec![
                link(1000 + 2 * n, &format!("a{n}"), None),
                link(1001 + 2 * n, &format!("b{n}"), None),
            ];
            tokio::spawn(async move { inserter.insert(links, later()).await })
        })
        .collect();
    eventually(DEADLINE, "the 50 requests queue", || {
        ready(inserter.queued() == 50)
    })
    .await;
    locker.batch_execute("COMMIT").await.expect("unlock");

    blocked.await.expect("first request");
    for (n, request) in (0..50_i64).zip(waiting) {
        let links = request.await.expect("task").expect("inserted");
        let codes: Vec<&str> = links.iter().map(|link| link.code.as_str()).collect();
        assert_eq!(codes, [format!("a{n}"), format!("b{n}")], "request {n}");
        assert_eq!(links[0].id, 1000 + 2 * n);
    }
    assert_eq!(
        histogram.get_sample_count(),
        2,
        "the first statement, then one for all 50 queued requests"
    );
    assert!((histogram.get_sample_sum() - 101.0).abs() < f64::EPSILON);
}

#[tokio::test]
async fn while_creates_keep_coming_a_small_group_waits_for_the_next_one() {
    let db = TestDb::create().await;
    let store = connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let histogram = Histogram::with_opts(HistogramOpts::new("rows", "rows")).expect("histogram");
    let (inserter, _tasks) = GroupInserter::start(
        store,
        1,
        1,
        // Far above the 5 ms default, so that on a loaded machine (CI runs the tests in parallel) the third
        // create is sure to arrive within the linger; without lingering it still never would share a statement.
        Duration::from_millis(500),
        histogram.clone(),
        &Supervisor::unregistered(Shutdown::new()),
    );
    // The first create after a quiet spell goes alone, at once; the next one (arriving within five lingers of
    // it) waits up to the linger, and a third sent 5 ms later joins its statement.
    inserter
        .insert(vec![link(1, "first", None)], later())
        .await
        .expect("first");
    let second = {
        let inserter = inserter.clone();
        tokio::spawn(async move {
            inserter
                .insert(vec![link(2, "second", None)], later())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let third = inserter
        .insert(vec![link(3, "third", None)], later())
        .await
        .expect("third");
    let second = second.await.expect("task").expect("second");

    assert_eq!((second[0].id, third[0].id), (2, 3));
    assert_eq!(
        histogram.get_sample_count(),
        2,
        "the first alone, then the paced two together"
    );
}

#[tokio::test]
async fn a_request_the_database_refuses_fails_alone_and_a_taken_code_is_left_out() {
    let db = TestDb::create().await;
    let (inserter, histogram, locker, blocked) = blocked_inserter(&db).await;

    let send = |links: Vec<NewLink>| {
        let inserter = inserter.clone();
        tokio::spawn(async move { inserter.insert(links, later()).await })
    };
    let good = send(vec![link(10, "good", None)]);
    // No API key 424242 exists: the foreign key refuses this row, and with it the whole group statement.
    let orphan = send(vec![link(11, "orphan", Some(424_242))]);
    let taken = send(vec![link(12, "first", None)]);
    eventually(DEADLINE, "the three requests queue", || {
        ready(inserter.queued() == 3)
    })
    .await;
    locker.batch_execute("COMMIT").await.expect("unlock");
    blocked.await.expect("first request");

    let good = good
        .await
        .expect("task")
        .expect("the good request is inserted");
    assert_eq!(
        good.iter().map(|l| l.code.as_str()).collect::<Vec<_>>(),
        ["good"]
    );
    let orphan = orphan.await.expect("task");
    assert!(
        orphan.is_err(),
        "the refused row fails its own request: {orphan:?}"
    );
    let taken = taken
        .await
        .expect("task")
        .expect("a taken code is not an error here");
    assert!(taken.is_empty(), "the code 'first' was taken: {taken:?}");
    assert_eq!(
        histogram.get_sample_count(),
        5,
        "first, the failed group of 3, then each of the 3 alone"
    );
}

#[tokio::test]
async fn a_request_whose_caller_left_while_queued_creates_nothing() {
    let db = TestDb::create().await;
    let (inserter, histogram, locker, blocked) = blocked_inserter(&db).await;

    let abandoned = {
        let inserter = inserter.clone();
        tokio::spawn(async move {
            inserter
                .insert(vec![link(20, "abandoned", None)], later())
                .await
        })
    };
    let kept = {
        let inserter = inserter.clone();
        tokio::spawn(async move { inserter.insert(vec![link(21, "kept", None)], later()).await })
    };
    eventually(DEADLINE, "the two requests queue", || {
        ready(inserter.queued() == 2)
    })
    .await;
    // What the request deadline does to a request: its future is dropped while the link waits in the queue.
    abandoned.abort();
    assert!(abandoned.await.is_err_and(|error| error.is_cancelled()));
    locker.batch_execute("COMMIT").await.expect("unlock");
    blocked.await.expect("first request");

    let kept = kept.await.expect("task").expect("inserted");
    assert_eq!(kept.len(), 1);
    let codes: Vec<String> = locker
        .query("SELECT code FROM links ORDER BY code", &[])
        .await
        .expect("query")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        codes,
        ["first", "kept"],
        "the abandoned link was not inserted"
    );
    assert!(
        (histogram.get_sample_sum() - 2.0).abs() < f64::EPSILON,
        "statements carried only the first and the kept link"
    );
}

#[tokio::test]
async fn a_queued_request_whose_deadline_left_no_time_fails_alone() {
    let db = TestDb::create().await;
    let (inserter, _histogram, locker, blocked) = blocked_inserter(&db).await;
    let soon = tokio::time::Instant::now() + Duration::from_millis(300);

    let late = {
        let inserter = inserter.clone();
        tokio::spawn(async move { inserter.insert(vec![link(30, "late", None)], soon).await })
    };
    let in_time = {
        let inserter = inserter.clone();
        tokio::spawn(async move {
            inserter
                .insert(vec![link(31, "in-time", None)], later())
                .await
        })
    };
    eventually(DEADLINE, "the two requests queue", || {
        ready(inserter.queued() == 2)
    })
    .await;
    tokio::time::sleep_until(soon).await;
    locker.batch_execute("COMMIT").await.expect("unlock");
    blocked.await.expect("first request");

    let late = late.await.expect("task");
    assert!(late.is_err(), "no time was left for it: {late:?}");
    let in_time = in_time.await.expect("task").expect("inserted");
    assert_eq!(
        in_time.len(),
        1,
        "not cut short by the late request's deadline"
    );
}
