//! A person on the page: enters a key, shortens a link, follows it, sees its QR code and chart, meets an alias
//! error, deletes the link; and, where the operator allows it, shortens without a key.

use fantoccini::key::Key;
use serde_json::Value;

use crate::helpers::{
    click, open_browser, screenshot_path, spawn_services, start_driver, type_into, unique_alias,
    wait_until,
};

#[tokio::test]
async fn a_person_shortens_a_link_follows_it_sees_its_qr_and_chart_and_deletes_it() {
    let services = spawn_services(|_| {}).await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    let long_url = "https://example.com/a/long/path?from=browser";
    let alias = unique_alias();
    let row = format!("#links li[data-code='{alias}']");

    // Without a key (anonymous creation is off) the form says so next to the key field.
    browser
        .goto(&services.shortener)
        .await
        .expect("the page loads");
    type_into(&browser, "long-url", long_url).await;
    click(&browser, "#shorten-button").await;
    let key_error = wait_until(
        &browser,
        "!document.getElementById('api-key-error').hidden && document.getElementById('api-key-error').textContent",
        "the missing-key error",
    )
    .await;
    assert!(
        key_error.as_str().expect("text").contains("API key"),
        "{key_error}"
    );

    // Anything the page does from here on that the Content-Security-Policy blocks is recorded.
    browser
        .execute(
            "window.cspViolations = []; document.addEventListener('securitypolicyviolation', \
             (event) => window.cspViolations.push(event.violatedDirective + ' ' + event.blockedURI));",
            Vec::new(),
        )
        .await
        .expect("script");

    // The key is entered once and kept.
    type_into(&browser, "api-key", &services.api_key).await;
    click(&browser, "#save-key").await;
    wait_until(
        &browser,
        "localStorage.getItem('snowlink.apiKey') && document.getElementById('key-status').textContent.includes('saved')",
        "the key to be saved",
    )
    .await;

    // Shorten through the form; the answer shows the short link and its QR code.
    type_into(&browser, "long-url", long_url).await;
    type_into(&browser, "alias", &alias).await;
    click(&browser, "#shorten-button").await;
    let short_url = wait_until(
        &browser,
        "!document.getElementById('result').hidden && document.getElementById('short-link').href",
        "the short link",
    )
    .await;
    let short_url = short_url.as_str().expect("href").to_owned();
    assert!(short_url.ends_with(&format!("/{alias}")), "{short_url}");
    wait_until(
        &browser,
        "(() => { const img = document.getElementById('result-qr'); \
         return !img.hidden && img.complete && img.naturalWidth >= 64; })()",
        "the QR code of the new link to load",
    )
    .await;

    // The short link read off the page redirects.
    let followed = services
        .http
        .get(&short_url)
        .send()
        .await
        .expect("the redirect answers");
    assert_eq!(followed.status(), 302);
    assert_eq!(followed.headers()["location"], long_url);

    // Some history for the chart, as redirects would have flushed it; then the list shows the link with it.
    services
        .sql(
            "INSERT INTO link_hits (link_id, day, hits)
             SELECT id, (now() AT TIME ZONE 'UTC')::date - back, 3 + (back * 7) % 11
             FROM links, generate_series(0, 29, 2) AS back WHERE code = $1
             ON CONFLICT (link_id, day) DO UPDATE SET hits = link_hits.hits + EXCLUDED.hits",
            &alias,
        )
        .await;
    click(&browser, "#refresh-links").await;
    // The redirect's own flush of the follow above may have drawn a one-bar chart already: wait for the history.
    // Bars and label are read in one snapshot, since the list may be redrawn between two scripts.
    let chart = wait_until(
        &browser,
        &format!(
            "(() => {{ const row = document.querySelector(\"{row}\"); if (!row) return 0; \
             const qr = row.querySelector('img.link-qr'); \
             const chart = row.querySelector('svg.chart'); \
             return qr && qr.complete && qr.naturalWidth > 0 && chart \
                 && chart.querySelectorAll('rect.bar').length >= 15 \
                 && [chart.querySelectorAll('rect.bar').length, chart.getAttribute('aria-label')]; }})()"
        ),
        "the link in My links with its QR code and chart",
    )
    .await;
    let (bars, summary) = (chart[0].clone(), chart[1].clone());
    assert_eq!(bars, Value::from(15), "15 days with hits among 30");
    assert!(
        summary.as_str().expect("label").contains("30 days"),
        "{summary}"
    );
    let picture = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshot_path("web-page.png"), picture).expect("screenshot saved");
    browser
        .set_window_size(390, 1400)
        .await
        .expect("phone width");
    let phone = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshot_path("web-page-phone.png"), phone).expect("screenshot saved");
    browser
        .set_window_size(1100, 1400)
        .await
        .expect("desktop width");

    // The copy button copies (or says how to copy by hand).
    click(&browser, "#copy-button").await;
    let copied = wait_until(
        &browser,
        "document.getElementById('copy-status').textContent",
        "the copy status",
    )
    .await;
    assert_eq!(copied, "Copied.");

    // The same alias again, submitted from the keyboard: the error sits next to the alias field, in words.
    type_into(&browser, "long-url", "https://example.com/another").await;
    type_into(
        &browser,
        "alias",
        &format!("{alias}{}", char::from(Key::Enter)),
    )
    .await;
    let alias_error = wait_until(
        &browser,
        "!document.getElementById('alias-error').hidden && document.getElementById('alias-error').textContent",
        "the taken-alias error",
    )
    .await;
    assert!(
        alias_error
            .as_str()
            .expect("text")
            .contains("already taken"),
        "{alias_error}"
    );
    let invalid = browser
        .execute(
            "return document.getElementById('alias').getAttribute('aria-invalid');",
            Vec::new(),
        )
        .await
        .expect("script");
    assert_eq!(invalid, "true");

    // Delete, confirm, and the link is gone from the list and from the redirect.
    click(&browser, &format!("{row} button.delete")).await;
    click(&browser, &format!("{row} button.confirm-delete")).await;
    wait_until(
        &browser,
        &format!(
            "!document.querySelector(\"{row}\") && document.getElementById('links-status').textContent.includes('Deleted')"
        ),
        "the deleted link to leave the list",
    )
    .await;
    // The redirect drops its cached copy when the invalidation message arrives (pub/sub, asynchronous).
    let within = std::time::Duration::from_secs(5);
    testkit::eventually(within, "the deleted link answers 410", || async {
        let gone = services
            .http
            .get(&short_url)
            .send()
            .await
            .expect("the redirect answers");
        gone.status() == 410
    })
    .await;

    // Forgetting the key removes it from the browser and hides the list.
    click(&browser, "#forget-key").await;
    wait_until(
        &browser,
        "!localStorage.getItem('snowlink.apiKey') && document.getElementById('links-status').textContent.includes('Save your API key')",
        "the key to be forgotten",
    )
    .await;

    let violations = browser
        .execute("return window.cspViolations;", Vec::new())
        .await
        .expect("script");
    assert_eq!(
        violations,
        serde_json::json!([]),
        "nothing the page does is blocked by its own policy"
    );
    browser.close().await.expect("the session closes");
}

#[tokio::test]
async fn where_anonymous_creation_is_allowed_the_form_works_without_a_key() {
    let services = spawn_services(|args| args.allow_anonymous = true).await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;

    browser
        .goto(&services.shortener)
        .await
        .expect("the page loads");
    let status = wait_until(
        &browser,
        "document.getElementById('key-status').textContent",
        "the key status",
    )
    .await;
    assert!(
        status.as_str().expect("text").contains("anonymously"),
        "{status}"
    );
    type_into(&browser, "long-url", "https://example.com/anonymous").await;
    click(&browser, "#shorten-button").await;
    let short_url = wait_until(
        &browser,
        "!document.getElementById('result').hidden && document.getElementById('short-link').href",
        "the short link",
    )
    .await;
    wait_until(
        &browser,
        "(() => { const img = document.getElementById('result-qr'); \
         return !img.hidden && img.complete && img.naturalWidth >= 64; })()",
        "the QR code of the anonymous link",
    )
    .await;
    let followed = services
        .http
        .get(short_url.as_str().expect("href"))
        .send()
        .await
        .expect("the redirect answers");
    assert_eq!(followed.status(), 302);
    assert_eq!(
        followed.headers()["location"],
        "https://example.com/anonymous"
    );

    browser.close().await.expect("the session closes");
}

#[tokio::test]
async fn my_links_are_shown_ten_at_a_time_with_older_and_newer_pages() {
    let services = spawn_services(|_| {}).await;
    let items: Vec<Value> = (0..12)
        .map(|n| serde_json::json!({"long_url": format!("https://example.com/page/{n}")}))
        .collect();
    let created = services
        .http
        .post(format!("{}/v1/urls/batch", services.shortener))
        .bearer_auth(&services.api_key)
        .json(&serde_json::json!({ "items": items }))
        .send()
        .await
        .expect("the shortener answers");
    assert_eq!(created.status(), 200);
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    let rows =
        "Array.from(document.querySelectorAll('#links li')).map(li => li.dataset.code).join(' ')";

    browser
        .goto(&services.shortener)
        .await
        .expect("the page loads");
    type_into(&browser, "api-key", &services.api_key).await;
    click(&browser, "#save-key").await;
    let first = wait_until(
        &browser,
        &format!("document.querySelectorAll('#links li').length === 10 && !document.getElementById('older-links').hidden && {rows}"),
        "the first page of ten with a way to older links",
    )
    .await;
    click(&browser, "#older-links").await;
    let second = wait_until(
        &browser,
        &format!("document.querySelectorAll('#links li').length === 2 && !document.getElementById('newer-links').hidden && {rows}"),
        "the second page of two with a way back",
    )
    .await;
    let older = browser
        .execute(
            "return document.getElementById('older-links').hidden;",
            Vec::new(),
        )
        .await
        .expect("script");
    assert_eq!(older, true, "no page after the last");
    click(&browser, "#newer-links").await;
    let again = wait_until(
        &browser,
        &format!("document.querySelectorAll('#links li').length === 10 && {rows}"),
        "the first page again",
    )
    .await;

    let first_codes: Vec<&str> = first.as_str().expect("codes").split(' ').collect();
    let second_codes: Vec<&str> = second.as_str().expect("codes").split(' ').collect();
    assert!(
        second_codes.iter().all(|code| !first_codes.contains(code)),
        "pages do not overlap"
    );
    assert_eq!(again, first);

    browser.close().await.expect("the session closes");
}
