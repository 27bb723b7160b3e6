//! Hit counting: counted in memory, flushed in batches to link_hits on the primary, and on shutdown.

use std::time::Duration;

use links::{db::DatabaseArgs, store::Store};

use plumbing::clock::Clock as _;
use testkit::eventually;

use crate::helpers::{link, spawn_pair};

async fn store(url: &str) -> Store {
    let pool = links::db::pool(url, "redirect-tests", DatabaseArgs::new(url).pool_options())
        .expect("pool");
    Store::new(pool)
}

#[tokio::test]
async fn redirects_are_flushed_to_link_hits_and_head_requests_are_not_counted() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/popular")).await;
    let id = pair.link_id(&code).await;

    for _ in 0..3 {
        assert_eq!(pair.follow(&code).await.status(), 302);
    }
    let head = pair
        .client
        .head(format!("{}/{code}", pair.redirect))
        .send()
        .await
        .expect("answer");
    assert_eq!(head.status(), 302);

    let store = store(&pair.db.url).await;
    eventually(Duration::from_secs(10), "3 hits flushed", || async {
        store.total_hits(id).await.expect("total") >= 3
    })
    .await;
    assert_eq!(store.total_hits(id).await.expect("total"), 3);
    let today: chrono::NaiveDate = pair
        .primary()
        .await
        .query_one("SELECT day FROM link_hits WHERE link_id = $1", &[&id])
        .await
        .expect("one row for today")
        .get(0);
    assert_eq!(today, pair.clock.now().date_naive());
}

#[tokio::test]
async fn hits_counted_before_a_shutdown_are_flushed_by_it() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/last")).await;
    let id = pair.link_id(&code).await;
    let mut args = pair.redirect_args();
    args.hits_flush_interval_ms = 3_600_000;
    let shutdown = plumbing::shutdown::Shutdown::new();
    let redirect = pair.spawn_redirect_until(args, shutdown.clone()).await;
    for _ in 0..2 {
        assert_eq!(pair.follow_on(&redirect.address, &code).await.status(), 302);
    }

    shutdown.trigger();
    redirect
        .stopped
        .await
        .expect("joined")
        .expect("stopped cleanly");

    let total = store(&pair.db.url)
        .await
        .total_hits(id)
        .await
        .expect("total");
    assert_eq!(total, 2);
}
