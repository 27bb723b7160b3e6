//! Rollouts drop nothing: a redirect told to stop answers `/readyz` 503 at once and serves on for its drain delay,
//! so whatever routes by readiness (Kubernetes' endpoints, an ingress; here [`Balancer`]) has moved its traffic
//! away before the redirect stops accepting.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use plumbing::{drain::DrainArgs, shutdown::Shutdown};
use testkit::eventually;

use crate::helpers::{link, spawn_pair};

/// Requests the closed loop keeps in flight.
const CONCURRENCY: usize = 8;

/// A tiny load balancer that follows readiness, as Kubernetes' endpoints and an ingress do: it asks each
/// backend's `/readyz` every 50 ms and sends each request to the next backend that answered 200.
struct Balancer {
    backends: Vec<(String, AtomicBool)>,
    next: AtomicU64,
}

impl Balancer {
    /// `(API address, admin address)` of each backend; polled until the balancer is dropped with its test.
    async fn follow(backends: Vec<(String, String)>) -> Arc<Self> {
        let balancer = Arc::new(Self {
            backends: backends
                .iter()
                .map(|(api, _)| (api.clone(), AtomicBool::new(false)))
                .collect(),
            next: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&balancer);
        let client = reqwest::Client::new();
        tokio::spawn(async move {
            while let Some(balancer) = weak.upgrade() {
                for ((_, admin), (_, ready)) in backends.iter().zip(&balancer.backends) {
                    let answer = client
                        .get(format!("{admin}/readyz"))
                        .timeout(Duration::from_secs(1))
                        .send()
                        .await;
                    let up = answer.is_ok_and(|answer| answer.status() == 200);
                    ready.store(up, Ordering::SeqCst);
                }
                drop(balancer);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let ready = Arc::clone(&balancer);
        eventually(Duration::from_secs(10), "every backend is ready", || {
            let ready = Arc::clone(&ready);
            async move {
                ready
                    .backends
                    .iter()
                    .all(|(_, up)| up.load(Ordering::SeqCst))
            }
        })
        .await;
        balancer
    }

    /// The next ready backend's API address (round robin).
    fn pick(&self) -> Option<&str> {
        let count = self.backends.len() as u64;
        (0..count).find_map(|_| {
            let index = self.next.fetch_add(1, Ordering::Relaxed) % count;
            let (address, ready) = &self.backends[usize::try_from(index).ok()?];
            ready.load(Ordering::SeqCst).then_some(address.as_str())
        })
    }
}

#[tokio::test]
async fn a_redirect_stopped_under_closed_loop_load_behind_a_balancer_that_follows_readiness_fails_no_request(
) {
    let pair = spawn_pair().await;
    let code = pair.shorten(link("https://example.com/rollout")).await;
    let mut args = pair.redirect_args();
    args.drain = DrainArgs {
        drain_delay_ms: 1_000,
    };
    let stop = Shutdown::new();
    let leaving = pair.spawn_redirect_until(args, stop.clone()).await;
    let staying = pair.spawn_redirect_app(pair.redirect_args()).await;
    let balancer = Balancer::follow(vec![
        (leaving.address.clone(), leaving.admin.clone()),
        (staying.address.clone(), staying.admin.clone()),
    ])
    .await;
    let (served, failures) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let running = Arc::new(AtomicBool::new(true));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (balancer, client, code) = (Arc::clone(&balancer), pair.client.clone(), code.clone());
        let (served, failures, running) = (
            Arc::clone(&served),
            Arc::clone(&failures),
            Arc::clone(&running),
        );
        load.spawn(async move {
            while running.load(Ordering::SeqCst) {
                let Some(base) = balancer.pick().map(str::to_owned) else {
                    failures
                        .lock()
                        .expect("lock")
                        .push("no ready backend".to_owned());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                match client.get(format!("{base}/{code}")).send().await {
                    Ok(answer) if answer.status() == 302 => {
                        served.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(answer) => failures
                        .lock()
                        .expect("lock")
                        .push(format!("{base}: {}", answer.status())),
                    Err(error) => failures
                        .lock()
                        .expect("lock")
                        .push(format!("{base}: {error}")),
                }
            }
        });
    }
    let at_least = |count: u64, what: &'static str| {
        let served = Arc::clone(&served);
        async move {
            eventually(Duration::from_secs(30), what, || {
                let served = Arc::clone(&served);
                async move { served.load(Ordering::SeqCst) >= count }
            })
            .await;
        }
    };
    at_least(200, "the load is running").await;

    // What SIGTERM does.
    stop.trigger();

    let readyz = pair
        .client
        .get(format!("{}/readyz", leaving.admin))
        .send()
        .await
        .expect("the leaving redirect's admin answers");
    assert_eq!(readyz.status(), 503);
    let body = readyz.text().await.expect("body");
    assert!(body.contains(r#""status":"draining""#), "{body}");
    let direct = pair.follow_on(&leaving.address, &code).await;
    assert_eq!(
        direct.status(),
        302,
        "the leaving redirect serves on while draining"
    );
    leaving
        .stopped
        .await
        .expect("joined")
        .expect("stopped cleanly");
    let after_stop = served.load(Ordering::SeqCst);
    at_least(after_stop + 200, "the load goes on without it").await;
    running.store(false, Ordering::SeqCst);
    while load.join_next().await.is_some() {}

    let failures = failures.lock().expect("lock");
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        served.load(Ordering::SeqCst),
        &failures[..failures.len().min(10)]
    );
}
