//! What the receiver counts: deliveries, distinct event ids (a delivery repeated by an at-least-once sender is a
//! duplicate), bad signatures, and each distinct event's latency from its visit (`data.at`) to its arrival.

use std::{
    collections::HashSet,
    hash::{BuildHasher as _, RandomState},
    path::Path,
};

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Distinct ids remembered, at most: 20M 64-bit hashes (about 300 MB). Past it, a new id is counted as distinct
/// without being remembered, and the summary says so.
pub const ID_CAP: usize = 20_000_000;

/// The running counts.
pub struct Tally {
    /// Hashes of the ids seen: 8 bytes an id whatever its length (a collision among millions of 64-bit keyed
    /// hashes is a one-in-a-million event, and would count one event as a duplicate).
    ids: HashSet<u64>,
    hasher: RandomState,
    id_cap: usize,
    received: u64,
    distinct: u64,
    bad_signatures: u64,
    malformed: u64,
    /// Visit to arrival of each distinct event, µs.
    latency: Histogram<u64>,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,
}

impl Default for Tally {
    fn default() -> Self {
        Self::with_id_cap(ID_CAP)
    }
}

impl Tally {
    /// A tally that remembers at most `id_cap` ids.
    pub fn with_id_cap(id_cap: usize) -> Self {
        Self {
            ids: HashSet::new(),
            hasher: RandomState::new(),
            id_cap,
            received: 0,
            distinct: 0,
            bad_signatures: 0,
            malformed: 0,
            // 1 µs to a day: a backlog drained hours later is still measured, not clipped.
            latency: Histogram::new_with_bounds(1, 86_400_000_000, 3)
                .expect("constant, valid histogram bounds"),
            first: None,
            last: None,
        }
    }

    /// A delivery of event `id` for a visit at `visited`, arrived at `now`.
    pub fn event(&mut self, id: &str, visited: DateTime<Utc>, now: DateTime<Utc>) {
        self.received += 1;
        let hash = self.hasher.hash_one(id);
        if self.ids.contains(&hash) {
            return;
        }
        if self.ids.len() < self.id_cap {
            self.ids.insert(hash);
        }
        self.distinct += 1;
        let micros = (now - visited).num_microseconds().unwrap_or(i64::MAX);
        self.latency
            .saturating_record(u64::try_from(micros).unwrap_or(0).max(1));
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// A delivery whose signature did not verify.
    pub fn bad_signature(&mut self) {
        self.bad_signatures += 1;
    }

    /// A delivery without an `id` or a `data.at`.
    pub fn malformed(&mut self) {
        self.malformed += 1;
    }

    /// The counts so far.
    pub fn summary(&self) -> Summary {
        let span = match (self.first, self.last) {
            (Some(first), Some(last)) => {
                (last - first).num_microseconds().unwrap_or(0) as f64 / 1e6
            }
            _ => 0.0,
        };
        let millis = |micros: u64| micros as f64 / 1000.0;
        let at = |p: f64| millis(self.latency.value_at_percentile(p));
        let rfc3339 = |time: Option<DateTime<Utc>>| {
            time.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        };
        Summary {
            received: self.received,
            distinct: self.distinct,
            duplicates: self.received - self.distinct,
            bad_signatures: self.bad_signatures,
            malformed: self.malformed,
            id_cap_reached: self.ids.len() >= self.id_cap,
            latency_ms: LatencyMs {
                p50: at(50.0),
                p90: at(90.0),
                p99: at(99.0),
                max: millis(self.latency.max()),
            },
            first_received: rfc3339(self.first),
            last_received: rfc3339(self.last),
            delivered_per_second: if span > 0.0 {
                self.distinct as f64 / span
            } else {
                0.0
            },
        }
    }
}

/// Visit-to-arrival latency of distinct events, ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// What a receiver run saw: written as JSON and printed as one line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Deliveries with a valid signature and body, repeats included.
    pub received: u64,
    /// Distinct event ids among them.
    pub distinct: u64,
    /// `received - distinct`: deliveries of an event already received.
    pub duplicates: u64,
    /// Deliveries refused (401) for a missing or wrong signature.
    pub bad_signatures: u64,
    /// Deliveries refused (400) without an `id` or an RFC 3339 `data.at`.
    pub malformed: u64,
    /// Whether [`ID_CAP`] ids were remembered: later ids counted as distinct without a check.
    pub id_cap_reached: bool,
    /// From `data.at` (the visit) to arrival, for each distinct event.
    pub latency_ms: LatencyMs,
    /// The first distinct event's arrival.
    pub first_received: Option<String>,
    /// The last distinct event's arrival.
    pub last_received: Option<String>,
    /// `distinct / (last_received - first_received)`.
    pub delivered_per_second: f64,
}

impl Summary {
    /// The line printed when the receiver stops.
    pub fn line(&self) -> String {
        let l = &self.latency_ms;
        format!(
            "received {} · distinct {} · duplicates {} · bad signatures {} · malformed {} · latency ms p50 {:.1} \
             p90 {:.1} p99 {:.1} max {:.1} · {:.0} delivered/s{}",
            self.received,
            self.distinct,
            self.duplicates,
            self.bad_signatures,
            self.malformed,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            self.delivered_per_second,
            if self.id_cap_reached {
                " · id cap reached: later ids not deduplicated"
            } else {
                ""
            }
        )
    }

    /// Writes the summary as JSON.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn visit() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-07T02:00:00.000Z")
            .expect("a time")
            .to_utc()
    }

    #[test]
    fn repeats_are_duplicates_and_only_first_arrivals_are_timed() {
        let mut tally = Tally::default();
        let at = visit();

        tally.event("evt_1", at, at + TimeDelta::milliseconds(10));
        tally.event("evt_2", at, at + TimeDelta::milliseconds(1010));
        tally.event("evt_1", at, at + TimeDelta::seconds(60));
        let summary = tally.summary();

        assert_eq!(
            (summary.received, summary.distinct, summary.duplicates),
            (3, 2, 1)
        );
        assert!((summary.latency_ms.p50 - 10.0).abs() < 0.1, "{summary:?}");
        assert!((summary.latency_ms.max - 1010.0).abs() < 1.0, "{summary:?}");
        assert!((summary.delivered_per_second - 2.0).abs() < 1e-9);
        assert_eq!(
            summary.last_received.as_deref(),
            Some("2026-12-07T02:00:01.010Z")
        );
    }

    #[test]
    fn past_the_cap_ids_are_counted_but_not_remembered() {
        let mut tally = Tally::with_id_cap(1);
        let at = visit();

        tally.event("evt_1", at, at);
        tally.event("evt_2", at, at);
        tally.event("evt_2", at, at);
        let summary = tally.summary();

        assert_eq!((summary.distinct, summary.duplicates), (3, 0));
        assert!(summary.id_cap_reached);
        assert!(summary.line().contains("id cap reached"));
    }

    #[test]
    fn an_arrival_before_its_visit_counts_as_no_latency() {
        let mut tally = Tally::default();
        let at = visit();

        tally.event("evt_1", at, at - TimeDelta::milliseconds(3));

        assert!(tally.summary().latency_ms.max <= 0.001);
    }
}
