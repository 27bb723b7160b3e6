//! `loadtest seed` against the real shortener: it creates exactly the asked number of resolvable links.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use actix_web::{web, App, HttpResponse, HttpServer};

use database::DatabaseArgs;
use idgen::config::IdgenArgs;
use links::{cache::RedisArgs, model::Resolution};
use loadtest::seed::{self, Seed};
use plumbing::shutdown::Shutdown;
use shortener::{config::ServeArgs, startup};

#[tokio::test]
async fn seed_creates_the_asked_number_of_codes() {
    let db = testkit::TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let args = ServeArgs::for_tests(
        DatabaseArgs::new(&db.url),
        RedisArgs::new(redis_url, prefix),
        IdgenArgs::new(testkit::zookeeper_chroot().await),
    );
    let shutdown = Shutdown::new();
    let app = startup::build(args).await.expect("the shortener starts");
    let shortener = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let store = shortener::stores::connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let (_, api_key) = store.create_api_key("seed").await.expect("a key");

    let settings = Seed {
        shortener,
        api_key: api_key.into(),
        count: 2_500,
        concurrency: 3,
        run_id: "test".to_owned(),
    };
    let codes = seed::seed(&settings, &indicatif::ProgressBar::hidden())
        .await
        .expect("seeded");

    assert_eq!(codes.len(), 2_500);
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 2_500);
    for (n, code) in codes.iter().enumerate().step_by(499) {
        let Resolution::Live { long_url, .. } = store.resolve(code).await.expect("lookup") else {
            panic!("{code} does not resolve");
        };
        assert_eq!(
            long_url,
            format!("https://example.com/seed/test/{n}"),
            "codes are in creation order"
        );
    }
    let path = std::env::temp_dir().join(format!("{}.codes", testkit::unique_name()));
    seed::write_codes(&path, &codes).expect("written");
    assert_eq!(seed::read_codes(&path).expect("read"), codes);
    let _ = std::fs::remove_file(&path);
    shutdown.trigger();
}

/// A shortener that answers its first batch 503 (as when a statement timed out) and the next ones in full.
async fn busy_once_shortener() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let server = HttpServer::new(move || {
        let seen = Arc::clone(&seen);
        App::new().route(
            "/v1/urls/batch",
            web::post().to(move |body: web::Json<serde_json::Value>| {
                let call = seen.fetch_add(1, Ordering::SeqCst);
                async move {
                    if call == 0 {
                        return HttpResponse::ServiceUnavailable()
                            .insert_header(("Retry-After", "0"))
                            .json(serde_json::json!({"error": {"code": "unavailable", "message": "busy"}}));
                    }
                    let items = body["items"].as_array().map_or(0, Vec::len);
                    let results: Vec<_> = (0..items)
                        .map(|n| serde_json::json!({"link": {"code": format!("c{n}")}}))
                        .collect();
                    HttpResponse::Ok().json(serde_json::json!({ "results": results }))
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("bound");
    let address = server.addrs()[0];
    tokio::spawn(server.run());
    (format!("http://{address}"), calls)
}

#[tokio::test]
async fn a_batch_answered_503_is_sent_again_after_retry_after() {
    let (shortener, calls) = busy_once_shortener().await;
    let settings = Seed {
        shortener,
        api_key: "sk_test".to_owned().into(),
        count: 10,
        concurrency: 1,
        run_id: "busy".to_owned(),
    };
    let codes = seed::seed(&settings, &indicatif::ProgressBar::hidden())
        .await
        .expect("seeded after one 503");
    assert_eq!(codes.len(), 10);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "one 503, then the batch again"
    );
}
