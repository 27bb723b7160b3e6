//! Misses that cost almost nothing: a replica's 404 is confirmed on the primary only when replica lag can
//! explain it (the code was created within the last minute), and a client past its bound on unknown codes gets
//! 429 without a lookup while the links held in memory keep redirecting.

use std::{sync::Arc, time::Duration};

use idgen::Layout;
use serde_json::json;

use crate::helpers::{database_lookups, link, metric, spawn_pair, tiers, TestPair};

const PRIMARY_LOOKUPS: &str = "redirect_backend_duration_seconds_count{backend=\"primary\"}";

/// Transactions the test database has run on the primary, as PostgreSQL counts them.
async fn primary_transactions(pair: &TestPair) -> i64 {
    let primary = pair.primary().await;
    primary
        .batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .expect("clear snapshot");
    primary
        .query_one(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .expect("pg_stat_database")
        .get(0)
}

/// Ten random base62 characters: what a scanner tries.
fn random_code(state: &mut u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..10)
        .map(|_| {
            // xorshift64: enough to make codes nobody created.
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            char::from(ALPHABET[usize::try_from(*state % 62).expect("small")])
        })
        .collect()
}

#[tokio::test]
async fn a_flood_of_random_codes_makes_at_most_one_primary_query_in_a_hundred() {
    let pair = Arc::new(spawn_pair().await);
    let mut args = pair.redirect_args();
    args.unknown_codes_per_minute = 0;
    // A replica lookup that times out falls back to the primary (by design: a failing replica is skipped). On
    // a loaded test machine the default 1 s bound was seen to pass, which is not what this test is about.
    args.database_lookup_timeout_ms = 10_000;
    let redirect = pair.spawn_redirect_app(args).await;
    // PostgreSQL publishes a backend's counts up to 10 s after its transactions (PGSTAT_IDLE_INTERVAL): let
    // what setting up did arrive first.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let transactions_before = primary_transactions(&pair).await;
    let lookups_before = metric(&redirect.admin, PRIMARY_LOOKUPS).await;

    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..16u64 {
        let (pair, base) = (Arc::clone(&pair), redirect.address.clone());
        senders.spawn(async move {
            let mut state = 0x9E37_79B9_7F4A_7C15 ^ (sender + 1);
            let mut not_found = 0;
            for _ in 0..1_250 {
                let code = random_code(&mut state);
                if pair.follow_on(&base, &code).await.status() == 404 {
                    not_found += 1;
                }
            }
            not_found
        });
    }
    let mut not_found = 0;
    while let Some(sent) = senders.join_next().await {
        not_found += sent.expect("sender");
    }
    tokio::time::sleep(Duration::from_secs(11)).await;

    assert_eq!(not_found, 20_000);
    let lookups = metric(&redirect.admin, PRIMARY_LOOKUPS).await - lookups_before;
    let transactions = primary_transactions(&pair).await - transactions_before;
    assert!(
        lookups <= 200.0,
        "{lookups} primary lookups for 20,000 random codes"
    );
    assert!(
        transactions <= 200,
        "{transactions} primary transactions for 20,000 random codes"
    );
}

#[tokio::test]
async fn a_code_minted_an_hour_ago_and_missing_on_the_replica_is_a_404_without_a_primary_query() {
    let pair = spawn_pair().await;
    let layout = Layout::default();
    let an_hour_ago = u64::try_from(chrono::Utc::now().timestamp_millis()).expect("after 1970")
        - 3_600_000
        - layout.epoch_ms();
    let id = layout.compose(an_hour_ago, 5, 9);
    let code = links::code::encode(id);
    pair.primary()
        .await
        .execute(
            "INSERT INTO links (id, code, long_url, url_hash) VALUES ($1, $2, 'https://example.com/old', '\\x00')",
            &[&i64::try_from(id).expect("63 bits"), &code],
        )
        .await
        .expect("the row, on the primary only");
    let (_lagging, redirect) = pair.spawn_redirect_on_an_empty_replica(|_| {}).await;
    let before = metric(&redirect.admin, PRIMARY_LOOKUPS).await;

    let status = pair.follow_on(&redirect.address, &code).await.status();

    assert_eq!(status, 404, "the replica's word decides for an old code");
    assert_eq!(metric(&redirect.admin, PRIMARY_LOOKUPS).await, before);
}

#[tokio::test]
async fn an_alias_created_a_moment_ago_and_missing_on_the_replica_still_redirects() {
    let pair = spawn_pair().await;
    let (_lagging, redirect) = pair.spawn_redirect_on_an_empty_replica(|_| {}).await;
    let heard = || {
        metric(
            &redirect.admin,
            "redirect_invalidations_total{scope=\"code\"}",
        )
    };
    let announcements_before = heard().await;
    let alias = format!("fresh-{}", testkit::unique_name());
    let code = pair
        .shorten(json!({"long_url": "https://example.com/alias", "alias": alias}))
        .await;
    pair.cache()
        .await
        .delete(&code)
        .await
        .expect("redis delete");
    let what = "the redirect heard the alias announced";
    testkit::eventually(Duration::from_secs(10), what, || async {
        heard().await > announcements_before
    })
    .await;

    let response = pair.follow_on(&redirect.address, &code).await;

    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "https://example.com/alias");
}

#[tokio::test]
async fn past_its_bound_a_client_gets_429_for_unknown_codes_and_302_for_real_links() {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/real")).await;
    let mut args = pair.redirect_args();
    args.unknown_codes_per_minute = 20;
    let redirect = pair.spawn_redirect_app(args).await;
    // Followed a moment ago (by anyone): held in memory, so answered without a lookup.
    assert_eq!(pair.follow_on(&redirect.address, &code).await.status(), 302);
    let mut state = 7;
    for _ in 0..20 {
        let status = pair
            .follow_on(&redirect.address, &random_code(&mut state))
            .await
            .status();
        assert_eq!(status, 404);
    }

    let refused = pair
        .follow_on(&redirect.address, &random_code(&mut state))
        .await;
    let real = pair.follow_on(&redirect.address, &code).await;

    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.headers()["cache-control"], "no-store");
    assert_eq!(real.status(), 302);
}

#[tokio::test]
async fn a_client_past_its_bound_gets_429_without_any_lookup() {
    let pair = spawn_pair().await;
    let mut args = pair.redirect_args();
    args.unknown_codes_per_minute = 3;
    let redirect = pair.spawn_redirect_app(args).await;
    let mut state = 17;
    for _ in 0..3 {
        let code = random_code(&mut state);
        assert_eq!(pair.follow_on(&redirect.address, &code).await.status(), 404);
    }
    // Whether this one exists is known only once it was looked up: the lookup that finds the client past it.
    let code = random_code(&mut state);
    assert_eq!(pair.follow_on(&redirect.address, &code).await.status(), 429);
    let tiers_before = tiers(&redirect.admin).await;
    let lookups_before = database_lookups(&redirect.admin).await;

    let mut statuses = Vec::new();
    for _ in 0..20 {
        let code = random_code(&mut state);
        statuses.push(pair.follow_on(&redirect.address, &code).await.status());
    }

    assert!(statuses.iter().all(|status| *status == 429), "{statuses:?}");
    assert_eq!(
        tiers(&redirect.admin).await,
        tiers_before,
        "no tier was asked"
    );
    assert_eq!(database_lookups(&redirect.admin).await, lookups_before);
}

/// `GET {base}/{code}` as `client`, forwarded by whatever proxy sends it.
async fn follow_as(pair: &TestPair, base: &str, code: &str, client: &str) -> u16 {
    pair.client
        .get(format!("{base}/{code}"))
        .header("x-forwarded-for", client)
        .send()
        .await
        .expect("the redirect answers")
        .status()
        .as_u16()
}

#[tokio::test]
async fn behind_a_trusted_proxy_one_scanner_does_not_get_other_clients_429() {
    let pair = spawn_pair().await;
    let mut args = pair.redirect_args();
    args.unknown_codes_per_minute = 3;
    args.client_ip.trusted_proxies = vec!["127.0.0.0/8".parse().expect("a CIDR block")];
    let redirect = pair.spawn_redirect_app(args).await;
    let mut state = 11;
    for _ in 0..3 {
        let code = random_code(&mut state);
        assert_eq!(
            follow_as(&pair, &redirect.address, &code, "203.0.113.1").await,
            404
        );
    }
    let code = random_code(&mut state);
    assert_eq!(
        follow_as(&pair, &redirect.address, &code, "203.0.113.1").await,
        429
    );

    assert_eq!(
        follow_as(&pair, &redirect.address, &code, "203.0.113.2").await,
        404,
        "another client behind the same proxy has its own bound"
    );
}

#[tokio::test]
async fn an_untrusted_peer_cannot_spoof_its_way_past_the_bound_on_unknown_codes() {
    let pair = spawn_pair().await;
    let mut args = pair.redirect_args();
    args.unknown_codes_per_minute = 3;
    let redirect = pair.spawn_redirect_app(args).await;
    let mut state = 13;
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let code = random_code(&mut state);
        assert_eq!(
            follow_as(&pair, &redirect.address, &code, client).await,
            404
        );
    }

    let code = random_code(&mut state);
    assert_eq!(
        follow_as(&pair, &redirect.address, &code, "203.0.113.4").await,
        429,
        "X-Forwarded-For from a peer that is not a trusted proxy is ignored"
    );
}
