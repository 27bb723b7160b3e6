//! A steady trickle of traffic while a node dies: creates, redirects of links stored beforehand, and ID
//! requests, each kind in its own loop, one request at a time every [`PACE`]. Every answer is kept with its time,
//! so a test can count failures and measure a failover (first failure to first success after it).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use crate::stack::Stack;

/// The gap between two requests of one kind (about 20 a second each).
const PACE: Duration = Duration::from_millis(50);

/// Successes of each kind that show the traffic flows: about two seconds of the trickle, the window tests
/// give it before a fault and after the recovery.
pub const FLOWING: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Create,
    Redirect,
    Ids,
}

/// One answer (or the lack of one).
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    /// When the request was sent.
    pub at: Instant,
    /// The HTTP status; `None` when no answer came (connection error, timeout).
    pub status: Option<u16>,
    /// Whether the answer carried `Retry-After`.
    pub retry_after: bool,
    /// The code a create got (201).
    pub code: Option<String>,
}

impl Event {
    fn ok(&self) -> bool {
        match self.kind {
            Kind::Create => self.status == Some(201),
            Kind::Redirect => self.status == Some(302),
            Kind::Ids => self.status == Some(200),
        }
    }
}

/// The running loops.
pub struct Trickle {
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<Event>>>,
    loops: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
}

/// What the trickle saw.
pub struct Record {
    pub events: Vec<Event>,
    pub started: Instant,
}

/// Starts the three loops; `stored` are the codes the redirects ask for in turn.
pub fn start(stack: &Stack, stored: Vec<String>) -> Trickle {
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(Mutex::new(Vec::new()));
    let mut loops = Vec::new();
    for kind in [Kind::Create, Kind::Redirect, Kind::Ids] {
        let (stop, events, stored) = (stop.clone(), events.clone(), stored.clone());
        let (http, key) = (stack.http.clone(), stack.api_key.clone());
        let (shortener, redirect, idgen) = (
            stack.shortener.clone(),
            stack.redirect.clone(),
            stack.idgen.clone(),
        );
        loops.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let at = Instant::now();
                let request = match kind {
                    Kind::Create => http
                        .post(format!("{shortener}/v1/urls"))
                        .bearer_auth(&key)
                        .json(&serde_json::json!({ "long_url": format!("https://example.com/trickle/{n}") })),
                    Kind::Redirect => http.get(format!("{redirect}/{}", stored[n % stored.len()])),
                    Kind::Ids => http.get(format!("{idgen}/v1/ids?count=1")),
                };
                let event = match request.timeout(Duration::from_secs(10)).send().await {
                    Ok(answer) => {
                        let status = answer.status().as_u16();
                        let retry_after = answer.headers().contains_key("retry-after");
                        let code = if kind == Kind::Create && status == 201 {
                            let body: serde_json::Value =
                                answer.json().await.unwrap_or(serde_json::Value::Null);
                            body["code"].as_str().map(str::to_owned)
                        } else {
                            None
                        };
                        Event { kind, at, status: Some(status), retry_after, code }
                    }
                    Err(_) => Event { kind, at, status: None, retry_after: false, code: None },
                };
                events.lock().expect("events").push(event);
                n += 1;
                tokio::time::sleep(PACE.saturating_sub(at.elapsed())).await;
            }
        }));
    }
    Trickle {
        stop,
        events,
        loops,
        started: Instant::now(),
    }
}

impl Trickle {
    /// Stops the loops once their requests in flight are answered.
    pub async fn stop(self) -> Record {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.loops {
            task.await.expect("a trickle loop");
        }
        let events = std::mem::take(&mut *self.events.lock().expect("events"));
        Record {
            events,
            started: self.started,
        }
    }

    /// When the loops started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Waits until every kind has had `count` answers that succeeded, sent at or after `since`: traffic that is
    /// seen to flow before a fault, and seen to flow again after it.
    pub async fn wait_for_successes(&self, since: Instant, count: usize) {
        let what = format!("{count} requests of each kind succeed");
        testkit::eventually(Duration::from_secs(30), &what, || async {
            let events = self.events.lock().expect("events");
            [Kind::Create, Kind::Redirect, Kind::Ids]
                .iter()
                .all(|kind| {
                    events
                        .iter()
                        .filter(|event| event.kind == *kind && event.at >= since && event.ok())
                        .count()
                        >= count
                })
        })
        .await;
    }

    /// Waits until a request of `kind` sent after `since` succeeded after one that failed, or `within` passes.
    /// Not [`testkit::eventually`]: a fault that fails no request (a clean switchover) is also a good end.
    pub async fn wait_for_recovery(&self, kind: Kind, since: Instant, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let recovered = {
                let events = self.events.lock().expect("events");
                let mut failed = false;
                events
                    .iter()
                    .filter(|event| event.kind == kind && event.at >= since)
                    .any(|event| {
                        failed |= !event.ok();
                        failed && event.ok()
                    })
            };
            if recovered {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Record {
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |event| event.kind == kind)
    }

    pub fn failures(&self, kind: Kind) -> Vec<&Event> {
        self.of(kind).filter(|event| !event.ok()).collect()
    }

    /// From the first failure of `kind` to the first success sent after it; `None` without a failure, and the
    /// end of the record when nothing succeeded after it.
    pub fn outage(&self, kind: Kind) -> Option<Duration> {
        let first_failure = self.of(kind).find(|event| !event.ok())?.at;
        let recovered = self
            .of(kind)
            .find(|event| event.at > first_failure && event.ok())
            .map_or_else(
                || self.events.last().map_or(first_failure, |event| event.at),
                |event| event.at,
            );
        Some(recovered - first_failure)
    }

    /// Codes of the creates answered 201.
    pub fn acknowledged(&self) -> Vec<String> {
        self.of(Kind::Create)
            .filter_map(|event| event.code.clone())
            .collect()
    }

    /// One line for the test's output: requests and failures of each kind, and the outage.
    pub fn summary(&self) -> String {
        [Kind::Create, Kind::Redirect, Kind::Ids]
            .iter()
            .map(|&kind| {
                let outage = self.outage(kind).map_or("none".to_owned(), |outage| {
                    format!("{:.2} s", outage.as_secs_f64())
                });
                format!(
                    "{kind:?}: {} requests, {} failed, outage {outage}",
                    self.of(kind).count(),
                    self.failures(kind).len()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The failures of `kind` with their time since the start, for a failing assertion's message.
    pub fn describe_failures(&self, kind: Kind) -> String {
        self.failures(kind)
            .iter()
            .map(|event| {
                format!(
                    "+{:.2}s {:?} retry-after={}",
                    (event.at - self.started).as_secs_f64(),
                    event.status,
                    event.retry_after
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
