//! `spawn_app`: a shortener on a free port, with its own database, Redis prefix and ZooKeeper chroot, and the
//! calls tests make on it.

use database::DatabaseArgs;
use idgen::config::IdgenArgs;
use links::{cache::RedisArgs, store::Store};
use plumbing::{clock::ManualClock, shutdown::Shutdown};
use serde_json::Value;
use shortener::{config::ServeArgs, startup};
use testkit::TestDb;

pub struct TestApp {
    pub address: String,
    pub admin_address: String,
    pub api_key: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub redis: RedisArgs,
    pub store: Store,
    pub shutdown: Shutdown,
    /// The time the shortener reads ("today", whether an expiry lies ahead): a test moves it instead of
    /// waiting for the wall clock.
    pub clock: ManualClock,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A shortener whose settings `configure` may change first.
pub async fn spawn_app_with(configure: impl FnOnce(&mut ServeArgs)) -> TestApp {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let redis = RedisArgs::new(redis_url, prefix);
    spawn_app_on(db, redis, configure).await
}

/// A shortener on a given database and Redis (tests that route them through a proxy or a closed port).
pub async fn spawn_app_on(
    db: TestDb,
    redis: RedisArgs,
    configure: impl FnOnce(&mut ServeArgs),
) -> TestApp {
    let store = shortener::stores::connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let idgen = IdgenArgs::new(testkit::zookeeper_chroot().await);
    let mut args = ServeArgs::for_tests(DatabaseArgs::new(&db.url), redis.clone(), idgen);
    let clock = ManualClock::at(chrono::Utc::now());
    args.clock = clock.shared();
    configure(&mut args);
    let shutdown = Shutdown::new();
    let app = startup::build(args).await.expect("the shortener starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let admin_address = format!("http://127.0.0.1:{}", app.admin_port());
    tokio::spawn(app.run_until_stopped(shutdown.clone()));

    let (_, api_key) = store.create_api_key("tests").await.expect("an API key");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client");
    TestApp {
        address,
        admin_address,
        api_key,
        client,
        db,
        redis,
        store,
        shutdown,
        clock,
    }
}

impl TestApp {
    pub async fn create(&self, body: Value) -> reqwest::Response {
        self.create_as(&self.api_key, body).await
    }

    pub async fn create_as(&self, key: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/urls", self.address))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("the shortener answers")
    }

    /// Creates a link that must succeed; returns its code.
    pub async fn shorten(&self, body: Value) -> String {
        let response = self.create(body).await;
        assert_eq!(response.status(), 201, "create failed");
        let body: Value = response.json().await.expect("json");
        body["code"].as_str().expect("code").to_owned()
    }

    pub async fn batch(&self, items: Vec<Value>) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/urls/batch", self.address))
            .bearer_auth(&self.api_key)
            .json(&serde_json::json!({ "items": items }))
            .send()
            .await
            .expect("the shortener answers")
    }

    /// `POST` of a raw JSON body to an API path, signed with `key` if given, with an `Idempotency-Key` if given.
    pub async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        idempotency_key: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(idempotency_key) = idempotency_key {
            request = request.header("Idempotency-Key", idempotency_key);
        }
        request.send().await.expect("the shortener answers")
    }

    /// A connection of the test's own, to hold locks that hold the shortener up.
    pub async fn locker(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.db.url, tokio_postgres::NoTls)
            .await
            .expect("db");
        tokio::spawn(connection);
        client
    }

    /// Statements of the shortener waiting for a lock right now.
    pub async fn lock_waiters(&self) -> i64 {
        self.locker()
            .await
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND application_name = 'snowlink-shortener'",
                &[],
            )
            .await
            .expect("pg_stat_activity")
            .get(0)
    }

    /// How many links point at `long_url`.
    pub async fn links_to(&self, long_url: &str) -> i64 {
        self.locker()
            .await
            .query_one(
                "SELECT count(*) FROM links WHERE long_url = $1",
                &[&long_url],
            )
            .await
            .expect("count")
            .get(0)
    }

    /// `GET` or `DELETE` on an API path, signed with `key`.
    pub async fn call(&self, method: reqwest::Method, path: &str, key: &str) -> reqwest::Response {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(key)
            .send()
            .await
            .expect("the shortener answers")
    }

    /// `PATCH /v1/urls/{code}` with `body`, signed with `key`.
    pub async fn patch_as(&self, key: &str, code: &str, body: Value) -> reqwest::Response {
        self.client
            .patch(format!("{}/v1/urls/{code}", self.address))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("the shortener answers")
    }

    /// `PATCH /v1/urls/{code}` with `body`, signed with the test's key.
    pub async fn patch(&self, code: &str, body: Value) -> reqwest::Response {
        self.patch_as(&self.api_key, code, body).await
    }

    /// `GET /v1/urls/{code}` as the test's key, which must answer 200: the link's body.
    pub async fn read(&self, code: &str) -> Value {
        let response = self
            .call(
                reqwest::Method::GET,
                &format!("/v1/urls/{code}"),
                &self.api_key,
            )
            .await;
        assert_eq!(response.status(), 200, "reading {code}");
        response.json().await.expect("json")
    }

    /// A second API key on the same service.
    pub async fn other_key(&self) -> String {
        self.store
            .create_api_key("someone else")
            .await
            .expect("an API key")
            .1
    }

    pub async fn sql(
        &self,
        statement: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> u64 {
        let (client, connection) = tokio_postgres::connect(&self.db.url, tokio_postgres::NoTls)
            .await
            .expect("db");
        tokio::spawn(connection);
        client.execute(statement, params).await.expect("statement")
    }

    /// The sum of the samples of `series` on the admin port (see [`testkit::metric`]).
    pub async fn metric(&self, series: &str) -> f64 {
        testkit::metric(&self.admin_address, series).await
    }

    pub async fn cache(&self) -> links::cache::RedisCache {
        links::cache::RedisCache::connect(&self.redis.options())
            .await
            .expect("redis")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("a JSON error body");
    body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned()
}

/// The code and message of a 422 answer (asserted to be one).
pub async fn unprocessable(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("a JSON error body");
    (
        body["error"]["code"].as_str().expect("code").to_owned(),
        body["error"]["message"]
            .as_str()
            .expect("message")
            .to_owned(),
    )
}

/// A local port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    port
}
