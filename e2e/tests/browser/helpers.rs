//! What a browser test needs: a redirect and a shortener whose short URLs point at it (one test database, one
//! Redis prefix, one ZooKeeper chroot), a ChromeDriver of our own on a free port, and a headless Chromium
//! session driven through it.

use std::os::unix::process::CommandExt as _;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use database::DatabaseArgs;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use idgen::config::IdgenArgs;
use links::cache::RedisArgs;
use plumbing::shutdown::Shutdown;
use redirect::config::RedirectArgs;
use serde_json::{json, Value};
use testkit::{eventually, TestDb};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long the page gets to reach a state: generous, the machine is shared by parallel builds.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A shortener serving the page and a redirect answering its short URLs.
pub struct Services {
    pub shortener: String,
    pub api_key: String,
    pub http: reqwest::Client,
    pub db: TestDb,
    shutdown: Shutdown,
}

pub async fn spawn_services(configure: impl FnOnce(&mut shortener::config::ServeArgs)) -> Services {
    spawn_services_on(&[], configure).await
}

/// Like [`spawn_services`], with `hosts` registered as domains besides the default one before either service
/// starts, as `shortener domains add HOST` would have.
pub async fn spawn_services_on(
    hosts: &[&str],
    configure: impl FnOnce(&mut shortener::config::ServeArgs),
) -> Services {
    let db = TestDb::create().await;
    if !hosts.is_empty() {
        register_domains(&db, hosts).await;
    }
    let (redis_url, prefix) = testkit::redis();
    let redis = RedisArgs::new(redis_url, prefix);
    let shutdown = Shutdown::new();

    let args = RedirectArgs::for_tests(
        DatabaseArgs::new(&db.url),
        vec![db.replica_url.clone()],
        redis.clone(),
    );
    let redirect = redirect::startup::build(args)
        .await
        .expect("the redirect starts");
    let public_base_url = format!("http://127.0.0.1:{}/", redirect.port());
    tokio::spawn(redirect.run_until_stopped(shutdown.clone()));

    let idgen = IdgenArgs::new(testkit::zookeeper_chroot().await);
    let mut args =
        shortener::config::ServeArgs::for_tests(DatabaseArgs::new(&db.url), redis, idgen);
    args.public_base_url = public_base_url.parse().expect("a URL");
    configure(&mut args);
    let app = shortener::startup::build(args)
        .await
        .expect("the shortener starts");
    let shortener = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped(shutdown.clone()));

    let store = shortener::stores::connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let (_, api_key) = store.create_api_key("browser").await.expect("an API key");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    Services {
        shortener,
        api_key,
        http,
        db,
        shutdown,
    }
}

/// Migrates the test database and adds `hosts` to its domains (on the primary; the replica catches up first, so
/// a service reading from it sees them).
async fn register_domains(db: &TestDb, hosts: &[&str]) {
    shortener::stores::connect_and_migrate(&DatabaseArgs::new(&db.url))
        .await
        .expect("database");
    let client = connect(&db.url).await;
    for host in hosts {
        client
            .execute(
                "INSERT INTO domains (host, allow_indexing) VALUES ($1, false)",
                &[host],
            )
            .await
            .expect("a domain");
    }
    db.wait_for_replica_catch_up().await;
}

/// A connection to the test database at `url`.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("db");
    tokio::spawn(connection);
    client
}

impl Services {
    /// Runs one SQL statement with `code` as `$1`, on the primary.
    pub async fn sql(&self, statement: &str, code: &str) {
        connect(&self.db.url)
            .await
            .execute(statement, &[&code])
            .await
            .expect("statement");
    }
}

impl Services {
    /// Calls the API with the test's key; answers the status and the JSON body (null when there is none).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.shortener))
            .bearer_auth(&self.api_key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the shortener answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates a link through the API; answers its body.
    pub async fn create(&self, body: Value) -> Value {
        let (status, link) = self
            .api(reqwest::Method::POST, "/v1/urls", Some(body))
            .await;
        assert_eq!(status, 201, "{link}");
        link
    }
}

/// Opens the page and saves the test's key in it, as a person would.
pub async fn sign_in(browser: &Client, services: &Services) {
    browser
        .goto(&services.shortener)
        .await
        .expect("the page loads");
    type_into(browser, "api-key", &services.api_key).await;
    click(browser, "#save-key").await;
    wait_until(
        browser,
        "localStorage.getItem('snowlink.apiKey') && document.getElementById('key-status').textContent.includes('saved')",
        "the key to be saved",
    )
    .await;
}

impl Drop for Services {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A ChromeDriver child process, killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn require(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} not found: the browser tests need Debian's chromium and chromium-driver packages \
         (scripts/browser.sh installs them; `make test` runs it)"
    );
}

/// Starts ChromeDriver on a free port and waits until it says it is ready.
pub async fn start_driver() -> Driver {
    require(CHROMIUM);
    require(CHROMEDRIVER);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    // Its own process group, so dropping the driver also ends the Chromium it started, even when a test
    // panics before closing its session.
    let child = Command::new(CHROMEDRIVER)
        .process_group(0)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let (client, status) = (reqwest::Client::new(), format!("{}/status", driver.url));
    eventually(PATIENCE, "chromedriver is ready", || async {
        let Ok(response) = client
            .get(&status)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        else {
            return false;
        };
        let body: Value = response.json().await.unwrap_or(Value::Null);
        body["value"]["ready"] == true
    })
    .await;
    driver
}

/// A headless Chromium session, started with the flags that keep it off the network and quiet.
pub async fn open_browser(driver: &Driver) -> Client {
    browser_with(driver, json!({})).await
}

/// A headless Chromium session that starts downloads into `dir` without asking. (Headless Chromium 156 was seen
/// to leave a download from a `blob:` URL as an empty `.crdownload` for good, so tests read what the page hands
/// to the download rather than the finished file.)
pub async fn open_browser_saving_to(driver: &Driver, dir: &Path) -> Client {
    let prefs = json!({
        "download.default_directory": dir,
        "download.prompt_for_download": false,
    });
    browser_with(driver, prefs).await
}

async fn browser_with(driver: &Driver, prefs: Value) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1100,1400",
            ],
            "prefs": prefs,
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object literal")
    };
    ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver")
}

/// Polls `expression` (JavaScript) in the page until it is truthy; fails naming `what` after [`PATIENCE`].
pub async fn wait_until(browser: &Client, expression: &str, what: &str) -> Value {
    let script = format!("return ({expression});");
    // Just inside `eventually`'s own deadline, so the failure can say what the page shows.
    let deadline = Instant::now() + PATIENCE;
    eventually(PATIENCE, what, || async {
        let value = browser
            .execute(&script, Vec::new())
            .await
            .expect("script runs");
        if truthy(&value) {
            return Some(value);
        }
        if Instant::now() >= deadline {
            // What the page says (an error next to a field, a status line) usually tells why.
            let shown = browser
                .execute("return document.body.innerText;", Vec::new())
                .await
                .map_or_else(
                    |error| format!("<unreadable: {error}>"),
                    |text| text.to_string(),
                );
            panic!("waited {PATIENCE:?} for {what}; the page shows:\n{shown}");
        }
        None
    })
    .await
}

/// JavaScript's truthiness, for the values a script hands back through WebDriver.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::String(text) => !text.is_empty(),
        Value::Number(number) => number.as_f64() != Some(0.0),
        _ => true,
    }
}

/// Where screenshots go: under `target/`, so they are never committed.
pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir.join(name)
}

pub async fn type_into(browser: &Client, id: &str, text: &str) {
    let field = browser.find(Locator::Id(id)).await.expect(id);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("typing");
}

/// Types `text` into the field `css` finds (rows the page adds have generated ids, so tests find them by place).
pub async fn fill(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("typing");
}

/// Picks the option whose value is `value` in the `<select>` that `css` finds, by clicking it as a person would.
pub async fn choose(browser: &Client, css: &str, value: &str) {
    let select = browser.find(Locator::Css(css)).await.expect(css);
    select.select_by_value(value).await.expect("an option");
}

/// Clicks `css` as a person would: once it is on the page (a row arrives with the list, after the page has
/// loaded: on a busy machine the first click came before it), scrolled into the middle of the window and still
/// there, and again a moment later if something else is still under the pointer. Rows grow as their charts
/// arrive, so a button can move between being found and being clicked: WebDriver clicks where its centre was,
/// and on a busy machine that was once the Edit button of the row above "Older links".
pub async fn click(browser: &Client, css: &str) {
    let what = format!("nothing else is over {css} when it is clicked");
    eventually(PATIENCE, &what, || async {
        let element = browser
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .expect(css);
        let argument = serde_json::to_value(&element).expect("element");
        wait_until_still(browser, css, argument).await;
        match element.click().await {
            Ok(_) => true,
            Err(fantoccini::error::CmdError::Standard(error))
                if error.error == fantoccini::error::ErrorStatus::ElementClickIntercepted =>
            {
                false
            }
            Err(error) => panic!("click {css}: {error:?}"),
        }
    })
    .await;
}

/// How long an element must keep its place before a click: longer than a chart takes to grow its row.
const STILL_FOR: Duration = Duration::from_millis(200);

/// Scrolls the element into the middle of the window until it has kept its place for [`STILL_FOR`].
async fn wait_until_still(browser: &Client, css: &str, element: Value) {
    let place = "arguments[0].scrollIntoView({block: 'center'}); \
                 const r = arguments[0].getBoundingClientRect(); \
                 return [r.x, r.y, r.width, r.height].join(' ');";
    let seen = std::cell::RefCell::new((Value::Null, Instant::now()));
    let what = format!("{css} keeps its place for {STILL_FOR:?}");
    eventually(PATIENCE, &what, || async {
        let now = browser
            .execute(place, vec![element.clone()])
            .await
            .expect("scroll");
        let mut seen = seen.borrow_mut();
        if now != seen.0 {
            *seen = (now, Instant::now());
            return false;
        }
        seen.1.elapsed() >= STILL_FOR
    })
    .await;
}

/// The alias is also the list item's `data-code`, so the test can find its row.
pub fn unique_alias() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("web-{nanos:x}")
}
