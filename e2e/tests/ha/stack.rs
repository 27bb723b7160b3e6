//! The shortener, the redirect and idgen in this process, on the ha topology's URLs (`DATABASE_URL` naming the
//! three PostgreSQL nodes, one replica URL a node, `ZOOKEEPER_CONNECT` naming the ensemble), as the browser tests
//! start theirs: the test sees what their clients see, and nothing is restarted during a fault.

use std::time::Duration;

use database::DatabaseArgs;
use idgen::{config::IdgenArgs, service::ServiceArgs};
use links::cache::RedisArgs;
use plumbing::shutdown::Shutdown;
use redirect::config::RedirectArgs;
use testkit::TestDb;

/// Addresses of the three services, an API key, and the test's database.
pub struct Stack {
    pub shortener: String,
    pub shortener_admin: String,
    pub redirect: String,
    pub redirect_admin: String,
    pub idgen: String,
    pub api_key: String,
    pub http: reqwest::Client,
    pub db: TestDb,
    shutdown: Shutdown,
}

/// Starts the three services; `cleanup` also runs the shortener's expiry cleanup (its election in ZooKeeper).
pub async fn spawn(cleanup: bool) -> Stack {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let redis = RedisArgs::new(redis_url, prefix);
    let shutdown = Shutdown::new();

    let args = RedirectArgs::for_tests(
        DatabaseArgs::new(&db.url),
        db.replica_urls.clone(),
        redis.clone(),
    );
    let redirect = redirect::startup::build(args)
        .await
        .expect("the redirect starts");
    let (redirect_port, redirect_admin_port) = (redirect.port(), redirect.admin_port());
    tokio::spawn(redirect.run_until_stopped(shutdown.clone()));

    let chroot = testkit::zookeeper_chroot().await;
    let mut args = shortener::config::ServeArgs::for_tests(
        DatabaseArgs::new(&db.url),
        redis,
        IdgenArgs::new(chroot.clone()),
    );
    args.cleanup.enabled = cleanup;
    let shortener = shortener::startup::build(args)
        .await
        .expect("the shortener starts");
    let (shortener_port, shortener_admin_port) = (shortener.port(), shortener.admin_port());
    tokio::spawn(shortener.run_until_stopped(shutdown.clone()));

    let idgen = idgen::service::build(ServiceArgs {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        http_workers: 1,
        drain: plumbing::drain::DrainArgs::immediate(),
        idgen: IdgenArgs::new(chroot),
    })
    .await
    .expect("idgen starts");
    let idgen_port = idgen.port();
    tokio::spawn(idgen.run_until_stopped(shutdown.clone()));

    let (api_key, http) = api_key_and_client(&db).await;
    Stack {
        shortener: format!("http://127.0.0.1:{shortener_port}"),
        shortener_admin: format!("http://127.0.0.1:{shortener_admin_port}"),
        redirect: format!("http://127.0.0.1:{redirect_port}"),
        redirect_admin: format!("http://127.0.0.1:{redirect_admin_port}"),
        idgen: format!("http://127.0.0.1:{idgen_port}"),
        api_key,
        http,
        db,
        shutdown,
    }
}

/// An API key in `db` and an HTTP client that reports redirects instead of following them: what every ha test
/// talks to the services with.
pub async fn api_key_and_client(db: &TestDb) -> (String, reqwest::Client) {
    let store = shortener::stores::connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let (_, api_key) = store.create_api_key("ha").await.expect("an API key");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    (api_key, http)
}

impl Stack {
    /// Creates a link; its code.
    pub async fn create(&self, long_url: &str) -> String {
        let answer = self
            .http
            .post(format!("{}/v1/urls", self.shortener))
            .bearer_auth(&self.api_key)
            .json(&serde_json::json!({ "long_url": long_url }))
            .send()
            .await
            .expect("the shortener answers");
        assert_eq!(answer.status(), 201, "create {long_url}");
        let body: serde_json::Value = answer.json().await.expect("JSON");
        body["code"].as_str().expect("a code").to_owned()
    }

    /// Creates `count` links before a fault, for the trickle's redirects; their codes.
    pub async fn store_links(&self, count: usize) -> Vec<String> {
        let mut codes = Vec::with_capacity(count);
        for i in 0..count {
            codes.push(
                self.create(&format!("https://example.com/stored/{i}"))
                    .await,
            );
        }
        codes
    }

    /// `/readyz` of an admin port, as JSON.
    pub async fn readyz(&self, admin: &str) -> serde_json::Value {
        self.http
            .get(format!("{admin}/readyz"))
            .send()
            .await
            .expect("the admin port answers")
            .json()
            .await
            .expect("JSON")
    }

    /// How many of `codes` the primary has.
    pub async fn stored(&self, codes: &[String]) -> i64 {
        let (client, connection) = tokio_postgres::connect(&self.db.url, tokio_postgres::NoTls)
            .await
            .expect("the primary");
        tokio::spawn(connection);
        client
            .query_one("SELECT count(*) FROM links WHERE code = ANY($1)", &[&codes])
            .await
            .expect("count")
            .get(0)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}
