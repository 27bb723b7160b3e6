//! `GET /v1/openapi.json`: a valid OpenAPI 3 document listing every call, each of which the service routes.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// The OpenAPI document `app` serves.
async fn document(app: &TestApp) -> Value {
    app.client
        .get(format!("{}/v1/openapi.json", app.address))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn the_document_parses_lists_every_call_and_each_is_routed() {
    let app = spawn_app().await;

    let response = app
        .client
        .get(format!("{}/v1/openapi.json", app.address))
        .send()
        .await
        .expect("answer");

    assert_eq!(response.status(), 200, "no key needed");
    let document: Value = response.json().await.expect("JSON");
    assert!(document["openapi"]
        .as_str()
        .expect("version")
        .starts_with("3."));
    let operations: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("path item")
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("POST", "/v1/urls"),
        ("GET", "/v1/urls"),
        ("POST", "/v1/urls/batch"),
        ("GET", "/v1/urls/export.csv"),
        ("GET", "/v1/urls/{code}"),
        ("DELETE", "/v1/urls/{code}"),
        ("PATCH", "/v1/urls/{code}"),
        ("GET", "/v1/urls/{code}/qr"),
        ("GET", "/v1/urls/{code}/hits"),
        ("GET", "/v1/urls/{code}/stats"),
        ("GET", "/v1/domains"),
        ("GET", "/v1/urls/{code}/events"),
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks"),
        ("DELETE", "/v1/webhooks/{id}"),
        ("POST", "/v1/import"),
    ]
    .into_iter()
    .map(|(method, path)| (method.to_owned(), path.to_owned()))
    .collect();
    assert_eq!(operations, expected);
    assert!(document["components"]["schemas"]["LinkBody"].is_object());
    assert_eq!(
        document["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );

    for (method, path) in &operations {
        let path = path.replace("{code}", "nosuchcode").replace("{id}", "1");
        let response = app
            .client
            .request(
                method.parse().expect("method"),
                format!("{}{path}", app.address),
            )
            .bearer_auth(&app.api_key)
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("answer");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_ne!(
            body["error"]["message"], "no such route",
            "{method} {path} is documented but not routed"
        );
    }
}

/// The document's calls, as (path, methods) with methods upper-case.
fn documented_methods(document: &Value) -> Vec<(String, BTreeSet<String>)> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("path item")
                .keys()
                .map(|method| method.to_uppercase())
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[tokio::test]
async fn a_method_a_documented_path_lacks_is_a_405_whose_allow_lists_the_documented_ones() {
    let app = spawn_app().await;
    let document = document(&app).await;

    for (path, methods) in documented_methods(&document) {
        let url = format!(
            "{}{}",
            app.address,
            path.replace("{code}", "abc123").replace("{id}", "1")
        );
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if methods.contains(method) {
                continue;
            }
            let response = app
                .client
                .request(method.parse().expect("method"), &url)
                .bearer_auth(&app.api_key)
                .send()
                .await
                .expect("answer");

            assert_eq!(response.status(), 405, "{method} {path}");
            let allow: BTreeSet<String> = response.headers()["allow"]
                .to_str()
                .expect("ASCII")
                .split(',')
                .map(|method| method.trim().to_owned())
                .collect();
            assert_eq!(allow, methods, "Allow of {method} {path}");
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(
                body["error"]["code"], "method_not_allowed",
                "{method} {path}"
            );
        }
    }
}

/// The response an operation's `response` refers to in `components/responses`: the answers every call shares
/// (401, 429, 503) are described once there.
fn shared_response<'a>(document: &'a Value, response: &Value) -> &'a Value {
    let reference = response["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("a reference to a shared response: {response}"));
    let name = reference
        .strip_prefix("#/components/responses/")
        .unwrap_or_else(|| panic!("a response of the components: {reference}"));
    &document["components"]["responses"][name]
}

/// The schema of query parameter `name` of `GET path`.
fn query_schema<'a>(document: &'a Value, path: &str, name: &str) -> &'a Value {
    document["paths"][path]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|parameter| parameter["name"] == name)
        .map(|parameter| &parameter["schema"])
        .unwrap_or_else(|| panic!("GET {path} documents {name}"))
}

#[tokio::test]
async fn the_document_states_the_bounds_the_server_enforces_and_every_status_with_the_error_body() {
    let app = spawn_app().await;
    let document = document(&app).await;

    let bounds = |path, name| {
        let schema = query_schema(&document, path, name);
        (schema["minimum"].as_u64(), schema["maximum"].as_u64())
    };
    assert_eq!(bounds("/v1/urls", "limit"), (Some(1), Some(100)));
    assert_eq!(bounds("/v1/urls/{code}/hits", "days"), (Some(1), Some(365)));
    assert_eq!(
        bounds("/v1/urls/{code}/qr", "size"),
        (
            Some(shortener::routes::qr::MIN_SIZE.into()),
            Some(shortener::routes::qr::MAX_SIZE.into())
        )
    );
    let schemas = &document["components"]["schemas"];
    let batch = &schemas["BatchRequest"]["properties"]["items"];
    assert_eq!(batch["minItems"], 1);
    assert_eq!(batch["maxItems"], shortener::routes::urls::MAX_BATCH);
    let create = &schemas["CreateRequest"]["properties"];
    assert_eq!(
        create["long_url"]["maxLength"],
        links::validate::MAX_URL_LEN
    );
    assert_eq!(create["alias"]["pattern"], "^[A-Za-z0-9_-]{3,64}$");
    assert!(create["expires_at"]["description"]
        .as_str()
        .is_some_and(|text| text.contains("future")));
    assert_eq!(
        create["redirect"]["enum"],
        serde_json::json!([301, 302, 307, 308, null])
    );

    let webhook = &schemas["CreateWebhook"]["properties"];
    assert_eq!(webhook["url"]["maxLength"], 2_048);
    assert_eq!(
        (
            &webhook["events"]["minItems"],
            &webhook["events"]["maxItems"]
        ),
        (&json!(1), &json!(4))
    );
    assert_eq!(
        schemas["EventSchema"]["enum"],
        json!(["click", "link.created", "link.updated", "link.deleted"])
    );

    for (path, methods) in documented_methods(&document) {
        for method in methods {
            let responses = &document["paths"][&path][method.to_lowercase()]["responses"];
            for status in ["401", "429", "503"] {
                let response = shared_response(&document, &responses[status]);
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} documents {status} with the error body"
                );
            }
        }
    }
    let create = &document["paths"]["/v1/urls"]["post"]["responses"];
    let batch = &document["paths"]["/v1/urls/batch"]["post"]["responses"];
    for status in ["400", "413", "415", "422"] {
        assert!(
            create[status].is_object(),
            "POST /v1/urls documents {status}"
        );
        assert!(
            batch[status].is_object(),
            "POST /v1/urls/batch documents {status}"
        );
    }
}

#[tokio::test]
async fn the_idempotency_key_header_is_documented_on_both_create_calls() {
    let app = spawn_app().await;

    let document = document(&app).await;

    for path in ["/v1/urls", "/v1/urls/batch"] {
        let parameters = document["paths"][path]["post"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has parameters"));
        let header = parameters
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{path} documents Idempotency-Key"));
        assert_eq!(header["in"], "header");
        assert_eq!(header["required"], false);
        assert_eq!(header["schema"]["maxLength"], 255);
    }
}
