//! A person managing links on the page: edits a link's target and tags in place (and the redirect follows),
//! filters by tag and searches, creates a link with a password and a visit limit, sees where clicks come from
//! beside the chart, and downloads the CSV export.

use std::time::Duration;

use fantoccini::{key::Key, Client};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{
    click, open_browser, open_browser_saving_to, screenshot_path, sign_in, spawn_services,
    start_driver, type_into, unique_alias, wait_until, Services,
};

/// The codes of the rows My links shows, in order, in one snapshot.
const ROWS: &str =
    "Array.from(document.querySelectorAll('#links li')).map(li => li.dataset.code).join(' ')";

fn row(code: &str) -> String {
    format!("#links li[data-code='{code}']")
}

/// Waits until My links shows exactly `codes` (in any order) and says nothing is loading.
async fn wait_for_rows(browser: &Client, codes: &[&str], what: &str) {
    let mut expected: Vec<&str> = codes.to_vec();
    expected.sort_unstable();
    let check = format!(
        "(() => {{ const shown = ({ROWS}).split(' ').filter(Boolean).sort().join(' '); \
         return shown === {} && 'shown'; }})()",
        serde_json::to_string(&expected.join(" ")).expect("json")
    );
    wait_until(browser, &check, what).await;
}

/// Follows `short_url` until it redirects to `target`, failing after `within`.
async fn wait_for_redirect(services: &Services, short_url: &str, target: &str, within: Duration) {
    let what = format!("{short_url} redirects to {target}");
    testkit::eventually(within, &what, || async {
        let answer = services
            .http
            .get(short_url)
            .send()
            .await
            .expect("the redirect answers");
        let location = answer
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok());
        answer.status() == 302 && location == Some(target)
    })
    .await;
}

#[tokio::test]
async fn a_person_edits_a_links_target_and_tags_in_place_and_the_redirect_follows() {
    let services = spawn_services(|_| {}).await;
    let alias = unique_alias();
    let link = services
        .create(json!({"long_url": "https://example.com/poster/v1", "alias": alias, "tags": ["poster"]}))
        .await;
    let short_url = link["short_url"].as_str().expect("short_url").to_owned();
    // The redirect has the first target cached before the edit, as it would for a printed QR code.
    wait_for_redirect(
        &services,
        &short_url,
        "https://example.com/poster/v1",
        Duration::from_secs(5),
    )
    .await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    sign_in(&browser, &services).await;
    let row = row(&alias);
    wait_until(
        &browser,
        &format!("document.querySelector(\"{row} button.tag\")?.textContent === 'poster'"),
        "the link with its tag",
    )
    .await;

    // A bad tag is refused beside the form, naming the rule, and nothing is saved.
    click(&browser, &format!("{row} button.edit")).await;
    type_into(&browser, &format!("edit-tags-{alias}"), "poster Spring!").await;
    click(&browser, &format!("{row} button.save-edit")).await;
    let refused = wait_until(
        &browser,
        &format!(
            "(() => {{ const error = document.querySelector(\"{row} .edit-error\"); \
                 return error && !error.hidden && error.textContent; }})()"
        ),
        "the bad-tag error",
    )
    .await;
    assert!(
        refused.as_str().expect("text").contains("a-z, 0-9"),
        "{refused}"
    );
    let invalid = browser
        .execute(
            &format!(
                "return document.getElementById('edit-tags-{alias}').getAttribute('aria-invalid');"
            ),
            Vec::new(),
        )
        .await
        .expect("script");
    assert_eq!(invalid, "true");

    // The new target and tags, saved from the keyboard.
    type_into(
        &browser,
        &format!("edit-url-{alias}"),
        "https://example.com/poster/v2",
    )
    .await;
    type_into(
        &browser,
        &format!("edit-tags-{alias}"),
        &format!("poster, spring-2027{}", char::from(Key::Enter)),
    )
    .await;
    wait_until(
        &browser,
        &format!(
            "document.getElementById('links-status').textContent.includes('Saved') && \
             !document.querySelector(\"{row} form.editor\") && \
             document.querySelector(\"{row} .long\").textContent === 'https://example.com/poster/v2' && \
             Array.from(document.querySelectorAll(\"{row} button.tag\")).map(b => b.textContent).join(' ') \
                 === 'poster spring-2027'"
        ),
        "the row to show the new target and tags",
    )
    .await;
    let (status, stored) = services
        .api(Method::GET, &format!("/v1/urls/{alias}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(stored["long_url"], "https://example.com/poster/v2");
    assert_eq!(stored["tags"], json!(["poster", "spring-2027"]));
    // Same invalidation as a delete: the cached first target is dropped (1 s in the README; slack for CI).
    wait_for_redirect(
        &services,
        &short_url,
        "https://example.com/poster/v2",
        Duration::from_secs(5),
    )
    .await;

    browser.close().await.expect("the session closes");
}

#[tokio::test]
async fn a_person_filters_my_links_by_tag_and_searches_them() {
    let services = spawn_services(|_| {}).await;
    let mut red = Vec::new();
    for n in 0..3 {
        let link = services
            .create(json!({"long_url": format!("https://example.com/red/{n}"), "tags": ["red"]}))
            .await;
        red.push(link["code"].as_str().expect("code").to_owned());
    }
    let mut blue = Vec::new();
    for n in 0..2 {
        let link = services
            .create(json!({"long_url": format!("https://example.com/blue/{n}"), "tags": ["blue", "sky"]}))
            .await;
        blue.push(link["code"].as_str().expect("code").to_owned());
    }
    let needle = services
        .create(json!({"long_url": "https://example.com/Needle-In-A-Haystack"}))
        .await;
    let needle = needle["code"].as_str().expect("code").to_owned();
    let red: Vec<&str> = red.iter().map(String::as_str).collect();
    let blue: Vec<&str> = blue.iter().map(String::as_str).collect();
    let all: Vec<&str> = red
        .iter()
        .chain(&blue)
        .copied()
        .chain([needle.as_str()])
        .collect();

    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    sign_in(&browser, &services).await;
    wait_for_rows(&browser, &all, "all six links").await;

    type_into(&browser, "filter-tag", "red").await;
    click(&browser, "#apply-filter").await;
    wait_for_rows(&browser, &red, "only the red links").await;

    // A tag on a row filters by that tag.
    click(&browser, "#clear-filter").await;
    wait_for_rows(&browser, &all, "all links after clearing").await;
    click(&browser, &format!("{} button.tag", row(blue[0]))).await;
    wait_for_rows(&browser, &blue, "only the blue links").await;
    let tag_field = browser
        .execute(
            "return document.getElementById('filter-tag').value;",
            Vec::new(),
        )
        .await
        .expect("script");
    assert_eq!(tag_field, "blue", "the filter shows what it filters by");

    // Search ignores case, from the keyboard.
    click(&browser, "#clear-filter").await;
    type_into(
        &browser,
        "filter-q",
        &format!("needle-in{}", char::from(Key::Enter)),
    )
    .await;
    wait_for_rows(
        &browser,
        &[needle.as_str()],
        "the one link containing the text",
    )
    .await;

    type_into(&browser, "filter-q", "nothing-like-this").await;
    click(&browser, "#apply-filter").await;
    wait_until(
        &browser,
        "document.querySelectorAll('#links li').length === 0 && \
         document.getElementById('links-status').textContent.includes('No links match')",
        "no rows and a message saying the filter matched nothing",
    )
    .await;

    // A tag the API refuses is explained beside the filter.
    type_into(&browser, "filter-q", "").await;
    type_into(&browser, "filter-tag", "no_such!").await;
    click(&browser, "#apply-filter").await;
    let error = wait_until(
        &browser,
        "!document.getElementById('filter-error').hidden && document.getElementById('filter-error').textContent",
        "the bad-tag error",
    )
    .await;
    assert!(error.as_str().expect("text").contains("a-z"), "{error}");

    browser.close().await.expect("the session closes");
}

#[tokio::test]
async fn a_person_creates_a_link_with_a_password_and_a_visit_limit() {
    let services = spawn_services(|_| {}).await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    sign_in(&browser, &services).await;
    let alias = unique_alias();

    // A limit of 0 is refused beside its field before anything is sent.
    type_into(&browser, "long-url", "https://example.com/members").await;
    type_into(&browser, "alias", &alias).await;
    type_into(&browser, "max-hits", "0").await;
    click(&browser, "#shorten-button").await;
    let error = wait_until(
        &browser,
        "!document.getElementById('max-hits-error').hidden && document.getElementById('max-hits-error').textContent",
        "the visit-limit error",
    )
    .await;
    assert!(error.as_str().expect("text").contains("from 1"), "{error}");

    type_into(&browser, "tags", "Launch, q4").await;
    type_into(&browser, "password", "open sesame").await;
    type_into(&browser, "max-hits", "3").await;
    click(&browser, "#shorten-button").await;
    let short_url = wait_until(
        &browser,
        "!document.getElementById('result').hidden && document.getElementById('short-link').href",
        "the short link",
    )
    .await;
    let short_url = short_url.as_str().expect("href").to_owned();
    let (status, stored) = services
        .api(Method::GET, &format!("/v1/urls/{alias}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(stored["password_protected"], true);
    assert_eq!(stored["max_hits"], 3);
    assert_eq!(stored["tags"], json!(["launch", "q4"]));
    assert!(
        !stored.to_string().contains("open sesame"),
        "the password is never returned: {stored}"
    );
    let meta = wait_until(
        &browser,
        &format!(
            "document.querySelector(\"{} .link-meta\")?.textContent",
            row(&alias)
        ),
        "the new link in My links",
    )
    .await;
    let meta = meta.as_str().expect("text");
    assert!(
        meta.contains("password-protected") && meta.contains("limit 3 visits"),
        "{meta}"
    );

    // Visitors meet the password form, and the right password sends them on.
    let form = services
        .http
        .get(&short_url)
        .send()
        .await
        .expect("the redirect answers");
    assert_eq!(form.status(), 200);
    assert_eq!(form.headers()["cache-control"], "no-store");
    assert!(form
        .text()
        .await
        .expect("html")
        .contains("name=\"password\""));
    let unlocked = services
        .http
        .post(&short_url)
        .form(&[("password", "open sesame")])
        .send()
        .await
        .expect("the redirect answers");
    assert_eq!(unlocked.status(), 303);
    assert_eq!(
        unlocked.headers()["location"],
        "https://example.com/members"
    );

    browser.close().await.expect("the session closes");
}

/// Waits until Chromium has started a download named `name` (or `name.crdownload`) in `dir`.
async fn download_started(dir: &std::path::Path, name: &str) {
    let what = format!("a download of {name} appears in {}", dir.display());
    testkit::eventually(crate::helpers::PATIENCE, &what, || async {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|entry| entry.file_name().to_string_lossy().starts_with(name))
        })
    })
    .await;
}

/// The text of the `n`th file the page handed to a download (recorded by [`RECORD_DOWNLOADS`]).
async fn handed_to_download(browser: &Client, n: usize) -> String {
    let script = format!(
        "const done = arguments[arguments.length - 1]; window.downloads[{n}].text().then(done);"
    );
    let text = browser
        .execute_async(&script, Vec::new())
        .await
        .expect("the blob is read");
    text.as_str().expect("text").to_owned()
}

/// Records every CSV blob the page turns into a URL (what its download is made of; QR codes are blobs too), so a
/// test can read it.
const RECORD_DOWNLOADS: &str = "window.downloads = []; const make = URL.createObjectURL; \
     URL.createObjectURL = (blob) => { if (blob.type.startsWith('text/csv')) window.downloads.push(blob); \
     return make.call(URL, blob); };";

#[tokio::test]
async fn a_person_sees_where_clicks_come_from_and_downloads_the_export() {
    let services = spawn_services(|_| {}).await;
    let alias = unique_alias();
    services
        .create(json!({"long_url": "https://example.com/report,2026", "alias": alias, "tags": ["report"]}))
        .await;
    for n in 0..2 {
        services
            .create(json!({"long_url": format!("https://example.com/other/{n}")}))
            .await;
    }
    // A day of clicks as the redirects' flush would have written them: 7 by people, 6 by bots.
    services
        .sql(
            "WITH link AS (SELECT id FROM links WHERE code = $1), today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS day),
             hits AS (INSERT INTO link_hits (link_id, day, hits) SELECT id, day, 7 FROM link, today)
             INSERT INTO link_hit_sources (link_id, day, kind, key, hits)
             SELECT id, day, kind, key, hits FROM link, today,
                 (VALUES (1, 'news.example.com', 5), (1, 'direct', 2),
                         (2, 'desktop', 4), (2, 'mobile', 3), (2, 'bot', 6)) AS rows (kind, key, hits)",
            &alias,
        )
        .await;
    let downloads = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/downloads")
        .join(&alias);
    std::fs::create_dir_all(&downloads).expect("download directory");
    let driver = start_driver().await;
    let browser = open_browser_saving_to(&driver, &downloads).await;
    sign_in(&browser, &services).await;
    let row = row(&alias);

    click(&browser, &format!("{row} details.sources summary")).await;
    let breakdown = wait_until(
        &browser,
        &format!(
            "(() => {{ const row = document.querySelector(\"{row}\"); \
             const count = (table, name) => row.querySelector(`table.${{table}} tr[data-name='${{name}}'] td.count`)?.textContent; \
             const total = row.querySelector('.sources-total')?.textContent; \
             return total && row.querySelector('svg.chart') && [total, count('referrers', 'news.example.com'), \
                 count('referrers', 'direct'), count('devices', 'desktop'), count('devices', 'mobile'), \
                 count('devices', 'tablet')]; }})()"
        ),
        "the referrer and device breakdown beside the chart",
    )
    .await;
    let total = breakdown[0].as_str().expect("text");
    assert!(
        total.contains("7 visits by people") && total.contains("6 by bots"),
        "{total}"
    );
    assert_eq!(
        breakdown.as_array().expect("array")[1..],
        [json!("5"), json!("2"), json!("4"), json!("3"), json!("0")],
        "referrers news.example.com, direct; devices desktop, mobile, tablet"
    );

    browser
        .execute(RECORD_DOWNLOADS, Vec::new())
        .await
        .expect("script");
    let picture = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshot_path("web-page-sources.png"), picture).expect("screenshot saved");

    click(&browser, "#export-links").await;
    wait_until(
        &browser,
        "document.getElementById('export-status').textContent.includes('Exported 3 links')",
        "the export of three links",
    )
    .await;
    download_started(&downloads, "links.csv").await;
    let csv = handed_to_download(&browser, 0).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "code,short_url,long_url,created_at,expires_at,redirect,tags,hits,domain"
    );
    assert_eq!(lines.len(), 4, "{csv}");
    let report = lines
        .iter()
        .find(|line| line.starts_with(&format!("{alias},")))
        .expect("the aliased link in the export");
    assert!(
        report.contains(",\"https://example.com/report,2026\",")
            && report.ends_with(",302,report,7,127.0.0.1"),
        "{report}"
    );

    // The export follows the filter.
    type_into(&browser, "filter-tag", "report").await;
    click(&browser, "#apply-filter").await;
    wait_for_rows(&browser, &[alias.as_str()], "the one report link").await;
    click(&browser, "#export-links").await;
    wait_until(
        &browser,
        "document.getElementById('export-status').textContent.includes('Exported 1 link to')",
        "the export of the filtered link",
    )
    .await;
    let filtered = handed_to_download(&browser, 1).await;
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    assert!(filtered.contains(&format!("\r\n{alias},")), "{filtered}");

    browser.close().await.expect("the session closes");
    let _ = std::fs::remove_dir_all(&downloads);
}
