//! The redirect's batched lookups and fills: many codes in one statement and in one Redis round trip, each
//! answered in the order asked, whatever state its link is in; a fill never overwrites what Redis holds.

use std::time::Duration;

use database::PoolOptions;
use links::{
    cache::{CacheOptions, Cached, RedisCache},
    model::{RedirectStatus, Resolution},
    schema,
    store::Store,
};
use testkit::TestDb;

fn live(id: i64, long_url: &str, max_hits: Option<i64>) -> Resolution {
    Resolution::Live {
        id,
        long_url: long_url.into(),
        redirect: RedirectStatus::Found302,
        expires_at: None,
        password_hash: None,
        limited: max_hits.is_some(),
        max_hits,
        routing: None,
        owner: None,
    }
}

#[tokio::test]
async fn resolve_many_answers_every_code_in_the_order_asked() {
    let test_db = TestDb::create().await;
    let pool = database::pool(&test_db.url, "links-tests", PoolOptions::default()).expect("pool");
    schema::migrate(&pool).await.expect("migrations");
    let client = pool.get().await.expect("connection");
    client
        .batch_execute(
            "INSERT INTO links (id, code, long_url, url_hash, max_hits) VALUES
                (1, 'alive', 'https://example.com/alive', '\\x00', NULL),
                (2, 'limited', 'https://example.com/limited', '\\x00', 10);
             INSERT INTO links (id, code, long_url, url_hash, deleted_at)
                VALUES (3, 'deleted', 'https://example.com/deleted', '\\x00', now());
             INSERT INTO retired_codes (code, retired_at) VALUES ('retired', now());",
        )
        .await
        .expect("rows");
    let store = Store::new(pool);

    let found = store
        .resolve_many(&["nobody", "limited", "retired", "deleted", "alive", "alive"])
        .await
        .expect("lookup");

    assert_eq!(
        found,
        vec![
            Resolution::Unknown,
            live(2, "https://example.com/limited", Some(10)),
            Resolution::Gone,
            Resolution::Gone,
            live(1, "https://example.com/alive", None),
            live(1, "https://example.com/alive", None),
        ]
    );
    assert_eq!(
        store.resolve("alive").await.expect("lookup"),
        live(1, "https://example.com/alive", None),
        "one code is a batch of one"
    );
    assert_eq!(
        store.resolve_many::<&str>(&[]).await.expect("lookup"),
        vec![],
        "no codes, no answers"
    );
}

#[tokio::test]
async fn lookup_many_reads_every_code_in_the_order_asked() {
    let cache = cache().await;
    let (first, second) = (
        live(1, "https://example.com/1", None),
        live(2, "https://example.com/2", Some(10)),
    );
    let ttl = Duration::from_secs(60);
    cache.put("first", &first, ttl).await.expect("SET");
    cache.put("second", &second, ttl).await.expect("SET");
    cache.put("changed", &first, ttl).await.expect("SET");
    cache.invalidate("changed").await.expect("invalidate");

    let codes = ["second", "missing", "changed", "first"].map(String::from);
    let found = cache.lookup_many(&codes).await.expect("MGET");

    assert_eq!(
        found,
        vec![
            Cached::Found(second),
            Cached::Nothing,
            Cached::RecentlyChanged,
            Cached::Found(first.clone()),
        ]
    );
    let one = cache
        .lookup_many(&["first".to_owned()])
        .await
        .expect("MGET of one key");
    assert_eq!(one, vec![Cached::Found(first)]);
}

async fn cache() -> RedisCache {
    let (url, prefix) = testkit::redis();
    RedisCache::connect(&CacheOptions {
        url: url.into(),
        prefix,
        timeout: Duration::from_secs(2),
    })
    .await
    .expect("a Redis client (make test starts Redis)")
}

#[tokio::test]
async fn fill_many_sets_only_absent_keys_each_with_its_own_expiry() {
    let cache = cache().await;
    let (stored, filled) = (
        live(1, "https://example.com/stored", None),
        live(2, "https://example.com/filled", None),
    );
    let hour = Duration::from_secs(3600);
    cache.put("present", &stored, hour).await.expect("SET");
    cache.put("changed", &stored, hour).await.expect("SET");
    cache.invalidate("changed").await.expect("invalidate");

    let count = cache
        .fill_many(&[
            ("new", &filled, hour),
            ("present", &filled, hour),
            ("changed", &filled, hour),
            ("unknown", &Resolution::Unknown, hour),
            ("brief", &filled, Duration::from_millis(50)),
        ])
        .await
        .expect("one script call");

    assert_eq!(count, 3, "new, unknown and brief were absent");
    let codes = ["new", "present", "changed", "unknown"].map(String::from);
    assert_eq!(
        cache.lookup_many(&codes).await.expect("MGET"),
        vec![
            Cached::Found(filled.clone()),
            Cached::Found(stored),
            Cached::RecentlyChanged,
            Cached::Found(Resolution::Unknown),
        ],
        "a fill never overwrites a stored link or the mark of a change"
    );
    // Each fill carries its own expiry: the 50 ms one goes while the others stay.
    testkit::eventually(Duration::from_secs(5), "the 50 ms fill expires", || async {
        cache.lookup("brief").await.expect("GET") == Cached::Nothing
    })
    .await;
    assert_eq!(cache.fill_many(&[]).await.expect("nothing to send"), 0);
    assert!(
        !cache.fill("new", &filled, hour).await.expect("SET NX"),
        "one fill is a batch of one, and NX holds for it too"
    );
}
