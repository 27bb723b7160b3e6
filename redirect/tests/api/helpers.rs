//! `spawn_pair`: a shortener and a redirect sharing one test database (read through its replica), one Redis
//! prefix and one ZooKeeper chroot.

use idgen::config::IdgenArgs;
use links::{cache::RedisArgs, db::DatabaseArgs};
use plumbing::shutdown::Shutdown;
use redirect::config::RedirectArgs;
use serde_json::json;
use testkit::TestDb;

pub struct TestPair {
    pub shortener: String,
    pub redirect: String,
    pub api_key: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub redis: RedisArgs,
    shutdown: Shutdown,
}

pub async fn spawn_pair() -> TestPair {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let redis = RedisArgs::new(redis_url, prefix);
    let shutdown = Shutdown::new();

    let idgen = IdgenArgs::new(testkit::zookeeper_chroot().await);
    let args =
        shortener::config::ServeArgs::for_tests(DatabaseArgs::new(&db.url), redis.clone(), idgen);
    let shortener = shortener::startup::Application::build(args, shutdown.clone())
        .await
        .expect("the shortener starts");
    let shortener_address = format!("http://127.0.0.1:{}", shortener.port());
    tokio::spawn(shortener.run_until_stopped(shutdown.clone()));

    let args = RedirectArgs::for_tests(
        DatabaseArgs::new(&db.url),
        vec![db.replica_url.clone()],
        redis.clone(),
    );
    let redirect = redirect::startup::Application::build(args)
        .await
        .expect("the redirect starts");
    let redirect_address = format!("http://127.0.0.1:{}", redirect.port());
    tokio::spawn(redirect.run_until_stopped(shutdown.clone()));

    let store = shortener::startup::connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let (_, api_key) = store.create_api_key("tests").await.expect("an API key");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestPair {
        shortener: shortener_address,
        redirect: redirect_address,
        api_key,
        client,
        db,
        redis,
        shutdown,
    }
}

impl TestPair {
    /// Shortens `body` and returns the code.
    pub async fn shorten(&self, body: serde_json::Value) -> String {
        let response = self
            .client
            .post(format!("{}/v1/urls", self.shortener))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .expect("the shortener answers");
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.expect("json");
        body["code"].as_str().expect("code").to_owned()
    }

    pub async fn follow(&self, code: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/{code}", self.redirect))
            .send()
            .await
            .expect("the redirect answers")
    }

    /// Starts one more redirect with `args`, stopped with the pair; returns its address.
    pub async fn spawn_redirect(&self, args: RedirectArgs) -> String {
        let app = redirect::startup::Application::build(args)
            .await
            .expect("the redirect starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped(self.shutdown.clone()));
        address
    }

    pub async fn cache(&self) -> links::cache::RedisCache {
        links::cache::RedisCache::connect(&self.redis.options())
            .await
            .expect("redis")
    }

    pub async fn sql(&self, statement: &str, code: &str) {
        let (client, connection) = tokio_postgres::connect(&self.db.url, tokio_postgres::NoTls)
            .await
            .expect("db");
        tokio::spawn(connection);
        client
            .execute(statement, &[&code])
            .await
            .expect("statement");
        self.db.wait_for_replica_catch_up().await;
    }
}

impl Drop for TestPair {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub fn link(url: &str) -> serde_json::Value {
    json!({ "long_url": url })
}

/// A local port nothing listens on: the address of a dependency that is down.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
