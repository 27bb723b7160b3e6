//! The load engine: C keep-alive connections, each sending one request at a time. Open loop (a rate is given):
//! every request has an intended send time on a fixed schedule, and its latency is measured from that time, so a
//! slow answer that delays the next send is charged to the server (the coordinated-omission correction of
//! wrk2). Closed loop (no rate): each connection sends as fast as answers come back.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

use crate::{client::Connection, pacer::Pacer};

/// Load settings.
#[derive(Debug, Clone)]
pub struct Load {
    /// Where to send.
    pub address: SocketAddr,
    /// Requests per second over all connections; `None` for closed loop.
    pub rate: Option<f64>,
    /// How long to measure (after the warm-up).
    pub duration: Duration,
    /// Sent but not measured first.
    pub warmup: Duration,
    /// Keep-alive connections.
    pub connections: usize,
    /// Bound on one request.
    pub timeout: Duration,
}

/// Which request to send next and whether its answer is the expected one; one per connection.
pub trait Requests: Send + 'static {
    /// The bytes of the next request.
    fn next(&mut self) -> &[u8];
    /// Whether `status` is a success.
    fn expected(&self, status: u16) -> bool;
}

/// What one run measured.
#[derive(Debug)]
pub struct Measured {
    /// Latency from the intended send time (open loop) or the actual one (closed loop), in µs.
    pub corrected: Histogram<u64>,
    /// Latency from the actual send time, in µs (the number closed-loop tools report).
    pub uncorrected: Histogram<u64>,
    /// Answers with the expected status.
    pub ok: u64,
    /// Failures by kind (`status_404`, `timeout`, …).
    pub errors: BTreeMap<String, u64>,
    /// The measured span.
    pub elapsed: Duration,
}

/// 1 µs to 100 s at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("constant, valid histogram bounds")
}

impl Measured {
    fn empty() -> Self {
        Self {
            corrected: histogram(),
            uncorrected: histogram(),
            ok: 0,
            errors: BTreeMap::new(),
            elapsed: Duration::ZERO,
        }
    }

    fn merge(&mut self, part: Self) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.corrected.add(&part.corrected);
        let _ = self.uncorrected.add(&part.uncorrected);
        self.ok += part.ok;
        for (kind, count) in part.errors {
            *self.errors.entry(kind).or_default() += count;
        }
    }
}

/// Runs `load`, one `Requests` per connection from `requests(k)`.
pub async fn run<R: Requests>(load: &Load, requests: impl Fn(usize) -> R) -> Measured {
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + load.warmup;
    let end = measure_from + load.duration;
    let load = Arc::new(load.clone());
    let pacer = load
        .rate
        .map(|_| Pacer::start().expect("the pacer thread starts"));
    let mut tasks = tokio::task::JoinSet::new();
    for k in 0..load.connections {
        let (load, requests, pacer) = (Arc::clone(&load), requests(k), pacer.clone());
        tasks.spawn(connection(
            load,
            requests,
            pacer,
            k,
            start,
            measure_from,
            end,
        ));
    }
    let mut total = Measured::empty();
    while let Some(done) = tasks.join_next().await {
        if let Ok(part) = done {
            total.merge(part);
        }
    }
    total.elapsed = Instant::now().saturating_duration_since(measure_from);
    total
}

async fn connection<R: Requests>(
    load: Arc<Load>,
    mut requests: R,
    pacer: Option<Pacer>,
    k: usize,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> Measured {
    let mut measured = Measured::empty();
    let mut connection = Connection::new(load.address, load.timeout);
    // Each connection keeps rate/C, its schedule offset by k/C of an interval so sends interleave evenly.
    let interval = load
        .rate
        .map(|rate| Duration::from_secs_f64(load.connections as f64 / rate));
    let mut intended = start
        + interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(k as f64 / load.connections as f64)
        });
    loop {
        if let (Some(interval), Some(pacer)) = (interval, &pacer) {
            pacer.until(intended).await;
            // Keep the schedule even when late: the next send is due one interval after this one was.
            let due = intended;
            intended += interval;
            if due >= end {
                break;
            }
            send(
                &mut connection,
                &mut requests,
                &mut measured,
                due,
                measure_from,
            )
            .await;
        } else {
            let now = Instant::now();
            if now >= end {
                break;
            }
            send(
                &mut connection,
                &mut requests,
                &mut measured,
                now,
                measure_from,
            )
            .await;
        }
    }
    measured
}

async fn send<R: Requests>(
    connection: &mut Connection,
    requests: &mut R,
    measured: &mut Measured,
    due: Instant,
    measure_from: Instant,
) {
    let sent = Instant::now();
    let outcome = connection.send(requests.next()).await;
    if due < measure_from {
        return;
    }
    let done = Instant::now();
    let micros = |from: Instant| {
        u64::try_from(done.saturating_duration_since(from).as_micros())
            .unwrap_or(u64::MAX)
            .max(1)
    };
    measured.corrected.saturating_record(micros(due));
    measured.uncorrected.saturating_record(micros(sent));
    match outcome {
        Ok(status) if requests.expected(status) => measured.ok += 1,
        Ok(status) => {
            *measured
                .errors
                .entry(format!("status_{status}"))
                .or_default() += 1
        }
        Err(failure) => {
            *measured
                .errors
                .entry(failure.kind().to_owned())
                .or_default() += 1
        }
    }
}
