//! The loadtest binary: parses the command line and runs one subcommand.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{atomic::AtomicUsize, Arc},
    time::Duration,
};

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use loadtest::{
    ceiling, client,
    engine::{self, Load},
    plot,
    receiver::{self, Receiver},
    report::Report,
    seed::{self, Seed},
    workload::{Creates, Draw, Edits, Redirects, Target},
    zipf::Zipf,
};
use secrecy::SecretString;

/// snowlink load tester: seeds links, drives redirect or create traffic at a constant rate (latency measured
/// from each request's intended send time, so queueing is not hidden) or at maximum throughput, and reports
/// percentiles as a table, JSON and an SVG chart.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create links through the batch API and write their codes to a file, one per line.
    Seed(SeedArgs),
    /// Load the redirect service with GET /{code}; 301/302/307/308 count as success, anything else as an error.
    Redirect(RedirectArgs),
    /// Load the shortener with POST /v1/urls of unique URLs; 201 counts as success.
    Shorten(ShortenArgs),
    /// Load the shortener with PATCH /v1/urls/{code} of a new long URL for codes the key owns (`seed` writes
    /// them); 200 counts as success. Every edit also invalidates the code on every redirect replica.
    Edit(EditArgs),
    /// Serve a fixed 302 for every request: the machine's ceiling for a redirect answer.
    Ceiling(CeilingArgs),
    /// Draw several JSON reports on one latency-by-percentile chart.
    Plot(PlotArgs),
    /// Receive webhook deliveries: check signatures, count distinct event ids and measure each click event's
    /// latency from its visit (`data.at`) to arrival; on SIGINT/SIGTERM or after --duration, write a JSON summary
    /// and print it on one line. `GET` on any path answers the summary so far. Remembers at most 20M distinct ids
    /// (about 300 MB); past that, new ids are counted as distinct without a check and the summary says so.
    WebhookReceiver(ReceiverArgs),
}

#[derive(Debug, clap::Args)]
struct SeedArgs {
    /// The shortener's base URL.
    #[arg(long, env = "SHORTENER_URL", default_value = "http://127.0.0.1:8080")]
    shortener: String,
    /// An API key (`shortener keys create`).
    #[arg(long, env = "SNOWLINK_API_KEY", hide_env_values = true)]
    api_key: SecretString,
    /// How many links to create.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// Batch requests (of 1000 links) in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Where to write the codes.
    #[arg(long, short, default_value = "codes.txt")]
    out: PathBuf,
}

/// How a run is shaped and reported (shared by `redirect` and `shorten`).
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Requests per second over all connections (open loop). Without it: closed loop, as fast as answers come.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to measure, e.g. 30s, 500ms, 2m.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Load sent before measuring starts (connections open, caches fill), e.g. 2s.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    warmup: Duration,
    /// Keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Bound on one request, e.g. 2s.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    timeout: Duration,
    /// Threads of the load generator (keep it small: it shares the machine with the servers it measures).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Name of the run in the table, JSON and chart.
    #[arg(long)]
    label: Option<String>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw latency by percentile as SVG here.
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct RedirectArgs {
    /// The redirect service's base URL.
    #[arg(long, env = "REDIRECT_URL", default_value = "http://127.0.0.1:8081")]
    target: url::Url,
    /// Codes to request, one per line (`loadtest seed` writes it); the first lines are the most popular.
    #[arg(long)]
    codes: PathBuf,
    /// Zipf exponent of popularity: 0 uniform, 1.0 typical web skew.
    #[arg(long, default_value_t = 1.0)]
    zipf: f64,
    /// `zipf`: draw codes with --zipf skew; `sequential`: each code once in file order (cache-miss runs).
    #[arg(long, value_enum, default_value = "zipf")]
    keys: Keys,
    /// A header every request carries, `Name: value` (repeat it), e.g. a browser's `User-Agent` and a `Referer`,
    /// so the redirect classifies each hit as it would a real visit's. A `User-Agent` replaces the default one.
    #[arg(long = "header", value_parser = client::header_line)]
    headers: Vec<String>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Keys {
    Zipf,
    Sequential,
}

#[derive(Debug, clap::Args)]
struct ShortenArgs {
    /// The shortener's base URL.
    #[arg(long, env = "SHORTENER_URL", default_value = "http://127.0.0.1:8080")]
    target: url::Url,
    /// An API key (`shortener keys create`).
    #[arg(long, env = "SNOWLINK_API_KEY", hide_env_values = true)]
    api_key: SecretString,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Args)]
struct EditArgs {
    /// The shortener's base URL.
    #[arg(long, env = "SHORTENER_URL", default_value = "http://127.0.0.1:8080")]
    target: url::Url,
    /// An API key (`shortener keys create`) owning the codes.
    #[arg(long, env = "SNOWLINK_API_KEY", hide_env_values = true)]
    api_key: SecretString,
    /// Codes to edit, one per line.
    #[arg(long)]
    codes: PathBuf,
    /// Zipf exponent of which codes are edited: 0 (default) uniform, as users edit their own links.
    #[arg(long, default_value_t = 0.0)]
    zipf: f64,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, clap::Args)]
struct CeilingArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
    /// HTTP worker threads (0: one per core, as the redirect service).
    #[arg(long, default_value_t = 0)]
    workers: usize,
}

#[derive(Debug, clap::Args)]
struct ReceiverArgs {
    /// Address to serve on (port 0: any free one, printed at start).
    #[arg(long, default_value = "127.0.0.1:8095")]
    listen: String,
    /// The webhook's secret (from its creation): deliveries whose signature does not verify get 401 and are
    /// counted as bad signatures. Without it nothing is checked.
    #[arg(long, env = "WEBHOOK_SECRET", hide_env_values = true)]
    secret: Option<SecretString>,
    /// The status every delivery gets (a non-2xx makes the sender retry).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(200..=599))]
    status: u16,
    /// Write the summary as JSON here when it stops.
    #[arg(long)]
    json: PathBuf,
    /// Stop after this long (e.g. 60s); without it, at SIGINT/SIGTERM.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// HTTP worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

#[derive(Debug, clap::Args)]
struct PlotArgs {
    /// JSON reports written with --json.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// The SVG to write.
    #[arg(long, short)]
    out: PathBuf,
    /// Chart title.
    #[arg(long, default_value = "latency by percentile")]
    title: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ceiling(args) => actix_web::rt::System::new()
            .block_on(ceiling::serve(&args.listen, args.workers))
            .with_context(|| format!("ceiling server on {}", args.listen)),
        Command::WebhookReceiver(args) => {
            actix_web::rt::System::new().block_on(run_webhook_receiver(args))
        }
        Command::Plot(args) => {
            let reports = args
                .reports
                .iter()
                .map(|path| Report::load(path))
                .collect::<anyhow::Result<Vec<_>>>()?;
            plot::latency_by_percentile(&reports, &args.out, &args.title)
        }
        Command::Seed(args) => runtime(2)?.block_on(run_seed(args)),
        Command::Redirect(args) => runtime(args.run.threads)?.block_on(run_redirect(args)),
        Command::Shorten(args) => runtime(args.run.threads)?.block_on(run_shorten(args)),
        Command::Edit(args) => runtime(args.run.threads)?.block_on(run_edit(args)),
    }
}

fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    Ok(builder.enable_all().build()?)
}

async fn run_seed(args: SeedArgs) -> anyhow::Result<()> {
    let settings = Seed {
        shortener: args.shortener,
        api_key: args.api_key,
        count: args.count,
        concurrency: args.concurrency,
        run_id: run_id(),
    };
    let progress = seed::progress_bar(args.count as u64, "links");
    let started = std::time::Instant::now();
    let codes = seed::seed(&settings, &progress).await?;
    progress.finish();
    seed::write_codes(&args.out, &codes)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "seeded {} links in {seconds:.1} s ({:.0} links/s) → {}",
        codes.len(),
        codes.len() as f64 / seconds,
        args.out.display()
    );
    Ok(())
}

async fn run_redirect(args: RedirectArgs) -> anyhow::Result<()> {
    let codes = seed::read_codes(&args.codes)?;
    let target = Target::parse(&args.target)?;
    let requests = Redirects::prepare(&target, &codes, &args.headers);
    let draw = match args.keys {
        Keys::Zipf => zipf_draw(codes.len(), args.zipf)?,
        Keys::Sequential => Draw::Sequential(Arc::new(AtomicUsize::new(0))),
    };
    let default_label = match args.keys {
        Keys::Zipf => format!("redirect (zipf {})", args.zipf),
        Keys::Sequential => "redirect (each code once)".to_owned(),
    };
    let load = load(&args.target, &args.run).await?;
    let measured = engine::run(&load, |k| {
        Redirects::new(Arc::clone(&requests), draw.clone(), k)
    })
    .await;
    finish(
        &args.run,
        default_label,
        args.target.as_str(),
        &load,
        &measured,
    )
}

async fn run_shorten(args: ShortenArgs) -> anyhow::Result<()> {
    let target = Target::parse(&args.target)?;
    let load = load(&args.target, &args.run).await?;
    let run_id = run_id();
    let measured = engine::run(&load, |k| {
        Creates::new(target.clone(), args.api_key.clone(), &run_id, k)
    })
    .await;
    finish(
        &args.run,
        "shorten".to_owned(),
        args.target.as_str(),
        &load,
        &measured,
    )
}

async fn run_edit(args: EditArgs) -> anyhow::Result<()> {
    let codes = Arc::new(seed::read_codes(&args.codes)?);
    let target = Target::parse(&args.target)?;
    let draw = zipf_draw(codes.len(), args.zipf)?;
    let load = load(&args.target, &args.run).await?;
    let run_id = run_id();
    let measured = engine::run(&load, |k| {
        Edits::new(
            target.clone(),
            args.api_key.clone(),
            Arc::clone(&codes),
            draw.clone(),
            &run_id,
            k,
        )
    })
    .await;
    finish(
        &args.run,
        "edit".to_owned(),
        args.target.as_str(),
        &load,
        &measured,
    )
}

async fn run_webhook_receiver(args: ReceiverArgs) -> anyhow::Result<()> {
    use secrecy::ExposeSecret as _;
    let settings = receiver::Settings {
        listen: args.listen.clone(),
        secret: args
            .secret
            .as_ref()
            .map(|secret| secret.expose_secret().to_owned()),
        status: actix_web::http::StatusCode::from_u16(args.status)?,
        workers: args.workers,
    };
    let receiver =
        Receiver::bind(settings).with_context(|| format!("webhook receiver on {}", args.listen))?;
    println!("webhook receiver listening on {}", receiver.address());
    let summary = receiver.run(args.duration).await?;
    summary.save(&args.json)?;
    println!("{}", summary.line());
    Ok(())
}

/// Codes drawn with Zipf skew `exponent` (0: uniform) from `count`.
fn zipf_draw(count: usize, exponent: f64) -> anyhow::Result<Draw> {
    if !(exponent.is_finite() && exponent >= 0.0) {
        bail!("--zipf must be a number >= 0");
    }
    Ok(Draw::Zipf(Arc::new(Zipf::new(count, exponent))))
}

async fn load(url: &url::Url, run: &RunArgs) -> anyhow::Result<Load> {
    if run
        .rate
        .is_some_and(|rate| !(rate.is_finite() && rate > 0.0))
    {
        bail!("--rate must be a positive number of requests per second");
    }
    if run.connections == 0 {
        bail!("--connections must be at least 1");
    }
    Ok(Load {
        address: resolve(url).await?,
        rate: run.rate,
        duration: run.duration,
        warmup: run.warmup,
        connections: run.connections,
        timeout: run.timeout,
    })
}

fn finish(
    run: &RunArgs,
    default_label: String,
    target: &str,
    load: &Load,
    measured: &engine::Measured,
) -> anyhow::Result<()> {
    let label = run.label.clone().unwrap_or(default_label);
    let report = Report::new(&label, target, load.rate, load.connections, measured);
    println!("{}", report.table());
    if let Some(path) = &run.json {
        report.save(path)?;
    }
    if let Some(path) = &run.plot {
        plot::latency_by_percentile(std::slice::from_ref(&report), path, &label)?;
    }
    Ok(())
}

async fn resolve(url: &url::Url) -> anyhow::Result<SocketAddr> {
    let host = url.host_str().context("the target URL has no host")?;
    let port = url
        .port_or_known_default()
        .context("the target URL has no port")?;
    tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))
}

fn run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{millis:x}")
}

/// `10s`, `500ms`, `2m`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 10s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?}: use ms, s or m")),
    };
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(format!("{text:?} is not a duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
