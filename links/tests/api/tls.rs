//! TLS to the local PostgreSQL and Redis, whose certificates (for 127.0.0.1 and localhost) a throwaway CA
//! signed: `sslmode` and `sslrootcert` in a PostgreSQL URL, `rediss://` and `sslrootcert` in a Redis URL.

use std::time::Duration;

use fred::prelude::ClientLike as _;

use database::{check, pool, PoolOptions};
use links::{
    cache::{CacheOptions, RedisCache},
    model::{RedirectStatus, Resolution},
};
use plumbing::chain::Chain;
use testkit::TestDb;

/// `url` with `params` added to its query.
fn with_params(url: &str, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(url).expect("a URL");
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// Whether the pool's connection to `url` is encrypted, as the server sees it.
async fn encrypted(url: &str) -> Result<bool, String> {
    let pool = pool(url, "tls-tests", PoolOptions::default()).map_err(|e| Chain(&e).to_string())?;
    check(&pool).await.map_err(|e| Chain(&e).to_string())?;
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn verify_full_with_the_private_ca_connects_over_tls_and_runs_queries() {
    let db = TestDb::create().await;
    let ca = testkit::tls_ca();
    let url = with_params(&db.url, &[("sslmode", "verify-full"), ("sslrootcert", &ca)]);

    let encrypted = encrypted(&url).await;

    assert_eq!(encrypted, Ok(true));
}

#[tokio::test]
async fn verify_full_without_the_private_ca_fails_with_a_certificate_error() {
    let db = TestDb::create().await;
    let _ = testkit::tls_ca();
    let url = with_params(&db.url, &[("sslmode", "verify-full")]);

    let error = encrypted(&url).await.expect_err("an unknown issuer");

    assert!(error.contains("certificate"), "{error}");
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let db = TestDb::create().await;
    let ca = testkit::tls_ca();
    // The right server, reached under a name its certificate does not carry.
    let mut renamed = url::Url::parse(&db.url).expect("a URL");
    renamed.set_host(Some("db.snowlink.invalid")).expect("host");
    let renamed = with_params(
        renamed.as_str(),
        &[("hostaddr", "127.0.0.1"), ("sslrootcert", &ca)],
    );

    let full = encrypted(&with_params(&renamed, &[("sslmode", "verify-full")])).await;
    let ca_only = encrypted(&with_params(&renamed, &[("sslmode", "verify-ca")])).await;

    let error = full.expect_err("the name does not match");
    assert!(error.contains("certificate"), "{error}");
    assert_eq!(ca_only, Ok(true));
}

#[tokio::test]
async fn require_encrypts_without_a_ca() {
    let db = TestDb::create().await;
    let _ = testkit::tls_ca();
    let url = with_params(&db.url, &[("sslmode", "require")]);

    let encrypted = encrypted(&url).await;

    assert_eq!(encrypted, Ok(true));
}

#[tokio::test]
async fn prefer_disable_and_no_sslmode_connect_without_tls_as_before() {
    let db = TestDb::create().await;

    for url in [
        db.url.clone(),
        with_params(&db.url, &[("sslmode", "prefer")]),
        with_params(&db.url, &[("sslmode", "disable")]),
    ] {
        assert_eq!(encrypted(&url).await, Ok(false), "{url}");
    }
}

#[tokio::test]
async fn an_unknown_sslmode_is_a_clear_configuration_error() {
    let error = pool(
        "postgres://u@127.0.0.1/x?sslmode=always",
        "tls-tests",
        PoolOptions::default(),
    )
    .expect_err("refused");

    assert!(
        Chain(&error).to_string().contains("sslmode=always"),
        "{}",
        Chain(&error)
    );
}

fn cache_options(url: String, prefix: String) -> CacheOptions {
    CacheOptions {
        url: url.into(),
        prefix,
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn rediss_with_the_private_ca_caches_and_reads_back() {
    let (url, prefix) = testkit::redis_tls();
    let ca = testkit::tls_ca();
    let url = with_params(&url, &[("sslrootcert", &ca)]);
    let cache = RedisCache::connect(&cache_options(url, prefix))
        .await
        .expect("client");
    let target = Resolution::Live {
        long_url: "https://example.com/tls".into(),
        redirect: RedirectStatus::Found302,
        expires_at: None,
        id: 7,
        password_hash: None,
        limited: false,
        max_hits: None,
        routing: None,
        owner: None,
    };

    cache
        .put("tls", &target, Duration::from_secs(60))
        .await
        .expect("SET over TLS");
    let read = cache.get("tls").await.expect("GET over TLS");

    assert_eq!(read, Some(target));
}

#[tokio::test]
async fn rediss_without_the_private_ca_fails_the_handshake() {
    let (url, prefix) = testkit::redis_tls();
    let _ = testkit::tls_ca();
    let client = cache_options(url, prefix)
        .client_builder()
        .expect("builder")
        .build()
        .expect("client");

    let connected = tokio::time::timeout(Duration::from_secs(10), client.init())
        .await
        .expect("an answer within 10 s");

    let error = connected.expect_err("an unknown issuer").to_string();
    assert!(
        error.contains("InvalidCertificate(UnknownIssuer)"),
        "{error}"
    );
}
