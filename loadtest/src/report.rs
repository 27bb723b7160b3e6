//! What a run reports: achieved rate, errors by kind and latency percentiles (corrected, and uncorrected for
//! comparison), as a table for people and JSON for tools and plots.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::engine::Measured;

/// The percentiles of the table.
const TABLE_PERCENTILES: [(&str, f64); 5] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
];

/// Latency summary, in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Percentile name (`p50` …) → µs.
    pub percentiles: BTreeMap<String, u64>,
    /// Largest, µs.
    pub max: u64,
    /// Mean, µs.
    pub mean: f64,
    /// (percentile, µs) points from 0 to 99.999 for plots.
    pub curve: Vec<(f64, u64)>,
}

impl Latency {
    fn of(histogram: &Histogram<u64>) -> Self {
        let percentiles = TABLE_PERCENTILES
            .iter()
            .map(|(name, p)| ((*name).to_owned(), histogram.value_at_percentile(*p)))
            .collect();
        // Points spaced evenly on the 1/(1-p) log axis, as HdrHistogram plots are read.
        let curve = (0..=50)
            .map(|step| {
                let p = 100.0 * (1.0 - 10f64.powf(-f64::from(step) / 10.0));
                (p, histogram.value_at_percentile(p))
            })
            .collect();
        Self {
            percentiles,
            max: histogram.max(),
            mean: histogram.mean(),
            curve,
        }
    }

    /// The value of a table percentile (`p99` …), µs.
    pub fn at(&self, name: &str) -> u64 {
        self.percentiles.get(name).copied().unwrap_or_default()
    }
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What was measured, e.g. `redirect hot (zipf 1.0)`.
    pub label: String,
    /// The target URL.
    pub target: String,
    /// Requests per second asked; `None` for closed loop.
    pub rate: Option<f64>,
    /// Connections.
    pub connections: usize,
    /// Measured seconds.
    pub seconds: f64,
    /// Answers with the expected status.
    pub ok: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// Expected answers per second.
    pub achieved_rps: f64,
    /// From the intended send time (what a user waits, queueing included).
    pub latency: Latency,
    /// From the actual send time (what closed-loop tools report).
    pub uncorrected_latency: Latency,
}

impl Report {
    /// The report of `measured`.
    pub fn new(
        label: &str,
        target: &str,
        rate: Option<f64>,
        connections: usize,
        measured: &Measured,
    ) -> Self {
        let seconds = measured.elapsed.as_secs_f64().max(f64::EPSILON);
        Self {
            label: label.to_owned(),
            target: target.to_owned(),
            rate,
            connections,
            seconds,
            ok: measured.ok,
            errors: measured.errors.clone(),
            achieved_rps: measured.ok as f64 / seconds,
            latency: Latency::of(&measured.corrected),
            uncorrected_latency: Latency::of(&measured.uncorrected),
        }
    }

    /// Failed requests.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// The table printed after a run.
    pub fn table(&self) -> String {
        let mode = self.rate.map_or_else(
            || "closed loop (max throughput)".to_owned(),
            |r| format!("open loop at {r:.0} req/s"),
        );
        let mut out = format!(
            "{}\n  target {}  ·  {mode}  ·  {} connections  ·  {:.1} s\n  achieved {:.0} req/s  ·  ok {}  ·  errors {}",
            self.label,
            self.target,
            self.connections,
            self.seconds,
            self.achieved_rps,
            self.ok,
            self.error_count()
        );
        for (kind, count) in &self.errors {
            out.push_str(&format!("  [{kind}: {count}]"));
        }
        out.push_str("\n  latency     ");
        for (name, _) in TABLE_PERCENTILES {
            out.push_str(&format!("{name:>9}"));
        }
        out.push_str(&format!("{:>9}\n", "max"));
        for (title, latency) in [
            ("corrected  ", &self.latency),
            ("uncorrected", &self.uncorrected_latency),
        ] {
            out.push_str(&format!("  {title} "));
            for (name, _) in TABLE_PERCENTILES {
                out.push_str(&format!("{:>9}", millis(latency.at(name))));
            }
            out.push_str(&format!("{:>9}\n", millis(latency.max)));
        }
        out
    }

    /// Writes the report as JSON.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Reads a report written by [`Report::save`].
    ///
    /// # Errors
    /// When the file cannot be read or is not a report.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a loadtest report", path.display()))
    }
}

/// µs as milliseconds with a unit, for the table.
fn millis(micros: u64) -> String {
    format!("{:.3}ms", micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_report_round_trips_through_json() {
        let mut measured = Measured {
            corrected: crate::engine::histogram(),
            uncorrected: crate::engine::histogram(),
            ok: 990,
            errors: BTreeMap::from([("status_404".to_owned(), 10)]),
            elapsed: Duration::from_secs(2),
        };
        for micros in 1..=1000 {
            measured.corrected.record(micros * 3).expect("in range");
            measured.uncorrected.record(micros).expect("in range");
        }
        let report = Report::new("test", "http://127.0.0.1:1/", Some(500.0), 4, &measured);
        let path = std::env::temp_dir().join(format!("report-{}.json", std::process::id()));

        report.save(&path).expect("saved");
        let loaded = Report::load(&path).expect("loaded");
        let _ = std::fs::remove_file(&path);

        assert_eq!(loaded, report);
        assert_eq!(loaded.achieved_rps, 495.0);
        assert_eq!(loaded.error_count(), 10);
        assert!(loaded.latency.at("p50") > loaded.uncorrected_latency.at("p50"));
        assert!(report.table().contains("status_404: 10"));
    }
}
