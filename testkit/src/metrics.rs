//! Reading a service's Prometheus text from its admin port, as tests assert on counters.

/// The sum of the samples of `series` (a metric name with its labels as printed, e.g.
/// `redirect_tier_answers_total{tier="local"}`, or a prefix of it) at `{admin}/metrics`; 0 when there is none.
///
/// # Panics
/// When the admin port does not answer: a test that reads metrics needs them.
pub async fn metric(admin: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{admin}/metrics"))
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|line| line.starts_with(series))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
