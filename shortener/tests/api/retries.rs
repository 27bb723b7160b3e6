//! A request answered 503 at its deadline never takes effect afterwards, so a client that retries it never makes
//! a duplicate: PostgreSQL itself gives up on the request's statements before the deadline. And a batch whose
//! later insert round fails still reports the links an earlier round committed.

use std::time::Duration;

use links::model::Resolution;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_create_held_up_past_its_deadline_is_a_503_and_never_commits_afterwards() {
    let app = spawn_app().await;
    app.shorten(json!({"long_url": "https://example.com/warm-up"}))
        .await;
    let locker = app.locker().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE links IN SHARE MODE")
        .await
        .expect("lock");

    let started = std::time::Instant::now();
    let response = app
        .create(json!({"long_url": "https://example.com/held", "alias": "held"}))
        .await;

    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "answered by the 2 s deadline: {:?}",
        started.elapsed()
    );
    // Let go of the lock: an insert still waiting for it in PostgreSQL would now go through and commit.
    locker.batch_execute("COMMIT").await.expect("unlock");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        app.store.resolve("held").await.expect("lookup"),
        Resolution::Unknown,
        "the link answered 503 must not exist"
    );
}

/// Makes every insert of `https://example.com/unlucky` look, the first time, as if its generated code were taken
/// (the row is skipped, so the shortener takes a new ID for a second round) and fail the second time as a
/// statement PostgreSQL cancelled would.
const SECOND_ROUND_FAILS: &str = "
    CREATE TABLE unlucky (seen int NOT NULL);
    INSERT INTO unlucky VALUES (0);
    CREATE FUNCTION unlucky() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE n int;
    BEGIN
        IF NEW.long_url <> 'https://example.com/unlucky' THEN RETURN NEW; END IF;
        UPDATE unlucky SET seen = seen + 1 RETURNING seen INTO n;
        IF n = 1 THEN RETURN NULL; END IF;
        RAISE EXCEPTION 'a later round timed out' USING ERRCODE = 'query_canceled';
    END $$;
    CREATE TRIGGER unlucky BEFORE INSERT ON links FOR EACH ROW EXECUTE FUNCTION unlucky();";

#[tokio::test]
async fn a_batch_round_that_fails_reports_the_links_an_earlier_round_committed() {
    let app = spawn_app().await;
    app.locker()
        .await
        .batch_execute(SECOND_ROUND_FAILS)
        .await
        .expect("trigger");

    let response = app
        .batch(vec![
            json!({"long_url": "https://example.com/kept", "alias": "kept"}),
            json!({"long_url": "https://example.com/unlucky"}),
        ])
        .await;

    assert_eq!(response.status(), 200, "the first round's link was made");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["results"][0]["status"], 201);
    assert_eq!(body["results"][0]["link"]["code"], "kept");
    assert_eq!(body["results"][1]["status"], 503);
    assert_eq!(body["results"][1]["error"]["code"], "unavailable");
    assert!(matches!(
        app.store.resolve("kept").await.expect("lookup"),
        Resolution::Live { .. }
    ));
}
