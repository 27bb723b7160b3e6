//! `loadtest seed`: creates links through the batch API (1000 per request, several requests in flight) and
//! writes their codes to a file, one per line, most popular first when the file is drawn with Zipf skew.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{json, Value};

/// Items per batch request (the API's maximum).
pub const BATCH: usize = 1000;

/// Seeding settings.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The shortener's base URL.
    pub shortener: String,
    /// An API key, exposed only to sign requests.
    pub api_key: SecretString,
    /// How many links.
    pub count: usize,
    /// Batch requests in flight.
    pub concurrency: usize,
    /// Distinguishes this run's long URLs from earlier runs'.
    pub run_id: String,
}

/// Creates the links and returns their codes in creation order.
///
/// # Errors
/// When the shortener refuses a batch or an item (a batch answered 503 or 429 is tried again, waiting what
/// `Retry-After` asks, up to 5 tries), or cannot be reached.
pub async fn seed(settings: &Seed, progress: &ProgressBar) -> anyhow::Result<Vec<String>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let settings = Arc::new(settings.clone());
    let batches = settings.count.div_ceil(BATCH);
    let semaphore = Arc::new(tokio::sync::Semaphore::new(settings.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for batch in 0..batches {
        let (client, settings, semaphore, progress) = (
            client.clone(),
            Arc::clone(&settings),
            Arc::clone(&semaphore),
            progress.clone(),
        );
        tasks.spawn(async move {
            let _slot = semaphore.acquire().await?;
            let from = batch * BATCH;
            let to = (from + BATCH).min(settings.count);
            let codes = create_batch(&client, &settings, from..to).await?;
            progress.inc(codes.len() as u64);
            anyhow::Ok((batch, codes))
        });
    }
    let mut done = vec![Vec::new(); batches];
    while let Some(joined) = tasks.join_next().await {
        let (batch, codes) = joined.context("a seeding task failed")??;
        done[batch] = codes;
    }
    Ok(done.concat())
}

/// Tries of one batch answered 503 or 429 (a database busy with a statement timeout, a rate limit) before the
/// seed gives up: a benchmark run should not die of one busy moment.
const TRIES: u32 = 5;

/// Longest wait between tries, whatever `Retry-After` says.
const MAX_WAIT: Duration = Duration::from_secs(10);

async fn create_batch(
    client: &reqwest::Client,
    settings: &Seed,
    range: std::ops::Range<usize>,
) -> anyhow::Result<Vec<String>> {
    let items: Vec<Value> = range
        .map(|n| json!({"long_url": format!("https://example.com/seed/{}/{n}", settings.run_id)}))
        .collect();
    let body = json!({ "items": items });
    let mut tries = 0;
    loop {
        tries += 1;
        let response = client
            .post(format!(
                "{}/v1/urls/batch",
                settings.shortener.trim_end_matches('/')
            ))
            .bearer_auth(settings.api_key.expose_secret())
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach the shortener at {}", settings.shortener))?;
        let status = response.status();
        let wait = retry_after(&response);
        let answer: Value = response
            .json()
            .await
            .context("the shortener's answer is not JSON")?;
        let busy = status == reqwest::StatusCode::SERVICE_UNAVAILABLE
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
        if busy && tries < TRIES {
            // A 503 or 429 kept nothing of the batch, so sending it again cannot make a link twice.
            tokio::time::sleep(wait).await;
            continue;
        }
        if !status.is_success() {
            bail!("the shortener answered {status} (try {tries} of {TRIES}): {answer}");
        }
        return codes_of(&answer);
    }
}

/// The wait `Retry-After` asks for (seconds), 1 s without one, at most [`MAX_WAIT`].
fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .min(MAX_WAIT)
}

/// The codes of a batch answer, in item order; an error if any item was refused.
fn codes_of(answer: &Value) -> anyhow::Result<Vec<String>> {
    answer["results"]
        .as_array()
        .context("no results in the batch answer")?
        .iter()
        .map(|result| match result["link"]["code"].as_str() {
            Some(code) => Ok(code.to_owned()),
            None => bail!("an item was refused: {result}"),
        })
        .collect()
}

/// Writes codes one per line.
///
/// # Errors
/// When the file cannot be written.
pub fn write_codes(path: &Path, codes: &[String]) -> anyhow::Result<()> {
    let mut text = codes.join("\n");
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a codes file (blank lines skipped).
///
/// # Errors
/// When the file cannot be read or holds no code.
pub fn read_codes(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let codes: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if codes.is_empty() {
        bail!("{} holds no codes", path.display());
    }
    Ok(codes)
}

/// A progress bar for `total` items (hidden when stderr is not a terminal).
pub fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{per_sec}})"
    )) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
