//! `GET /v1/openapi.json`: a valid OpenAPI 3 document listing every call, each of which the service routes.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

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
        ("GET", "/v1/urls/{code}"),
        ("DELETE", "/v1/urls/{code}"),
        ("GET", "/v1/urls/{code}/qr"),
        ("GET", "/v1/urls/{code}/hits"),
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
        let path = path.replace("{code}", "nosuchcode");
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

#[tokio::test]
async fn the_idempotency_key_header_is_documented_on_both_create_calls() {
    let app = spawn_app().await;

    let document: Value = app
        .client
        .get(format!("{}/v1/openapi.json", app.address))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");

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
