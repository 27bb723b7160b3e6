//! A person routing visitors from the page: creates a link on a domain they pick, adds and removes rule and
//! variant rows on create and on edit (the API stores exactly the rows left; no rows left clears them), and sees
//! hits per variant beside the chart once visitors have come through the redirect.

use std::{collections::BTreeMap, time::Duration};

use fantoccini::Client;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{
    choose, click, fill, open_browser, screenshot_path, sign_in, spawn_services, spawn_services_on,
    start_driver, type_into, unique_alias, wait_until, Services,
};

/// A registered domain besides the default one.
const BRAND_HOST: &str = "go.brand.test";

fn row(code: &str) -> String {
    format!("#links li[data-code='{code}']")
}

/// The create form's `n`th rule row (from 1).
fn new_rule(n: usize) -> String {
    format!("#create-routing .rule-list > li:nth-child({n})")
}

/// The create form's `n`th variant row (from 1).
fn new_variant(n: usize) -> String {
    format!("#create-routing .variant-list > li:nth-child({n})")
}

/// Waits until the page has asked for the domains and listed the links (it lists them once it knows the domains).
async fn wait_for_list(browser: &Client) {
    wait_until(
        browser,
        "document.getElementById('links-status').textContent || document.querySelector('#links li')",
        "My links to be listed",
    )
    .await;
}

/// Submits the create form and answers the short link it shows.
async fn shorten(browser: &Client) -> String {
    click(browser, "#shorten-button").await;
    let short_url = wait_until(
        browser,
        "!document.getElementById('result').hidden && document.getElementById('short-link').href",
        "the short link",
    )
    .await;
    short_url.as_str().expect("href").to_owned()
}

/// The link as the API stores it, on the default domain.
async fn stored(services: &Services, code: &str) -> Value {
    let (status, link) = services
        .api(Method::GET, &format!("/v1/urls/{code}"), None)
        .await;
    assert_eq!(status, 200, "{link}");
    link
}

/// Records the body of every PATCH the page sends, in `window.patches`.
const RECORD_PATCHES: &str = "window.patches = []; const send = window.fetch; \
     window.fetch = (url, init) => { if (init && init.method === 'PATCH') window.patches.push(init.body); \
     return send(url, init); };";

/// Waits until the page has sent `count` PATCHes and answers the last one's body.
async fn last_patch(browser: &Client, count: usize) -> Value {
    let body = wait_until(
        browser,
        &format!("window.patches.length === {count} && window.patches[{count} - 1]"),
        "the page's PATCH",
    )
    .await;
    serde_json::from_str(body.as_str().expect("text")).expect("a JSON body")
}

#[tokio::test]
async fn a_person_picks_a_domain_and_the_link_is_created_on_it() {
    let services = spawn_services_on(&[BRAND_HOST], |_| {}).await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    sign_in(&browser, &services).await;
    let alias = unique_alias();
    let options = wait_until(
        &browser,
        "!document.getElementById('domain-field').hidden && \
         Array.from(document.querySelectorAll('#domain option')).map(o => o.value + (o.selected ? '*' : ''))",
        "the domain picker",
    )
    .await;
    let options: Vec<&str> = options
        .as_array()
        .expect("array")
        .iter()
        .map(|option| option.as_str().expect("text"))
        .collect();
    assert_eq!(options.len(), 2, "{options:?}");
    assert!(
        options.contains(&BRAND_HOST),
        "the registered domain is offered: {options:?}"
    );
    assert!(
        options
            .iter()
            .any(|option| option.ends_with('*') && *option != BRAND_HOST),
        "the default domain is picked to begin with: {options:?}"
    );

    type_into(&browser, "long-url", "https://example.com/brand/launch").await;
    type_into(&browser, "alias", &alias).await;
    choose(&browser, "#domain", BRAND_HOST).await;
    let short_url = shorten(&browser).await;

    let host = reqwest::Url::parse(&short_url).expect("a URL");
    assert_eq!(host.host_str(), Some(BRAND_HOST), "{short_url}");
    let (status, link) = services
        .api(
            Method::GET,
            &format!("/v1/urls/{alias}?domain={BRAND_HOST}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{link}");
    assert_eq!(link["domain"], BRAND_HOST);
    let (status, _) = services
        .api(Method::GET, &format!("/v1/urls/{alias}"), None)
        .await;
    assert_eq!(status, 404, "the alias is taken on the brand domain only");

    // The row names its domain, and its chart and QR code load (their calls name the domain too).
    let row = row(&alias);
    wait_until(
        &browser,
        &format!(
            "(() => {{ const row = document.querySelector(\"{row}\"); if (!row) return false; \
             const qr = row.querySelector('img.link-qr'); \
             return row.querySelector('.link-meta').textContent.includes('on {BRAND_HOST}') \
                 && row.querySelector('svg.chart') && qr.complete && qr.naturalWidth > 0; }})()"
        ),
        "the link in My links with its domain, chart and QR code",
    )
    .await;

    browser.close().await.expect("the session closes");
}

#[tokio::test]
async fn a_person_adds_two_rules_removes_one_and_the_link_keeps_the_other() {
    let services = spawn_services(|_| {}).await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    sign_in(&browser, &services).await;
    wait_for_list(&browser).await;
    let picker_hidden = browser
        .execute(
            "return document.getElementById('domain-field').hidden;",
            Vec::new(),
        )
        .await
        .expect("script");
    assert_eq!(picker_hidden, true, "one domain: no picker");
    let alias = unique_alias();

    click(&browser, "#create-routing summary").await;
    click(&browser, "#create-routing .add-rule").await;
    choose(
        &browser,
        &format!("{} .condition-input", new_rule(1)),
        "mobile",
    )
    .await;
    fill(
        &browser,
        &format!("{} .rule-url", new_rule(1)),
        "https://example.com/mobile",
    )
    .await;
    // The second rule: German speakers on a tablet (two conditions, the second added with "And…").
    click(&browser, "#create-routing .add-rule").await;
    choose(
        &browser,
        &format!("{} .condition-kind", new_rule(2)),
        "language",
    )
    .await;
    fill(&browser, &format!("{} .condition-input", new_rule(2)), "de").await;
    click(&browser, &format!("{} .add-condition", new_rule(2))).await;
    let second = format!("{} .condition:nth-child(2)", new_rule(2));
    choose(&browser, &format!("{second} .condition-kind"), "device").await;
    choose(&browser, &format!("{second} .condition-input"), "tablet").await;
    fill(
        &browser,
        &format!("{} .rule-url", new_rule(2)),
        "mailto:someone@example.com",
    )
    .await;
    let picture = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshot_path("web-page-rules.png"), picture).expect("screenshot saved");
    click(&browser, &format!("{} .remove-rule", new_rule(1))).await;

    // The API refuses the target; its message, in the form's error area, numbers the rule as the page does now.
    type_into(&browser, "long-url", "https://example.com/everyone").await;
    type_into(&browser, "alias", &alias).await;
    click(&browser, "#shorten-button").await;
    let error = wait_until(
        &browser,
        "!document.getElementById('form-error').hidden && document.getElementById('form-error').textContent",
        "the API's refusal of the rule",
    )
    .await;
    assert!(
        error.as_str().expect("text").starts_with("Rule 1"),
        "{error}"
    );
    fill(
        &browser,
        &format!("{} .rule-url", new_rule(1)),
        "https://example.com/de-tablet",
    )
    .await;
    shorten(&browser).await;

    let link = stored(&services, &alias).await;
    assert_eq!(
        link["rules"],
        json!([{"when": {"language": "de", "device": "tablet"}, "long_url": "https://example.com/de-tablet"}]),
        "{link}"
    );
    assert!(link.get("variants").is_none(), "{link}");
    // The form is cleared once the short link and its QR code are shown.
    wait_until(
        &browser,
        "document.querySelectorAll('#create-routing .rule').length === 0",
        "the form emptied for the next link",
    )
    .await;

    browser.close().await.expect("the session closes");
}

#[tokio::test]
async fn a_person_creates_a_link_with_weighted_variants() {
    let services = spawn_services(|_| {}).await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    sign_in(&browser, &services).await;
    let alias = unique_alias();

    type_into(&browser, "long-url", "https://example.com/landing").await;
    type_into(&browser, "alias", &alias).await;
    click(&browser, "#create-routing summary").await;
    for (n, (target, weight)) in [
        ("https://example.com/landing-a", "70"),
        ("https://example.com/landing-b", "0"),
    ]
    .into_iter()
    .enumerate()
    {
        click(&browser, "#create-routing .add-variant").await;
        fill(
            &browser,
            &format!("{} .variant-url", new_variant(n + 1)),
            target,
        )
        .await;
        fill(
            &browser,
            &format!("{} .variant-weight", new_variant(n + 1)),
            weight,
        )
        .await;
    }
    // A weight of 0 is refused in the form's error area before anything is sent.
    click(&browser, "#shorten-button").await;
    let error = wait_until(
        &browser,
        "!document.getElementById('form-error').hidden && document.getElementById('form-error').textContent",
        "the weight error",
    )
    .await;
    assert!(
        error.as_str().expect("text").contains("Variant 2"),
        "{error}"
    );

    fill(
        &browser,
        &format!("{} .variant-weight", new_variant(2)),
        "30",
    )
    .await;
    shorten(&browser).await;

    let link = stored(&services, &alias).await;
    assert_eq!(
        link["variants"],
        json!([
            {"long_url": "https://example.com/landing-a", "weight": 70},
            {"long_url": "https://example.com/landing-b", "weight": 30},
        ]),
        "{link}"
    );
    assert!(link.get("rules").is_none(), "{link}");

    browser.close().await.expect("the session closes");
}

#[tokio::test]
async fn a_person_edits_a_links_rules_and_clearing_them_sends_null() {
    let services = spawn_services(|_| {}).await;
    let alias = unique_alias();
    services
        .create(json!({
            "long_url": "https://example.com/app",
            "alias": alias,
            "rules": [{"when": {"os": "ios"}, "long_url": "https://example.com/app-store"}],
        }))
        .await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    sign_in(&browser, &services).await;
    let row = row(&alias);
    browser
        .execute(RECORD_PATCHES, Vec::new())
        .await
        .expect("script");

    // The editor opens with the stored rule in its row.
    click(&browser, &format!("{row} button.edit")).await;
    let shown = wait_until(
        &browser,
        &format!(
            "(() => {{ const rule = document.querySelector(\"{row} form.editor .rule\"); \
             return rule && [rule.querySelector('.condition-kind').value, \
                 rule.querySelector('.condition-input').value, rule.querySelector('.rule-url').value]; }})()"
        ),
        "the editor with the link's rule",
    )
    .await;
    assert_eq!(shown, json!(["os", "ios", "https://example.com/app-store"]));

    // A query rule added, the iOS rule removed.
    let editor = format!("{row} form.editor");
    click(&browser, &format!("{editor} .add-rule")).await;
    let added = format!("{editor} .rule-list > li:nth-child(2)");
    choose(&browser, &format!("{added} .condition-kind"), "query").await;
    fill(&browser, &format!("{added} .query-name"), "utm_source").await;
    fill(&browser, &format!("{added} .query-value"), "mail").await;
    fill(
        &browser,
        &format!("{added} .rule-url"),
        "https://example.com/from-mail",
    )
    .await;
    click(
        &browser,
        &format!("{editor} .rule-list > li:nth-child(1) .remove-rule"),
    )
    .await;
    click(&browser, &format!("{editor} button.save-edit")).await;
    let sent = last_patch(&browser, 1).await;
    let rules = json!([{"when": {"query": {"utm_source": "mail"}}, "long_url": "https://example.com/from-mail"}]);
    assert_eq!(sent["rules"], rules, "{sent}");
    assert!(
        sent.get("variants").is_none(),
        "the link had no variants: {sent}"
    );
    wait_until(
        &browser,
        &format!(
            "document.getElementById('links-status').textContent.includes('Saved') && \
             !document.querySelector(\"{editor}\") && \
             document.querySelector(\"{row} .link-meta\").textContent.includes('1 rule')"
        ),
        "the row after the save",
    )
    .await;
    assert_eq!(stored(&services, &alias).await["rules"], rules);

    // Every row removed: the PATCH says null, and the link has no rules left.
    click(&browser, &format!("{row} button.edit")).await;
    click(
        &browser,
        &format!("{editor} .rule-list > li:nth-child(1) .remove-rule"),
    )
    .await;
    click(&browser, &format!("{editor} button.save-edit")).await;
    let sent = last_patch(&browser, 2).await;
    assert_eq!(sent.get("rules"), Some(&Value::Null), "{sent}");
    wait_until(
        &browser,
        &format!(
            "document.getElementById('links-status').textContent.includes('Saved') && \
             !document.querySelector(\"{editor}\") && \
             !document.querySelector(\"{row} .link-meta\").textContent.includes('rule')"
        ),
        "the row without rules",
    )
    .await;
    let link = stored(&services, &alias).await;
    assert!(link.get("rules").is_none(), "{link}");

    browser.close().await.expect("the session closes");
}

/// Sends `visitors` distinct visitors (no cookie, each its own browser User-Agent) to `short_url`; answers how
/// many the redirect sent to each target.
async fn visit(services: &Services, short_url: &str, visitors: usize) -> BTreeMap<String, u64> {
    let mut sent = BTreeMap::new();
    for n in 0..visitors {
        let agent =
            format!("Mozilla/5.0 (X11; Linux x86_64; rv:{n}.0) Gecko/20100101 Firefox/{n}.0");
        let answer = services
            .http
            .get(short_url)
            .header("user-agent", agent)
            .send()
            .await
            .expect("the redirect answers");
        assert_eq!(answer.status(), 302);
        let target = answer.headers()["location"]
            .to_str()
            .expect("a location")
            .to_owned();
        *sent.entry(target).or_insert(0) += 1;
    }
    sent
}

#[tokio::test]
async fn a_person_sees_hits_per_variant_beside_the_chart() {
    let services = spawn_services(|_| {}).await;
    let alias = unique_alias();
    let (first, second) = ("https://example.com/offer-a", "https://example.com/offer-b");
    let link = services
        .create(json!({
            "long_url": "https://example.com/offer",
            "alias": alias,
            "variants": [{"long_url": first, "weight": 50}, {"long_url": second, "weight": 50}],
        }))
        .await;
    let short_url = link["short_url"].as_str().expect("short_url");
    let sent = visit(&services, short_url, 40).await;
    assert_eq!(
        sent.keys().collect::<Vec<_>>(),
        [first, second],
        "40 visitors reach both variants"
    );
    // The redirect's flush (200 ms in tests) has reached the database before the page asks.
    let stats_path = format!("/v1/urls/{alias}/stats?days=30");
    testkit::eventually(Duration::from_secs(10), "the hits are flushed", || async {
        let (_, stats) = services.api(Method::GET, &stats_path, None).await;
        let counted: u64 = stats["variants"].as_array().map_or(0, |rows| {
            rows.iter().filter_map(|row| row["hits"].as_u64()).sum()
        });
        counted == 40
    })
    .await;

    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    sign_in(&browser, &services).await;
    let row = row(&alias);
    let shown = wait_until(
        &browser,
        &format!(
            "(() => {{ const row = document.querySelector(\"{row}\"); if (!row) return false; \
             const count = (url) => row.querySelector(`.variant-slot table.variant-hits tr[data-name='${{url}}'] td.count`)?.textContent; \
             return row.querySelector('svg.chart') && count('{first}') && [count('{first}'), count('{second}')]; }})()"
        ),
        "the hits per variant beside the chart",
    )
    .await;
    assert_eq!(
        shown,
        json!([sent[first].to_string(), sent[second].to_string()]),
        "{sent:?}"
    );
    let picture = browser.screenshot().await.expect("a screenshot");
    std::fs::write(screenshot_path("web-page-variants.png"), picture).expect("screenshot saved");

    browser.close().await.expect("the session closes");
}
