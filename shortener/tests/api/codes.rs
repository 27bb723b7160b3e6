//! Codes of new links: 7 characters from blocks of the code counter through the keyed permutation, never one
//! given before (across shorteners and restarts), never an alias's; the snowflake style beside them; the key the
//! database was started with, and no other.

use std::collections::HashSet;

use database::DatabaseArgs;
use idgen::config::IdgenArgs;
use links::{
    cache::RedisArgs,
    code::{key::TEST_KEY, CodeKey, CompactCodes},
};
use plumbing::shutdown::Shutdown;
use serde_json::{json, Value};
use shortener::{codes::CodeStyle, config::ServeArgs, startup};
use testkit::TestDb;

use crate::helpers::{spawn_app, spawn_app_on, TestApp};

const COLLISIONS: &str = "shortener_generated_code_collisions_total";

fn compact() -> CompactCodes {
    CompactCodes::new(&CodeKey::from_hex(TEST_KEY).expect("the test key"))
}

fn items(count: usize, run: &str) -> Vec<Value> {
    (0..count)
        .map(|index| json!({"long_url": format!("https://example.com/{run}/{index}")}))
        .collect()
}

/// Creates `items` in one batch that must succeed entirely; returns the codes in order.
async fn create_all(app: &TestApp, items: Vec<Value>) -> Vec<String> {
    let response = app.batch(items).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| {
            assert_eq!(result["status"], 201, "{result}");
            result["link"]["code"].as_str().expect("a code").to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_thousand_links_get_7_character_codes_of_the_first_thousand_numbers_in_no_order() {
    let app = spawn_app().await;

    let codes = create_all(&app, items(1_000, "first")).await;

    assert!(codes
        .iter()
        .all(|code| code.len() == 7 && code.bytes().all(|byte| byte.is_ascii_alphanumeric())));
    let numbers: Vec<u64> = codes
        .iter()
        .map(|code| compact().decode(code).expect("a compact code"))
        .collect();
    let distinct: HashSet<u64> = numbers.iter().copied().collect();
    assert_eq!(
        distinct,
        (0..1_000).collect(),
        "a fresh counter's first block, each number once"
    );
    let mut sorted = codes.clone();
    sorted.sort();
    assert_ne!(
        sorted, codes,
        "codes in creation order are not in code order"
    );
}

#[tokio::test]
async fn a_generated_code_equal_to_an_alias_takes_the_next_number_and_leaves_the_alias_alone() {
    let app = spawn_app().await;
    let next = compact().encode(0).expect("the first number's code");
    let alias = app
        .shorten(json!({"long_url": "https://example.com/alias", "alias": next}))
        .await;

    let generated = app
        .shorten(json!({"long_url": "https://example.com/generated"}))
        .await;

    assert_eq!(alias, next);
    assert_eq!(
        generated,
        compact().encode(1).expect("the second number's code")
    );
    assert_eq!(
        app.read(&alias).await["long_url"],
        "https://example.com/alias"
    );
    assert_eq!(app.metric(COLLISIONS).await, 1.0);
}

/// Settings for a shortener on `db` and `redis`, leasing in `chroot`.
fn args_on(db: &TestDb, redis: &RedisArgs, chroot: &str) -> ServeArgs {
    ServeArgs::for_tests(
        DatabaseArgs::new(&db.url),
        redis.clone(),
        IdgenArgs::new(chroot),
    )
}

#[tokio::test]
async fn a_shortener_with_another_key_or_none_refuses_to_start() {
    let app = spawn_app().await;
    app.shorten(json!({"long_url": "https://example.com/"}))
        .await;
    let chroot = testkit::zookeeper_chroot().await;

    let mut other = args_on(&app.db, &app.redis, &chroot);
    other.code_key = links::code::CodeKeyArgs::with_key(&"ab".repeat(16));
    let refused = startup::build(other).await.err().expect("refused");
    let mut keyless = args_on(&app.db, &app.redis, &chroot);
    keyless.code_key = links::code::CodeKeyArgs::default();
    let keyless = startup::build(keyless).await.err().expect("refused");

    assert!(
        format!("{refused:#}").contains("CODE_KEY is not the key"),
        "{refused:#}"
    );
    assert!(
        format!("{keyless:#}").contains("needs the code key"),
        "{keyless:#}"
    );
}

/// Where `code` sends visitors, as the redirect reads it.
async fn target(app: &TestApp, code: &str) -> String {
    match app.store.resolve(code).await.expect("a lookup") {
        links::model::Resolution::Live { long_url, .. } => long_url,
        other => panic!("{code}: {other:?}"),
    }
}

#[tokio::test]
async fn codes_of_the_snowflake_style_keep_working_beside_compact_ones() {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let redis = RedisArgs::new(redis_url, prefix);
    let snowflake = spawn_app_on(db, redis, |args| args.code_style = CodeStyle::Snowflake).await;
    let old = snowflake
        .shorten(json!({"long_url": "https://example.com/old"}))
        .await;
    let row_id = match snowflake.store.resolve(&old).await.expect("a lookup") {
        links::model::Resolution::Live { id, .. } => id,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        links::code::decode(&old),
        Some(row_id.unsigned_abs()),
        "base62 of the ID"
    );
    assert!((10..=11).contains(&old.len()), "{old}");
    snowflake.shutdown.trigger();

    let chroot = testkit::zookeeper_chroot().await;
    let compact_app = startup::build(args_on(&snowflake.db, &snowflake.redis, &chroot))
        .await
        .expect("starts on the same database");
    let address = format!("http://127.0.0.1:{}", compact_app.port());
    let shutdown = Shutdown::new();
    tokio::spawn(compact_app.run_until_stopped(shutdown.clone()));
    let response = snowflake
        .client
        .post(format!("{address}/v1/urls"))
        .bearer_auth(&snowflake.api_key)
        .json(&json!({"long_url": "https://example.com/new"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 201);
    let new: Value = response.json().await.expect("json");
    let new = new["code"].as_str().expect("a code");

    assert_eq!(new.len(), 7);
    assert_eq!(target(&snowflake, &old).await, "https://example.com/old");
    assert_eq!(target(&snowflake, new).await, "https://example.com/new");
    shutdown.trigger();
}

#[tokio::test]
async fn three_shorteners_restarted_under_load_never_give_a_code_twice() {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let redis = RedisArgs::new(redis_url, prefix);
    let chroot = testkit::zookeeper_chroot().await;
    let store = shortener::stores::connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let (_, api_key) = store.create_api_key("load").await.expect("an API key");
    let client = reqwest::Client::new();
    let mut codes = Vec::new();
    for round in 0..4 {
        // Three shorteners on one counter, all started afresh each round: each leases new blocks and abandons
        // the rest of the old ones.
        let mut running = Vec::new();
        for _ in 0..3 {
            let shutdown = Shutdown::new();
            let app = startup::build(args_on(&db, &redis, &chroot))
                .await
                .expect("starts");
            let (address, admin) = (
                format!("http://127.0.0.1:{}", app.port()),
                format!("http://127.0.0.1:{}", app.admin_port()),
            );
            tokio::spawn(app.run_until_stopped(shutdown.clone()));
            running.push((address, admin, shutdown));
        }
        let batches = running.iter().enumerate().map(|(index, (address, _, _))| {
            let (client, api_key) = (client.clone(), api_key.clone());
            let body = json!({"items": items(1_000, &format!("{round}/{index}"))});
            let address = address.clone();
            async move {
                let response = client
                    .post(format!("{address}/v1/urls/batch"))
                    .bearer_auth(api_key)
                    .json(&body)
                    .send()
                    .await
                    .expect("answers");
                assert_eq!(response.status(), 200);
                response.json::<Value>().await.expect("json")
            }
        });
        for body in futures_util::future::join_all(batches).await {
            for result in body["results"].as_array().expect("results") {
                assert_eq!(result["status"], 201, "{result}");
                codes.push(result["link"]["code"].as_str().expect("code").to_owned());
            }
        }
        for (_, admin, shutdown) in running {
            assert_eq!(
                testkit::metric(&admin, COLLISIONS).await,
                0.0,
                "no code met another"
            );
            shutdown.trigger();
        }
    }

    let numbers: HashSet<u64> = codes
        .iter()
        .map(|code| compact().decode(code).expect("a compact code"))
        .collect();
    assert_eq!(codes.len(), 12_000);
    assert_eq!(numbers.len(), 12_000, "every number once");
}
