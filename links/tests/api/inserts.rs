//! The create path's insert: its own transaction, pipelined, and never a pooled connection left inside it.

use std::time::Duration;

use database::PoolOptions;
use links::{schema, store::Store};
use testkit::TestDb;

use crate::new_link;

#[tokio::test]
async fn inserted_links_are_committed_and_taken_codes_left_out() {
    let test_db = TestDb::create().await;
    let pool = database::pool(&test_db.url, "links-tests", PoolOptions::default()).expect("pool");
    schema::migrate(&pool).await.expect("migrations");
    let store = Store::new(pool.clone());
    store
        .insert_links(&[new_link(1, "taken")], Duration::from_secs(2))
        .await
        .expect("first insert");

    let inserted = store
        .insert_links(
            &[new_link(2, "taken"), new_link(3, "fresh")],
            Duration::from_secs(2),
        )
        .await
        .expect("second insert");

    assert_eq!(
        inserted.iter().map(|link| link.id).collect::<Vec<_>>(),
        vec![3]
    );
    let client = pool.get().await.expect("connection");
    let rows: i64 = client
        .query_one("SELECT count(*) FROM links", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 2, "both inserts committed, the taken code skipped");
}

#[tokio::test]
async fn an_insert_abandoned_midway_leaves_no_pooled_connection_inside_its_transaction() {
    let test_db = TestDb::create().await;
    let options = PoolOptions {
        max_size: 1,
        ..PoolOptions::default()
    };
    let pool = database::pool(&test_db.url, "links-tests", options).expect("pool");
    schema::migrate(&pool).await.expect("migrations");
    let store = Store::new(pool.clone());
    // Another session inserts the same code and holds it uncommitted: our insert waits on it.
    let (blocker, connection) = tokio_postgres::connect(&test_db.url, tokio_postgres::NoTls)
        .await
        .expect("blocking session");
    tokio::spawn(connection);
    blocker
        .batch_execute(
            "BEGIN; INSERT INTO links (id, code, long_url, url_hash) VALUES (1, 'contested', 'https://e.x/', '\\x00')",
        )
        .await
        .expect("blocking insert");

    let abandoned = tokio::time::timeout(
        Duration::from_millis(300),
        store.insert_links(&[new_link(2, "contested")], Duration::from_secs(5)),
    )
    .await;
    assert!(abandoned.is_err(), "the insert should still be waiting");
    blocker.batch_execute("ROLLBACK").await.expect("rollback");

    // The one pooled connection: a fresh one, outside any transaction, or the abandoned insert's (its BEGIN
    // and INSERT sent, its COMMIT never) would still be inside that transaction and commit with the next one.
    let client = tokio::time::timeout(Duration::from_secs(2), pool.get())
        .await
        .expect("a connection within 2 s")
        .expect("connection");
    // SAVEPOINT is refused outside a transaction block.
    let in_transaction = client.batch_execute("SAVEPOINT probe").await.is_ok();
    assert!(
        !in_transaction,
        "a pooled connection was left inside the abandoned insert's transaction"
    );
    drop(client);
    store
        .insert_links(&[new_link(3, "after")], Duration::from_secs(2))
        .await
        .expect("next insert");
    let codes: Vec<String> = pool
        .get()
        .await
        .expect("connection")
        .query("SELECT code FROM links ORDER BY id", &[])
        .await
        .expect("codes")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(codes, vec!["after"], "the abandoned insert never committed");
}
