//! `spawn_app`: a shortener on a free port, with its own database, Redis prefix and ZooKeeper chroot.

use idgen::config::IdgenArgs;
use links::{cache::RedisArgs, db::DatabaseArgs};
use plumbing::shutdown::Shutdown;
use shortener::{config::ServeArgs, startup::Application};
use testkit::TestDb;

pub struct TestApp {
    pub address: String,
    pub admin_address: String,
    pub api_key: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub redis: RedisArgs,
    pub shutdown: Shutdown,
}

pub async fn spawn_app() -> TestApp {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let redis = RedisArgs::new(redis_url, prefix);
    let idgen = IdgenArgs::new(testkit::zookeeper_chroot().await);
    let args = ServeArgs::for_tests(DatabaseArgs::new(&db.url), redis.clone(), idgen);
    let shutdown = Shutdown::new();
    let app = Application::build(args, shutdown.clone())
        .await
        .expect("the shortener starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let admin_address = format!("http://127.0.0.1:{}", app.admin_port());
    tokio::spawn(app.run_until_stopped(shutdown.clone()));

    let store = shortener::startup::connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let (_, api_key) = store.create_api_key("tests").await.expect("an API key");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestApp {
        address,
        admin_address,
        api_key,
        client,
        db,
        redis,
        shutdown,
    }
}

impl TestApp {
    pub async fn create(&self, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/urls", self.address))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .expect("the shortener answers")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned()
}
