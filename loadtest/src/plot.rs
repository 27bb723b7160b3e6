//! Latency-by-percentile charts (SVG): the x axis is 1/(1−p) on a log scale, so p50, p90, p99, p99.9 … sit at
//! equal distances and the tail is as visible as the median; one line per run, so runs compare on one chart.

use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;

use crate::report::Report;

/// Largest x: 1/(1 − 99.999%).
const X_MAX: f64 = 1e5;

/// Draws every report's corrected latency curve into one SVG at `path`.
///
/// # Errors
/// When the chart cannot be drawn or written.
pub fn latency_by_percentile(reports: &[Report], path: &Path, title: &str) -> anyhow::Result<()> {
    let top_ms = reports
        .iter()
        .flat_map(|r| {
            r.latency
                .curve
                .iter()
                .map(|(_, micros)| *micros as f64 / 1000.0)
        })
        .fold(0.001, f64::max);
    let root = SVGBackend::new(path, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72)
        .build_cartesian_2d(
            (1f64..X_MAX).log_scale(),
            (0.001f64..top_ms * 1.1).log_scale(),
        )
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(draw_error)?;
    for (index, report) in reports.iter().enumerate() {
        let colour = Palette99::pick(index).to_rgba();
        let points = report.latency.curve.iter().map(|(p, micros)| {
            (
                1.0 / (1.0 - p / 100.0).max(1.0 / X_MAX),
                (*micros as f64 / 1000.0).max(0.001),
            )
        });
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)))
            .map_err(draw_error)?
            .label(format!(
                "{} ({:.0} req/s)",
                report.label, report.achieved_rps
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)?;
    root.present()
        .map_err(draw_error)
        .with_context(|| format!("writing {}", path.display()))
}

/// `x = 1/(1-p)` as a percentile: 1 → 0%, 10 → 90%, 100 → 99% …
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    if p < 99.0 {
        format!("{p:.0}%")
    } else {
        let decimals = (x.log10() - 2.0).round().max(0.0) as usize;
        format!("{p:.decimals$}%")
    }
}

fn draw_error(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("cannot draw the chart: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_reads_as_percentiles() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(10_000.0), "99.99%");
    }
}
