//! Domains: links created on a registered domain (its short URL on that host), a code unique per domain, the
//! calls that name a link by `?domain=`, `GET /v1/domains`, and the operator's remove refused while links use
//! a domain.

use links::domain::{Domain, Removal};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{error_code, spawn_app, TestApp};

fn domain(host: &str) -> Domain {
    Domain {
        host: host.into(),
        is_default: false,
        root_url: Some("https://brand.example/".into()),
        not_found_url: None,
        allow_indexing: false,
    }
}

async fn created(app: &TestApp, body: Value) -> Value {
    let response = app.create(body).await;
    assert_eq!(response.status(), 201);
    response.json().await.expect("json")
}

#[tokio::test]
async fn one_alias_on_two_domains_is_two_links_each_read_by_its_domain() {
    let app = spawn_app().await;
    app.store
        .put_domain(&domain("go.brand.example"))
        .await
        .expect("a domain");

    let plain = created(
        &app,
        json!({"long_url": "https://example.com/default", "alias": "sale"}),
    )
    .await;
    assert_eq!(plain["domain"], "sho.rt.test");
    assert_eq!(plain["short_url"], "http://sho.rt.test/sale");
    // Added a moment ago: the shortener reloads its domains when a create names one it lacks.
    let branded = created(
        &app,
        json!({"long_url": "https://example.com/brand", "alias": "sale", "domain": "GO.Brand.Example."}),
    )
    .await;
    assert_eq!(branded["code"], "sale");
    assert_eq!(branded["domain"], "go.brand.example");
    assert_eq!(branded["short_url"], "http://go.brand.example/sale");

    let taken = app
        .create(json!({"long_url": "https://example.com/again", "alias": "sale", "domain": "go.brand.example"}))
        .await;
    assert_eq!(taken.status(), 409, "unique per domain");

    let read = |path: &'static str| app.call(Method::GET, path, &app.api_key);
    let on_default: Value = read("/v1/urls/sale").await.json().await.expect("json");
    assert_eq!(on_default["long_url"], "https://example.com/default");
    let on_brand: Value = read("/v1/urls/sale?domain=go.brand.example")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(on_brand["long_url"], "https://example.com/brand");
    assert_eq!(
        read("/v1/urls/sale?domain=nowhere.example").await.status(),
        404
    );

    let patched = app
        .client
        .patch(format!(
            "{}/v1/urls/sale?domain=go.brand.example",
            app.address
        ))
        .bearer_auth(&app.api_key)
        .json(&json!({"long_url": "https://example.com/brand-2"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    assert_eq!(
        app.read("sale").await["long_url"],
        "https://example.com/default"
    );

    let deleted = app
        .call(
            Method::DELETE,
            "/v1/urls/sale?domain=go.brand.example",
            &app.api_key,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        app.read("sale").await["long_url"],
        "https://example.com/default",
        "the other domain's link stays"
    );
}

#[tokio::test]
async fn an_unregistered_domain_is_refused_and_the_registered_ones_are_listed() {
    let app = spawn_app().await;
    app.store
        .put_domain(&domain("go.brand.example"))
        .await
        .expect("a domain");
    let refused = app
        .create(json!({"long_url": "https://example.com/", "domain": "evil.example"}))
        .await;
    assert_eq!(refused.status(), 422);
    assert_eq!(error_code(refused).await, "unknown_domain");
    let refused = app
        .create(json!({"long_url": "https://example.com/", "domain": "not a host"}))
        .await;
    assert_eq!(error_code(refused).await, "unknown_domain");

    // Generated codes on a domain are compact codes like any other.
    let generated = created(
        &app,
        json!({"long_url": "https://example.com/", "domain": "go.brand.example"}),
    )
    .await;
    assert_eq!(generated["code"].as_str().map(str::len), Some(7));

    let listed: Value = app
        .call(Method::GET, "/v1/domains", &app.api_key)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed,
        json!({"items": [
            {"host": "sho.rt.test", "default": true, "root_url": null, "not_found_url": null, "allow_indexing": false},
            {"host": "go.brand.example", "default": false, "root_url": "https://brand.example/",
             "not_found_url": null, "allow_indexing": false},
        ]})
    );
    assert_eq!(
        app.call(Method::GET, "/v1/domains", "wrong").await.status(),
        401
    );
}

#[tokio::test]
async fn a_domain_is_removed_only_once_no_live_link_uses_it_and_never_the_default() {
    let app = spawn_app().await;
    app.store
        .put_domain(&domain("go.brand.example"))
        .await
        .expect("a domain");
    let link = created(
        &app,
        json!({"long_url": "https://example.com/", "alias": "keep", "domain": "go.brand.example"}),
    )
    .await;
    assert_eq!(
        app.store
            .remove_domain("go.brand.example")
            .await
            .expect("remove"),
        Removal::InUse(1)
    );
    assert_eq!(
        app.store
            .remove_domain("sho.rt.test")
            .await
            .expect("remove"),
        Removal::IsDefault
    );
    assert_eq!(
        app.store
            .remove_domain("other.example")
            .await
            .expect("remove"),
        Removal::NotFound
    );
    let deleted = app
        .call(
            Method::DELETE,
            &format!(
                "/v1/urls/{}?domain=go.brand.example",
                link["code"].as_str().expect("code")
            ),
            &app.api_key,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    assert_eq!(
        app.store
            .remove_domain("go.brand.example")
            .await
            .expect("remove"),
        Removal::Removed
    );
    assert_eq!(app.store.list_domains().await.expect("list").len(), 1);
}

#[tokio::test]
async fn reuse_never_hands_out_a_link_of_another_domain() {
    let app = spawn_app().await;
    app.store
        .put_domain(&domain("go.brand.example"))
        .await
        .expect("a domain");
    let branded = created(
        &app,
        json!({"long_url": "https://example.com/same", "domain": "go.brand.example"}),
    )
    .await;
    let reused = app
        .create(json!({"long_url": "https://example.com/same", "reuse": true}))
        .await;
    assert_eq!(reused.status(), 201, "a new link on the default domain");
    let body: Value = reused.json().await.expect("json");
    assert_ne!(body["short_url"], branded["short_url"]);
    assert_eq!(body["domain"], "sho.rt.test");
}
