//! The webhook store: the per-owner bound holds under concurrent creates, and the delivery side's marks (failing,
//! recovered, paused) show in what it reads back.

use database::PoolOptions;
use links::{
    schema,
    store::Store,
    webhooks::{EventType, EventTypes, WebhookError, MAX_WEBHOOKS_PER_OWNER},
};
use testkit::TestDb;

/// A store whose pool lets every create of the concurrency test have its own connection (the busy test machine
/// is slow to open them): what is tested is the bound, not the pool.
async fn store() -> (TestDb, Store) {
    let test_db = TestDb::create().await;
    let options = PoolOptions {
        max_size: 32,
        connect_timeout: std::time::Duration::from_secs(20),
        ..PoolOptions::default()
    };
    let pool = database::pool(&test_db.url, "links-tests", options).expect("pool");
    schema::migrate(&pool).await.expect("migrations");
    (test_db, Store::new(pool))
}

fn clicks() -> EventTypes {
    EventTypes::default().with(EventType::Click)
}

#[tokio::test]
async fn concurrent_creates_never_pass_the_bound_of_an_owner() {
    let (_db, store) = store().await;
    let (owner, _) = store.create_api_key("a").await.expect("key");
    let (other, _) = store.create_api_key("b").await.expect("key");

    let mut creates = tokio::task::JoinSet::new();
    for n in 0..25 {
        let store = store.clone();
        creates.spawn(async move {
            store
                .create_webhook(
                    owner,
                    &format!("https://example.com/{n}"),
                    clicks(),
                    "whsec_x",
                )
                .await
        });
    }
    let outcomes = creates.join_all().await;

    let created = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let refused = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, Err(WebhookError::TooMany)))
        .count();
    assert_eq!(
        created,
        usize::try_from(MAX_WEBHOOKS_PER_OWNER).expect("small")
    );
    assert_eq!(created + refused, 25, "{outcomes:?}");
    assert_eq!(
        store.list_webhooks(owner).await.expect("list").len(),
        created
    );
    store
        .create_webhook(other, "https://example.com/", clicks(), "whsec_y")
        .await
        .expect("another owner has a bound of its own");
}

#[tokio::test]
async fn a_failing_webhook_keeps_its_first_failure_until_it_recovers_and_a_paused_one_is_not_active(
) {
    let (_db, store) = store().await;
    let (owner, _) = store.create_api_key("a").await.expect("key");
    let hook = store
        .create_webhook(owner, "https://example.com/", clicks(), "whsec_x")
        .await
        .expect("created");

    let first = store.webhook_failed(hook.id).await.expect("marked");
    let again = store.webhook_failed(hook.id).await.expect("marked");
    assert!(first.is_some());
    assert_eq!(again, first, "the first failure's time stays");
    store.webhook_recovered(hook.id).await.expect("recovered");
    let listed = store.list_webhooks(owner).await.expect("list");
    assert_eq!(listed[0].failing_since, None);

    store.pause_webhook(hook.id).await.expect("paused");
    assert!(store.active_webhooks().await.expect("active").is_empty());
    assert!(store.list_webhooks(owner).await.expect("list")[0]
        .paused_at
        .is_some());
    assert_eq!(store.webhook_failed(-1).await.expect("no such"), None);
}

#[tokio::test]
async fn only_the_owner_deletes_a_webhook() {
    let (_db, store) = store().await;
    let (owner, _) = store.create_api_key("a").await.expect("key");
    let (other, _) = store.create_api_key("b").await.expect("key");
    let hook = store
        .create_webhook(owner, "https://example.com/", clicks(), "whsec_x")
        .await
        .expect("created");

    assert!(!store.delete_webhook(other, hook.id).await.expect("delete"));
    assert_eq!(
        store.active_webhooks().await.expect("active"),
        vec![hook.clone()]
    );
    assert!(store.delete_webhook(owner, hook.id).await.expect("delete"));
    assert!(store.list_webhooks(owner).await.expect("list").is_empty());
}
