//! `GET /v1/urls?tag=&q=` and `GET /v1/urls/export.csv` over 10,000 links of one owner: the right links across
//! pages, on the tag and trigram indexes, and a CSV export streamed a page at a time.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{error_code, spawn_app, TestApp};

const LINKS: i64 = 10_000;

/// 10,000 links of the test's key in one statement: every 100th tagged `rare`, all `common`; every 1000th (+7)
/// has "NeedLe" in its URL and the tag `scarce`; one URL holds a literal `%` and one an `_`. Then vacuumed and
/// analysed, as autovacuum does after a bulk insert (until then new rows wait in the GIN indexes' pending lists,
/// which the planner rightly counts as expensive to read).
async fn seed(app: &TestApp) {
    app.sql(
        "INSERT INTO links (id, code, long_url, url_hash, owner_id, tags)
         SELECT 1000000 + n, 's' || n,
                CASE WHEN n = 5 THEN 'https://example.com/100%off'
                     WHEN n = 6 THEN 'https://example.com/snake_case'
                     WHEN n % 1000 = 7 THEN 'https://example.com/NeedLe/' || n
                     ELSE 'https://example.com/item/' || n END,
                sha256(n::text::bytea),
                (SELECT id FROM api_keys WHERE name = 'tests'),
                CASE WHEN n % 100 = 0 THEN ARRAY['common', 'rare']
                     WHEN n % 1000 = 7 THEN ARRAY['common', 'scarce']
                     ELSE ARRAY['common'] END
         FROM generate_series(1, $1::bigint) AS n",
        &[&LINKS],
    )
    .await;
    app.sql("VACUUM ANALYZE links", &[]).await;
}

/// Every page of `GET /v1/urls?{query}`, following `next_cursor`: the codes in order.
async fn all_pages(app: &TestApp, query: &str) -> Vec<String> {
    let mut codes = Vec::new();
    let mut cursor = String::new();
    loop {
        let response = app
            .call(
                Method::GET,
                &format!("/v1/urls?limit=100&{query}{cursor}"),
                &app.api_key,
            )
            .await;
        assert_eq!(response.status(), 200, "{query}");
        let page: Value = response.json().await.expect("json");
        for item in page["items"].as_array().expect("items") {
            codes.push(item["code"].as_str().expect("code").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return codes,
        }
    }
}

fn number(code: &str) -> i64 {
    code.trim_start_matches('s').parse().expect("a seeded code")
}

#[tokio::test]
async fn a_tag_filter_pages_through_exactly_the_tagged_links_newest_first() {
    let app = spawn_app().await;
    seed(&app).await;
    let codes = all_pages(&app, "tag=rare").await;
    assert_eq!(codes.len(), 100);
    assert!(codes.iter().all(|code| number(code) % 100 == 0));
    let numbers: Vec<i64> = codes.iter().map(|code| number(code)).collect();
    assert!(
        numbers.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first"
    );
    assert_eq!(
        codes.iter().collect::<HashSet<_>>().len(),
        100,
        "no duplicates"
    );
}

#[tokio::test]
async fn search_matches_code_or_url_ignoring_case_and_its_wildcards_match_themselves() {
    let app = spawn_app().await;
    seed(&app).await;
    let needles = all_pages(&app, "q=needle").await;
    assert_eq!(needles.len(), 10);
    assert!(needles.iter().all(|code| number(code) % 1000 == 7));
    assert_eq!(all_pages(&app, "q=00%25").await, vec!["s5"], "a literal %");
    assert_eq!(all_pages(&app, "q=e_c").await, vec!["s6"], "a literal _");
    assert_eq!(
        all_pages(&app, "q=S9999").await,
        vec!["s9999"],
        "the code too"
    );
    let both = all_pages(&app, "q=needle&tag=rare").await;
    assert!(both.is_empty(), "no 1000th+7 is a 100th: {both:?}");
}

#[tokio::test]
async fn another_owners_links_never_appear_and_bad_filters_are_refused() {
    let app = spawn_app().await;
    seed(&app).await;
    let other = app.other_key().await;
    let response = app.call(Method::GET, "/v1/urls?q=needle", &other).await;
    let page: Value = response.json().await.expect("json");
    assert_eq!(page["items"], serde_json::json!([]));
    for (query, expected) in [
        ("tag=Not%20A%20Tag", "invalid_tag"),
        ("tag=", "invalid_tag"),
        ("q=", "invalid_query"),
        ("q=ab", "invalid_query"),
        ("q=nee%00dle", "invalid_query"),
        ("q=nee%0Adle", "invalid_query"),
    ] {
        let response = app
            .call(Method::GET, &format!("/v1/urls?{query}"), &app.api_key)
            .await;
        assert_eq!(response.status(), 422, "{query}");
        assert_eq!(error_code(response).await, expected, "{query}");
    }
    let long = "x".repeat(201);
    let response = app
        .call(Method::GET, &format!("/v1/urls?q={long}"), &app.api_key)
        .await;
    assert_eq!(error_code(response).await, "invalid_query");
}

/// The plan of the list's statement with `filter` (as the list sends it: an unnamed statement, planned with its
/// values in place).
async fn plan(app: &TestApp, filter: &str) -> String {
    let (client, connection) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
        .await
        .expect("db");
    tokio::spawn(connection);
    let rows = client
        .query(
            &format!(
                "EXPLAIN SELECT id FROM links
                 WHERE owner_id = (SELECT id FROM api_keys WHERE name = 'tests')
                   AND id < 9223372036854775807 AND deleted_at IS NULL AND {filter}
                 ORDER BY id DESC LIMIT 21"
            ),
            &[],
        )
        .await
        .expect("explain");
    rows.iter()
        .map(|row| row.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn scarce_tags_and_rare_searches_are_planned_on_their_indexes() {
    let app = spawn_app().await;
    seed(&app).await;
    let search = plan(&app, "(code ILIKE '%needle%' OR long_url ILIKE '%needle%')").await;
    assert!(search.contains("links_long_url_trgm_idx"), "{search}");
    // A tag on 1% of the links is found sooner by walking the newest links (21 matches in ~2,100 rows); one on
    // 0.1% is looked up in the tag index.
    let tagged = plan(&app, "tags @> ARRAY['scarce']").await;
    assert!(tagged.contains("links_tags_idx"), "{tagged}");
}

#[tokio::test]
async fn the_csv_export_streams_every_link_a_page_at_a_time_with_its_fields_quoted() {
    let app = spawn_app().await;
    seed(&app).await;
    let code = app
        .shorten(serde_json::json!({
            "long_url": "https://example.com/a,b?q=\"x\"",
            "tags": ["-dash", "z"],
            "expires_at": "2099-01-01T00:00:00Z",
        }))
        .await;

    let response = app
        .call(Method::GET, "/v1/urls/export.csv", &app.api_key)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(response.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .contains("links.csv"));
    assert!(
        response.content_length().is_none(),
        "streamed in chunks, not buffered whole: {:?}",
        response.headers()
    );
    // Read as it arrives: the server sends a piece per page of links, so no piece is near the whole export
    // (a handler that built the CSV in memory would send it as one body).
    let mut response = response;
    let mut pieces = Vec::new();
    let mut body = Vec::new();
    while let Some(piece) = response.chunk().await.expect("a piece of the export") {
        pieces.push(piece.len());
        body.extend_from_slice(&piece);
    }
    let largest = pieces.iter().copied().max().unwrap_or(0);
    assert!(
        pieces.len() >= 10 && largest * 5 < body.len(),
        "{} pieces, the largest {largest} of {} bytes",
        pieces.len(),
        body.len()
    );
    let text = String::from_utf8(body).expect("utf-8");
    let lines: Vec<&str> = text.split("\r\n").filter(|line| !line.is_empty()).collect();
    assert_eq!(
        lines[0],
        "code,short_url,long_url,created_at,expires_at,redirect,tags,hits,domain"
    );
    assert_eq!(lines.len() as i64, LINKS + 2, "a header and every link");
    assert!(lines[1].starts_with(&format!("{code},http://sho.rt.test/{code},")));
    assert!(
        lines[1].contains(",\"https://example.com/a,b?q=%22x%22\","),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains(",302,\"'-dash z\",0,sho.rt.test"),
        "{}",
        lines[1]
    );
    let codes: HashSet<&str> = lines[1..]
        .iter()
        .map(|line| line.split(',').next().expect("code"))
        .collect();
    assert_eq!(codes.len() as i64, LINKS + 1, "each link once");

    let rare = app
        .call(Method::GET, "/v1/urls/export.csv?tag=rare", &app.api_key)
        .await
        .text()
        .await
        .expect("csv");
    assert_eq!(rare.lines().count(), 101);
    let bad = app
        .call(Method::GET, "/v1/urls/export.csv?tag=BAD", &app.api_key)
        .await;
    assert_eq!(bad.status(), 422);
}
