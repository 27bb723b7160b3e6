//! `POST /v1/import` and `shortener import`: each peer's export file (samples in `import_samples/`, each written
//! in that peer's own format) imported and read back through the API; bad lines, a second run, dry runs,
//! domains, and one import at a time.

use std::{
    io::{Read as _, Write as _},
    process::Command,
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::helpers::{error_code, spawn_app, TestApp};

/// A sample export file.
fn sample(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/api/import_samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// `POST /v1/import?{query}` with `body`, as the test's key.
async fn import_raw(
    app: &TestApp,
    query: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/import?{query}", app.address))
        .bearer_auth(&app.api_key)
        .header(reqwest::header::CONTENT_TYPE, "text/csv")
        .body(body)
        .send()
        .await
        .expect("the shortener answers")
}

/// An import that must answer 200: its report.
async fn import(app: &TestApp, query: &str, body: impl Into<reqwest::Body>) -> Value {
    let response = import_raw(app, query, body).await;
    assert_eq!(response.status(), 200, "import {query}");
    response.json().await.expect("json")
}

fn instant(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a date"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// Asserts what `GET /v1/urls/{code}` shows of an imported link.
async fn assert_link(
    app: &TestApp,
    code: &str,
    long_url: &str,
    tags: &[&str],
    created_at: &str,
    hits: i64,
) -> Value {
    let link = app.read(code).await;
    assert_eq!(link["long_url"], long_url, "{code}");
    assert_eq!(link["tags"], serde_json::json!(tags), "{code}");
    assert_eq!(instant(&link["created_at"]), at(created_at), "{code}");
    assert_eq!(link["hits"], hits, "{code}");
    link
}

fn no_skips(report: &Value, imported: u64) {
    assert_eq!(report["imported"], imported, "{report}");
    assert_eq!(report["skipped_total"], 0, "{report}");
    assert_eq!(report["skipped"], serde_json::json!([]), "{report}");
}

#[tokio::test]
async fn a_bitly_api_export_keeps_custom_back_halves_targets_tags_and_dates() {
    let app = spawn_app().await;

    let report = import(&app, "format=bitly", sample("bitly.json")).await;

    no_skips(&report, 2);
    assert_link(
        &app,
        "spring-launch",
        "https://www.example.com/launch?utm_source=bitly",
        &["marketing", "q4-2020"],
        "2020-10-26T17:20:40Z",
        0,
    )
    .await;
    assert_link(
        &app,
        "2Zabc12",
        "https://docs.example.org/guide",
        &[],
        "2021-03-01T08:00:00Z",
        0,
    )
    .await;
}

#[tokio::test]
async fn a_bitly_web_csv_export_keeps_its_click_totals() {
    let app = spawn_app().await;

    let report = import(&app, "format=bitly", sample("bitly.csv")).await;

    no_skips(&report, 2);
    assert_link(
        &app,
        "news-2023",
        "https://news.example.com/2023",
        &["email", "newsletter"],
        "2023-01-15T09:30:00Z",
        1204,
    )
    .await;
    assert_link(
        &app,
        "3Qp9Zt1",
        "https://example.com/pricing",
        &[],
        "2023-02-01T00:00:00Z",
        17,
    )
    .await;
}

#[tokio::test]
async fn a_shlink_export_keeps_short_codes_tags_dates_and_visits() {
    let app = spawn_app().await;

    let report = import(&app, "format=shlink", sample("shlink.csv")).await;

    no_skips(&report, 2);
    assert_link(
        &app,
        "launch",
        "https://example.com/launch",
        &["marketing", "q4-campaign"],
        "2023-05-04T08:20:30Z",
        42,
    )
    .await;
    assert_link(
        &app,
        "Xy3Dk",
        "https://example.com/docs?page=2",
        &[],
        "2023-06-01T00:00:00Z",
        0,
    )
    .await;
}

#[tokio::test]
async fn a_yourls_table_export_keeps_keywords_timestamps_and_clicks() {
    let app = spawn_app().await;

    let report = import(&app, "format=yourls", sample("yourls.csv")).await;

    no_skips(&report, 2);
    assert_link(
        &app,
        "ozh",
        "http://ozh.org/",
        &[],
        "2009-09-16T18:01:40Z",
        7,
    )
    .await;
    assert_link(
        &app,
        "yourls",
        "https://yourls.org/",
        &[],
        "2009-09-16T18:01:41Z",
        1234,
    )
    .await;
}

#[tokio::test]
async fn a_kutt_api_export_keeps_addresses_expiry_and_visit_counts() {
    let app = spawn_app().await;

    let report = import(&app, "format=kutt", sample("kutt.json")).await;

    no_skips(&report, 2);
    let docs = assert_link(
        &app,
        "kt-docs",
        "https://kutt.example/docs",
        &[],
        "2024-02-03T04:05:06Z",
        15,
    )
    .await;
    assert_eq!(instant(&docs["expires_at"]), at("2031-01-01T00:00:00Z"));
    let blog = assert_link(
        &app,
        "Zq81x",
        "https://kutt.example/blog",
        &[],
        "2024-03-04T05:06:07Z",
        0,
    )
    .await;
    assert_eq!(blog["expires_at"], Value::Null);
}

#[tokio::test]
async fn the_contract_csv_and_our_own_export_import_with_every_column() {
    let app = spawn_app().await;

    let report = import(&app, "format=csv", sample("links.csv")).await;

    no_skips(&report, 2);
    let link = assert_link(
        &app,
        "my-alias",
        "https://example.com/contract",
        &["alpha", "beta"],
        "2022-12-31T23:00:00Z",
        99,
    )
    .await;
    assert_eq!(instant(&link["expires_at"]), at("2032-01-01T00:00:00Z"));
    assert_eq!(app.links_to("https://example.com/no-code").await, 1);
}

#[tokio::test]
async fn a_bad_line_is_reported_by_its_number_and_the_others_import() {
    let app = spawn_app().await;
    let taken = app
        .shorten(serde_json::json!({"long_url": "https://example.com/mine", "alias": "taken-one"}))
        .await;
    let file = format!(
        "long_url,code,hits\n\
         https://example.com/ok-1,ok-one,1\n\
         ftp://example.com/nope,bad-url,1\n\
         https://example.com/ok-2,\"a b\",2\n\
         https://example.com/other,{taken},3\n\
         https://example.com/ok-3,ok-three,many\n\
         https://example.com/ok-4,ok-four,4\n"
    );

    let report = import(&app, "format=csv", file).await;

    assert_eq!(report["imported"], 2, "{report}");
    assert_eq!(report["skipped_total"], 4, "{report}");
    let skipped: Vec<(u64, &str)> = report["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .map(|line| {
            (
                line["line"].as_u64().expect("line"),
                line["error"]["code"].as_str().expect("code"),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        vec![
            (3, "invalid_url"),
            (4, "invalid_alias"),
            (5, "alias_taken"),
            (6, "invalid_line")
        ]
    );
    assert_eq!(app.read("ok-one").await["hits"], 1);
    assert_eq!(app.read("ok-four").await["hits"], 4);
    assert_eq!(
        app.read(&taken).await["long_url"],
        "https://example.com/mine"
    );
    for absent in ["bad-url", "ok-three"] {
        let response = app
            .call(
                reqwest::Method::GET,
                &format!("/v1/urls/{absent}"),
                &app.api_key,
            )
            .await;
        assert_eq!(response.status(), 404, "{absent}");
    }
}

#[tokio::test]
async fn the_same_file_twice_imports_nothing_the_second_time() {
    let app = spawn_app().await;
    let file = sample("links.csv");

    let first = import(&app, "format=csv", file.clone()).await;
    let second = import(&app, "format=csv", file).await;

    no_skips(&first, 2);
    no_skips(&second, 0);
    assert_eq!(app.links_to("https://example.com/contract").await, 1);
    assert_eq!(app.links_to("https://example.com/no-code").await, 1);
    assert_eq!(
        app.read("my-alias").await["hits"],
        99,
        "visits are not added twice"
    );
}

#[tokio::test]
async fn a_dry_run_reports_what_would_be_imported_and_changes_nothing() {
    let app = spawn_app().await;
    app.shorten(serde_json::json!({"long_url": "https://example.com/x", "alias": "ozh"}))
        .await;

    let report = import(&app, "format=yourls&dry_run=true", sample("yourls.csv")).await;

    assert_eq!(report["dry_run"], true);
    assert_eq!(report["imported"], 1, "{report}");
    assert_eq!(report["skipped"][0]["line"], 2, "ozh is taken: {report}");
    assert_eq!(report["skipped"][0]["error"]["code"], "alias_taken");
    let response = app
        .call(reqwest::Method::GET, "/v1/urls/yourls", &app.api_key)
        .await;
    assert_eq!(response.status(), 404, "nothing was written");
    assert_eq!(app.links_to("https://yourls.org/").await, 0);
}

#[tokio::test]
async fn an_import_onto_a_domain_keys_its_codes_there() {
    let app = spawn_app().await;
    app.store
        .put_domain(&links::domain::Domain {
            host: "go.brand.example".into(),
            is_default: false,
            root_url: None,
            not_found_url: None,
            allow_indexing: false,
        })
        .await
        .expect("a domain");
    app.shorten(serde_json::json!({"long_url": "https://example.com/default", "alias": "launch"}))
        .await;

    let report = import(
        &app,
        "format=shlink&domain=go.brand.example",
        sample("shlink.csv"),
    )
    .await;

    no_skips(&report, 2);
    let link = app.read("launch?domain=go.brand.example").await;
    assert_eq!(link["long_url"], "https://example.com/launch");
    assert_eq!(link["short_url"], "http://go.brand.example/launch");
    assert_eq!(
        app.read("launch").await["long_url"],
        "https://example.com/default"
    );
    let unknown = import_raw(
        &app,
        "format=shlink&domain=nope.example",
        sample("shlink.csv"),
    )
    .await;
    assert_eq!(unknown.status(), 422);
    assert_eq!(error_code(unknown).await, "unknown_domain");
}

#[tokio::test]
async fn an_unknown_or_missing_format_and_a_file_of_another_format_are_refused() {
    let app = spawn_app().await;

    let unknown = import_raw(&app, "format=rebrandly", "long_url\n").await;
    let missing = import_raw(&app, "dry_run=true", "long_url\n").await;
    let other = import_raw(&app, "format=shlink", sample("yourls.csv")).await;
    let not_json = import_raw(&app, "format=kutt", sample("shlink.csv")).await;

    assert_eq!(unknown.status(), 422);
    assert_eq!(error_code(unknown).await, "invalid_format");
    assert_eq!(missing.status(), 422);
    assert_eq!(error_code(missing).await, "invalid_query");
    assert_eq!(other.status(), 422);
    assert_eq!(error_code(other).await, "invalid_file");
    assert_eq!(not_json.status(), 422);
    assert_eq!(error_code(not_json).await, "invalid_file");
}

/// Starts an import whose body stays open (chunked, header sent) until the returned stream is written to.
fn open_import(app: &TestApp) -> std::net::TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    let head = format!(
        "POST /v1/import?format=csv HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nlong_url\n\r\n",
        app.api_key
    );
    stream.write_all(head.as_bytes()).expect("write");
    stream
}

#[tokio::test]
async fn a_second_import_while_one_runs_is_a_503_with_retry_after() {
    let app = spawn_app().await;
    let mut running = open_import(&app);

    let mut refused = None;
    // Until the first has taken the slot (a busy machine may take a while to start it).
    for _ in 0..400 {
        let response = import_raw(&app, "format=csv", "long_url\n").await;
        if response.status() == 503 {
            refused = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if refused.is_none() {
        running
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut answer = vec![0_u8; 2000];
        let read = running.read(&mut answer).unwrap_or(0);
        panic!(
            "no 503 while the first import ran; the first answered {:?}",
            String::from_utf8_lossy(&answer[..read])
        );
    }
    let refused = refused.expect("a second import is refused while the first runs");
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(refused).await, "import_busy");

    running.write_all(b"0\r\n\r\n").expect("end the body");
    running
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut answer = [0_u8; 12];
    running
        .read_exact(&mut answer)
        .expect("the first import's answer");
    assert_eq!(&answer, b"HTTP/1.1 200");
    no_skips(&import(&app, "format=csv", "long_url\n").await, 0);
}

#[tokio::test]
async fn the_import_command_imports_a_file_for_a_key_id_and_prints_the_report() {
    let db = testkit::TestDb::create().await;
    let store = shortener::stores::connect_and_migrate(&database::DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let (owner, _) = store.create_api_key("importer").await.expect("a key");
    let chroot = testkit::zookeeper_chroot().await;
    let file = format!(
        "{}/tests/api/import_samples/kutt.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_shortener"))
            .args([
                "import",
                "--format",
                "kutt",
                &file,
                "--owner",
                &owner.to_string(),
            ])
            .args(extra)
            .env("DATABASE_URL", &db.url)
            .env("ZOOKEEPER_CONNECT", &chroot)
            .env("CODE_KEY", links::code::key::TEST_KEY)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the shortener binary runs")
    };

    let dry = run(&["--dry-run"]);
    let real = run(&[]);

    assert!(dry.status.success(), "{dry:?}");
    assert!(real.status.success(), "{real:?}");
    let report = |output: &std::process::Output| -> Value {
        serde_json::from_slice(&output.stdout).expect("a JSON report")
    };
    assert_eq!(report(&dry)["dry_run"], true);
    assert_eq!(report(&dry)["imported"], 2);
    no_skips(&report(&real), 2);
    let (client, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("db");
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT owner_id, (SELECT sum(hits) FROM link_hits WHERE link_id = links.id)::bigint
             FROM links WHERE code = 'kt-docs'",
            &[],
        )
        .await
        .expect("the imported link");
    assert_eq!(row.get::<_, Option<i64>>(0), Some(owner));
    assert_eq!(row.get::<_, Option<i64>>(1), Some(15));
}
