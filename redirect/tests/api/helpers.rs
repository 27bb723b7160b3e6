//! `spawn_pair`: a shortener and a redirect sharing one test database (read through its replica), one Redis
//! prefix, one ZooKeeper chroot and one manual clock.

use chrono::Utc;
use database::DatabaseArgs;
use idgen::config::IdgenArgs;
use links::cache::RedisArgs;
use plumbing::{clock::ManualClock, shutdown::Shutdown};
use redirect::config::RedirectArgs;
use serde_json::json;
use testkit::TestDb;

pub struct TestPair {
    pub shortener: String,
    pub redirect: String,
    /// The redirect's admin address (/metrics, /readyz).
    pub redirect_admin: String,
    pub api_key: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub redis: RedisArgs,
    /// The time both services read: a test moves it instead of sleeping.
    pub clock: ManualClock,
    shutdown: Shutdown,
}

/// The `User-Agent` of the tests' client: a desktop browser's.
pub const BROWSER: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

pub async fn spawn_pair() -> TestPair {
    spawn_pair_with(|_| {}).await
}

/// A pair whose shortener's settings `configure` may change first.
pub async fn spawn_pair_with(
    configure: impl FnOnce(&mut shortener::config::ServeArgs),
) -> TestPair {
    let db = TestDb::create().await;
    let (redis_url, prefix) = testkit::redis();
    let redis = RedisArgs::new(redis_url, prefix);
    let shutdown = Shutdown::new();
    let clock = ManualClock::at(Utc::now());

    let idgen = IdgenArgs::new(testkit::zookeeper_chroot().await);
    let mut args =
        shortener::config::ServeArgs::for_tests(DatabaseArgs::new(&db.url), redis.clone(), idgen);
    args.clock = clock.shared();
    configure(&mut args);
    let shortener = shortener::startup::build(args)
        .await
        .expect("the shortener starts");
    let shortener_address = format!("http://127.0.0.1:{}", shortener.port());
    tokio::spawn(shortener.run_until_stopped(shutdown.clone()));

    let mut args = RedirectArgs::for_tests(
        DatabaseArgs::new(&db.url),
        vec![db.replica_url.clone()],
        redis.clone(),
    );
    args.clock = clock.shared();
    let redirect = redirect::startup::build(args)
        .await
        .expect("the redirect starts");
    let redirect_address = format!("http://127.0.0.1:{}", redirect.port());
    let redirect_admin = format!("http://127.0.0.1:{}", redirect.admin_port());
    tokio::spawn(redirect.run_until_stopped(shutdown.clone()));

    let store = shortener::stores::connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let (_, api_key) = store.create_api_key("tests").await.expect("an API key");
    // A person's browser, as far as the redirect can tell: its hits count as people's, not bots'.
    let client = reqwest::Client::builder()
        .user_agent(BROWSER)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestPair {
        shortener: shortener_address,
        redirect: redirect_address,
        redirect_admin,
        api_key,
        client,
        db,
        redis,
        clock,
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
        self.spawn_redirect_until(args, self.shutdown.clone())
            .await
            .address
    }

    /// Starts one more redirect with `args`, stopped with the pair.
    pub async fn spawn_redirect_app(&self, args: RedirectArgs) -> Redirect {
        self.spawn_redirect_until(args, self.shutdown.clone()).await
    }

    /// Starts one more redirect with `args`, stopped by `shutdown`.
    pub async fn spawn_redirect_until(&self, args: RedirectArgs, shutdown: Shutdown) -> Redirect {
        let app = redirect::startup::build(args)
            .await
            .expect("the redirect starts");
        Redirect {
            address: format!("http://127.0.0.1:{}", app.port()),
            admin: format!("http://127.0.0.1:{}", app.admin_port()),
            stopped: tokio::spawn(app.run_until_stopped(shutdown)),
        }
    }

    /// Settings of a redirect on the pair's database (through its replica), Redis prefix and clock.
    pub fn redirect_args(&self) -> RedirectArgs {
        let mut args = RedirectArgs::for_tests(
            DatabaseArgs::new(&self.db.url),
            vec![self.db.replica_url.clone()],
            self.redis.clone(),
        );
        args.clock = self.clock.shared();
        args
    }

    /// Starts one more redirect whose one replica is a migrated but empty database: a replica that has not
    /// replayed anything yet. The database is returned so that it lives as long as the test.
    pub async fn spawn_redirect_on_an_empty_replica(
        &self,
        configure: impl FnOnce(&mut RedirectArgs),
    ) -> (TestDb, Redirect) {
        let lagging = TestDb::create().await;
        shortener::stores::connect_and_migrate(&DatabaseArgs::new(&lagging.url))
            .await
            .expect("migrated");
        let mut args = self.redirect_args();
        args.replica_urls = vec![lagging.url.clone().into()];
        configure(&mut args);
        let redirect = self.spawn_redirect_app(args).await;
        (lagging, redirect)
    }

    /// `GET {base}/{code}` on any redirect.
    pub async fn follow_on(&self, base: &str, code: &str) -> reqwest::Response {
        self.client
            .get(format!("{base}/{code}"))
            .send()
            .await
            .expect("the redirect answers")
    }

    /// The link's ID, read on the primary.
    pub async fn link_id(&self, code: &str) -> i64 {
        self.primary()
            .await
            .query_one("SELECT id FROM links WHERE code = $1", &[&code])
            .await
            .expect("the link exists")
            .get(0)
    }

    /// A plain connection to the primary.
    pub async fn primary(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.db.url, tokio_postgres::NoTls)
            .await
            .expect("db");
        tokio::spawn(connection);
        client
    }

    pub async fn cache(&self) -> links::cache::RedisCache {
        links::cache::RedisCache::connect(&self.redis.options())
            .await
            .expect("redis")
    }

    pub async fn sql(&self, statement: &str, code: &str) {
        self.primary()
            .await
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

/// A redirect started by a test.
pub struct Redirect {
    pub address: String,
    pub admin: String,
    pub stopped: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Redirect {
    /// Triggers `shutdown` (the one it was started with) and waits until it has stopped, shutdown work included.
    pub async fn stop(self, shutdown: &Shutdown) {
        shutdown.trigger();
        self.stopped
            .await
            .expect("joined")
            .expect("stopped cleanly");
    }
}

pub use testkit::metric;

/// Answers by tier, as counted by a redirect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tiers {
    pub local: f64,
    pub redis: f64,
    pub database: f64,
    pub negative: f64,
}

pub async fn tiers(admin: &str) -> Tiers {
    let tier = |name: &'static str| async move {
        metric(
            admin,
            &format!("redirect_tier_answers_total{{tier=\"{name}\"}}"),
        )
        .await
    };
    Tiers {
        local: tier("local").await,
        redis: tier("redis").await,
        database: tier("database").await,
        negative: tier("negative").await,
    }
}

/// Database lookups a redirect made (replicas and primary).
pub async fn database_lookups(admin: &str) -> f64 {
    metric(
        admin,
        "redirect_backend_duration_seconds_count{backend=\"replica",
    )
    .await
        + metric(
            admin,
            "redirect_backend_duration_seconds_count{backend=\"primary\"}",
        )
        .await
}

/// Waits until a flush has marked link `code` exhausted (asked of the database: a request to see would be a
/// visit).
pub async fn wait_until_exhausted(pair: &TestPair, code: &str) {
    let primary = pair.primary().await;
    testkit::eventually(
        std::time::Duration::from_secs(10),
        "the flush marked the link exhausted",
        || async {
            primary
                .query_one(
                    "SELECT exhausted_at IS NOT NULL FROM links WHERE code = $1",
                    &[&code],
                )
                .await
                .expect("the link")
                .get::<_, bool>(0)
        },
    )
    .await;
}
