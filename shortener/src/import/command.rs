//! The operator's `shortener import --format F FILE --owner KEY_ID [--domain HOST] [--dry-run]`: the same import
//! as `POST /v1/import`, from a file on disk, for a key named by its ID (an operator has its ID, not the key). It
//! leases a worker ID (and blocks of the code counter) as `serve` does, and gives them back when done. New links
//! are not written through to Redis: the redirect finds them in PostgreSQL (a code someone tried a moment ago is
//! known after the negative cache entry's short TTL).

use std::{io::Read as _, process::ExitCode, sync::Arc};

use anyhow::Context as _;
use idgen::{blocks::CodeBlocks, metrics::BlockMetrics, LeasedGenerator};
use links::store::Store;
use plumbing::tasks::{StopSequence, Supervisor};
use prometheus::Registry;

use super::{writer::Target, Format};
use crate::{
    codes::{CodeStyle, Minter},
    config::ImportArgs,
    routes::fields,
};

/// Bytes read from the file at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// Chunks read ahead of the import.
const CHUNKS_AHEAD: usize = 4;

/// Runs `shortener import`.
///
/// # Errors
/// When a dependency is unreachable, the owner is no live key, or the file is not of its format.
pub async fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let format: Format = args
        .format
        .parse()
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let store = crate::stores::connect_and_migrate(&args.database).await?;
    check_owner(&store, args.owner).await?;
    let domains = links::domain::Domains::default();
    domains
        .reload(&store)
        .await
        .context("loading the domains")?;
    let domains = domains.load_full();
    let domain = fields::domain_within(args.domain.as_deref(), &domains)
        .map_err(|error| anyhow::anyhow!("--domain: {error}"))?;
    let mut own_hosts: Vec<String> = args
        .own_hosts
        .iter()
        .map(|host| host.trim().to_ascii_lowercase())
        .filter(|host| !host.is_empty())
        .collect();
    own_hosts.extend(domains.default_domain().map(|domain| domain.host.clone()));
    let blocklist =
        crate::config::blocklist(&args.blocked_domains, args.blocklist_file.as_deref())?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open {}", args.file.display()))?;

    let registry = Registry::new();
    let supervisor = Supervisor::new(&registry)?;
    let LeasedGenerator { generator, keeper } = idgen::start(
        &args.idgen,
        idgen::metrics::IdgenMetrics::register(&registry)?,
        &supervisor,
    )
    .await?;
    let (codes, blocks) = minter(&args, &store, &registry, &supervisor).await?;
    let target = Target {
        store: &store,
        ids: &generator,
        codes: &codes,
        own_hosts: &own_hosts,
        blocklist: &blocklist,
        domains,
        owner_id: args.owner,
        domain,
        dry_run: args.dry_run,
        now: chrono::Utc::now(),
        announce: None,
    };
    let outcome = super::run(chunks_of(file), format, target).await;
    let mut stopping = StopSequence::new().then(keeper.stopped());
    if let Some(blocks) = blocks {
        stopping = stopping.then(async move { blocks.stopped().await });
    }
    supervisor.stop(stopping).await;
    let report = outcome.map_err(|error| anyhow::anyhow!("import failed: {error}"))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// Refuses an owner that is no live API key (the links would belong to nobody who can see them).
async fn check_owner(store: &Store, owner: i64) -> anyhow::Result<()> {
    let keys = store
        .list_api_keys()
        .await
        .context("cannot list API keys")?;
    let live = keys
        .iter()
        .any(|key| key.id == owner && key.revoked_at.is_none());
    anyhow::ensure!(
        live,
        "--owner {owner}: no live API key has this ID (shortener keys list)"
    );
    Ok(())
}

/// The codes of lines without one, made as `serve` makes them; and the blocks to give back at the end.
async fn minter(
    args: &ImportArgs,
    store: &Store,
    registry: &Registry,
    supervisor: &Supervisor,
) -> anyhow::Result<(Minter, Option<Arc<CodeBlocks>>)> {
    if args.code_style == CodeStyle::Snowflake {
        return Ok((Minter::Snowflake, None));
    }
    let key = args.code_key.key()?.context(
        "--code-style compact needs the code key: set CODE_KEY (or CODE_KEY_FILE) as for serve, or use \
         --code-style snowflake",
    )?;
    crate::codes::check_key(store, &key).await?;
    let blocks = CodeBlocks::start(
        args.idgen.blocks()?,
        BlockMetrics::register(registry)?,
        supervisor,
    )
    .await
    .context("cannot lease a block of the code counter from ZooKeeper (--zookeeper-connect)")?;
    let codes = links::code::CompactCodes::new(&key);
    Ok((
        Minter::Compact {
            blocks: Arc::clone(&blocks),
            codes,
        },
        Some(blocks),
    ))
}

/// The file's chunks, read by a thread of its own a few chunks ahead (the runtime has no file I/O of its own
/// here, and a blocking read must not hold one of its workers).
fn chunks_of(
    mut file: std::fs::File,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(CHUNKS_AHEAD);
    std::thread::spawn(move || loop {
        let mut chunk = vec![0; CHUNK_BYTES];
        let read = match file.read(&mut chunk) {
            Ok(0) => return,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => {
                let _ = sender.blocking_send(Err(error));
                return;
            }
        };
        chunk.truncate(read);
        if sender.blocking_send(Ok(chunk)).is_err() {
            // The import stopped reading (it failed): nothing more to read for.
            return;
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    })
}
