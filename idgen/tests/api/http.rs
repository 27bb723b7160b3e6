//! The HTTP service (`idgen::service`): IDs and their decoding, 422 for a bad count or ID, and an admin port
//! that reports the lease.

use idgen::{
    config::IdgenArgs,
    service::{build, ServiceArgs},
};
use plumbing::shutdown::Shutdown;
use serde_json::Value;

use crate::helpers::args;

/// A running service, stopped by triggering `shutdown`.
pub struct TestService {
    pub api: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub shutdown: Shutdown,
}

/// The service on a chroot of its own, on free ports.
pub async fn spawn_service() -> TestService {
    spawn_service_with(args(&testkit::zookeeper_chroot().await)).await
}

/// The service with these settings, on free ports.
pub async fn spawn_service_with(idgen: IdgenArgs) -> TestService {
    let shutdown = Shutdown::new();
    let service_args = ServiceArgs {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        http_workers: 1,
        drain: plumbing::drain::DrainArgs::immediate(),
        idgen,
    };
    let app = build(service_args).await.expect("the service starts");
    let (api, admin) = (
        format!("http://127.0.0.1:{}", app.port()),
        format!("http://127.0.0.1:{}", app.admin_port()),
    );
    tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client");
    TestService {
        api,
        admin,
        client,
        shutdown,
    }
}

impl TestService {
    async fn get(&self, url: String) -> (u16, Value) {
        let response = self.client.get(url).send().await.expect("an answer");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn ids_taken_over_http_decode_back_to_their_parts() {
    let service = spawn_service().await;

    let (status, body) = service.get(format!("{}/v1/ids?count=5", service.api)).await;

    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|id| id.as_str().expect("IDs are strings"))
        .collect();
    assert_eq!(ids.len(), 5);
    let layout = idgen::Layout::default();
    for id in &ids {
        let (status, decoded) = service.get(format!("{}/v1/ids/{id}", service.api)).await;
        assert_eq!(status, 200, "{decoded}");
        let parts = layout.decode(id.parse().expect("decimal")).expect("ours");
        assert_eq!(decoded["id"], *id);
        assert_eq!(decoded["worker"], parts.worker);
        assert_eq!(decoded["sequence"], parts.sequence);
        let timestamp =
            chrono::DateTime::parse_from_rfc3339(decoded["timestamp"].as_str().expect("RFC 3339"))
                .expect("RFC 3339");
        assert_eq!(
            u64::try_from(timestamp.timestamp_millis()).ok(),
            Some(parts.unix_ms)
        );
    }
    service.shutdown.trigger();
}

#[tokio::test]
async fn a_bad_count_or_id_is_a_422_with_the_contract_error() {
    let service = spawn_service().await;

    for (query, code) in [
        ("/v1/ids?count=0", "invalid_count"),
        ("/v1/ids?count=10001", "invalid_count"),
        ("/v1/ids?count=many", "invalid_count"),
        ("/v1/ids/abc", "invalid_id"),
        ("/v1/ids/9223372036854775808", "invalid_id"),
    ] {
        let (status, body) = service.get(format!("{}{query}", service.api)).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["error"]["code"], code, "{query}: {body}");
    }
    service.shutdown.trigger();
}

#[tokio::test]
async fn another_method_on_a_known_path_is_a_405_naming_the_allowed_ones() {
    let service = spawn_service().await;

    for path in ["/v1/ids", "/v1/ids/123"] {
        let response = service
            .client
            .post(format!("{}{path}", service.api))
            .send()
            .await
            .expect("an answer");

        assert_eq!(response.status(), 405, "POST {path}");
        assert_eq!(response.headers()["allow"], "GET", "POST {path}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], "method_not_allowed", "POST {path}");
    }
    let (status, _) = service.get(format!("{}/v1/nothing", service.api)).await;
    assert_eq!(status, 404, "an unknown path stays a 404");
    service.shutdown.trigger();
}

#[tokio::test]
async fn the_admin_port_is_ready_and_reports_the_lease_while_one_is_held() {
    let service = spawn_service().await;
    let (status, _) = service.get(format!("{}/v1/ids?count=3", service.api)).await;
    assert_eq!(status, 200);

    let ready = service
        .client
        .get(format!("{}/readyz", service.admin))
        .send()
        .await
        .expect("readyz");
    let metrics = service
        .client
        .get(format!("{}/metrics", service.admin))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");

    assert_eq!(ready.status().as_u16(), 200);
    for series in [
        "idgen_lease_held 1",
        "idgen_worker_id 0",
        "idgen_ids_issued_total 3",
        "idgen_clock_backwards_total 0",
        "idgen_lease_losses_total 0",
        r#"idgen_worker_ids_skipped_total{reason="mark_ahead"} 0"#,
        "http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(series), "no {series} in\n{metrics}");
    }
    service.shutdown.trigger();
}

#[tokio::test]
async fn an_admin_address_that_cannot_be_bound_fails_before_a_worker_id_is_leased() {
    let chroot = testkit::zookeeper_chroot().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let service_args = ServiceArgs {
        listen: "127.0.0.1:0".into(),
        admin_listen: taken.local_addr().expect("address").to_string(),
        http_workers: 1,
        drain: plumbing::drain::DrainArgs::immediate(),
        idgen: args(&chroot),
    };

    let error = build(service_args).await.err().expect("the build fails");

    assert!(format!("{error:#}").contains("--admin-listen"), "{error:#}");
    let observer = crate::helpers::observer(&chroot).await;
    let workers = observer
        .list_children(&format!("{}/workers", crate::helpers::ROOT))
        .await
        .unwrap_or_default();
    assert!(workers.is_empty(), "a worker ID was leased: {workers:?}");
}
