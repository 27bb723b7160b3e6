//! A steady trickle of creates and of redirects of stored links against a running shortener and redirect,
//! recording every answer with its time, so a test can count failures and date when write-through came back.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

/// One create the trickle made: when its answer came and what it said.
#[derive(Debug, Clone)]
pub struct Created {
    /// When the request was sent: a create sent before a kill may have been written through before it.
    pub sent: Instant,
    pub at: Instant,
    pub code: Option<String>,
    pub status: Option<u16>,
    /// Whether the link was in Redis right after its 201 (`None`: not checked, or Redis did not answer). Checked
    /// at once because a write-through that timed out can still land later: fred keeps the command queued
    /// until the slot map is re-read.
    pub cached: Option<bool>,
}

/// What the trickle saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub created: Vec<Created>,
    pub redirects: usize,
    /// Redirects of stored links that did not answer 302: (when, status or none for a transport error).
    pub failed_redirects: Vec<(Instant, Option<u16>)>,
}

impl Seen {
    pub fn failed_creates(&self) -> Vec<&Created> {
        self.created
            .iter()
            .filter(|created| created.status != Some(201))
            .collect()
    }
}

/// The running trickle; [`Trickle::stop`] ends it and hands back what it saw.
pub struct Trickle {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Where to send the trickle.
#[derive(Clone)]
pub struct Target {
    pub shortener: String,
    pub redirect: String,
    pub api_key: String,
    pub http: reqwest::Client,
    /// A client of the test's own with the services' prefix, to see whether a create was written through.
    pub cache: links::cache::RedisCache,
}

/// A create every `create_every` and a redirect of one of `stored` (in turn) every `redirect_every`.
pub fn start(
    target: Target,
    stored: Vec<String>,
    create_every: Duration,
    redirect_every: Duration,
) -> Trickle {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let creates = {
        let (target, stop, seen) = (target.clone(), stop.clone(), seen.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(create_every);
            let mut n = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                every.tick().await;
                n += 1;
                let sent = Instant::now();
                let answer = target
                    .http
                    .post(format!("{}/v1/urls", target.shortener))
                    .bearer_auth(&target.api_key)
                    .json(&serde_json::json!({"long_url": format!("https://example.com/trickle/{n}")}))
                    .send()
                    .await;
                let (status, code) = match answer {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body: serde_json::Value =
                            response.json().await.unwrap_or(serde_json::Value::Null);
                        (Some(status), body["code"].as_str().map(str::to_owned))
                    }
                    Err(_) => (None, None),
                };
                let at = Instant::now();
                let cached = match &code {
                    Some(code) if status == Some(201) => target
                        .cache
                        .get(code)
                        .await
                        .ok()
                        .map(|found| found.is_some()),
                    _ => None,
                };
                lock(&seen).created.push(Created {
                    sent,
                    at,
                    code,
                    status,
                    cached,
                });
            }
        })
    };
    let redirects = {
        let (stop, seen) = (stop.clone(), seen.clone());
        tokio::spawn(async move {
            let mut every = tokio::time::interval(redirect_every);
            let mut turn = 0;
            while !stop.load(Ordering::Relaxed) && !stored.is_empty() {
                every.tick().await;
                let code = &stored[turn % stored.len()];
                turn += 1;
                let answer = target
                    .http
                    .get(format!("{}/{code}", target.redirect))
                    .send()
                    .await;
                let status = answer.ok().map(|response| response.status().as_u16());
                let mut seen = lock(&seen);
                seen.redirects += 1;
                if status != Some(302) {
                    seen.failed_redirects.push((Instant::now(), status));
                }
            }
        })
    };
    Trickle {
        stop,
        seen,
        tasks: vec![creates, redirects],
    }
}

impl Trickle {
    /// The creates sent at `since` or later.
    pub fn created_since(&self, since: Instant) -> Vec<Created> {
        lock(&self.seen)
            .created
            .iter()
            .filter(|created| created.sent >= since)
            .cloned()
            .collect()
    }

    /// Waits until `count` creates sent at `since` or later were answered 201: the trickle is seen to flow.
    pub async fn wait_for_creates(&self, since: Instant, count: usize) {
        let what = format!("{count} creates succeed");
        testkit::eventually(Duration::from_secs(30), &what, || async {
            let created = self.created_since(since);
            created
                .iter()
                .filter(|created| created.status == Some(201))
                .count()
                >= count
        })
        .await;
    }

    /// Stops both loops (each finishes its request in flight) and returns what they saw.
    pub async fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        std::mem::take(&mut *lock(&self.seen))
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
