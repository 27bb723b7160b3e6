//! Flags shared by every embedder of the generator (the idgen service and the shortener), so both lease and
//! lay out IDs the same way.

use std::time::Duration;

use secrecy::SecretString;

use crate::{
    blocks::{BlockOptions, CounterOptions, DEFAULT_MAX_BLOCK},
    layout::{DEFAULT_BITS, DEFAULT_EPOCH_MS},
    zookeeper::{BadZooKeeperAuth, ZooKeeperAuth, ZooKeeperOptions},
    Layout, LayoutError, LeaseOptions,
};

// Defaults, each written once for its flag and for `IdgenArgs::new`, so the two cannot drift. The ID layout's
// are the layout's own (`Layout::default`).
const DEFAULT_LEASE_ROOT: &str = "/snowlink/idgen";
const DEFAULT_SESSION_TIMEOUT_MS: u64 = 6_000;
const DEFAULT_ZOOKEEPER_TIMEOUT_MS: u64 = 3_000;
const DEFAULT_LEASE_SAFETY_MARGIN_MS: u64 = 2_000;
// The clock: how often its mark is recorded, how far ahead of it a mark may be, how far back it may step.
const DEFAULT_MARK_INTERVAL_MS: u64 = 1_000;
const DEFAULT_MAX_MARK_WAIT_MS: u64 = 30_000;
const DEFAULT_MAX_CLOCK_BACKWARDS_MS: u64 = 5;
const DEFAULT_CODE_BLOCK_SIZE: u64 = crate::blocks::DEFAULT_MIN_BLOCK;
const DEFAULT_TIME_BITS: u8 = DEFAULT_BITS.0;
const DEFAULT_WORKER_BITS: u8 = DEFAULT_BITS.1;
const DEFAULT_SEQUENCE_BITS: u8 = DEFAULT_BITS.2;

/// The ID layout: what issues IDs and what reads the time back out of one (the redirect, to tell a code minted
/// a moment ago from an old or made-up one) must agree on it, so both flatten these flags.
#[derive(Debug, Clone, clap::Args)]
pub struct LayoutArgs {
    /// Epoch of the ID's time field, in Unix milliseconds (default 2026-01-01T00:00:00Z).
    #[arg(long, env = "IDGEN_EPOCH_MS", default_value_t = DEFAULT_EPOCH_MS)]
    pub epoch_ms: u64,
    /// Bits of milliseconds since the epoch.
    #[arg(long, env = "IDGEN_TIME_BITS", default_value_t = DEFAULT_TIME_BITS)]
    pub time_bits: u8,
    /// Bits of worker ID (2^bits generators at most).
    #[arg(long, env = "IDGEN_WORKER_BITS", default_value_t = DEFAULT_WORKER_BITS)]
    pub worker_bits: u8,
    /// Bits of per-millisecond sequence (2^bits IDs per ms per worker).
    #[arg(long, env = "IDGEN_SEQUENCE_BITS", default_value_t = DEFAULT_SEQUENCE_BITS)]
    pub sequence_bits: u8,
}

impl Default for LayoutArgs {
    fn default() -> Self {
        Self {
            epoch_ms: DEFAULT_EPOCH_MS,
            time_bits: DEFAULT_TIME_BITS,
            worker_bits: DEFAULT_WORKER_BITS,
            sequence_bits: DEFAULT_SEQUENCE_BITS,
        }
    }
}

impl LayoutArgs {
    /// The layout these flags describe.
    ///
    /// # Errors
    /// When the bits do not fit.
    pub fn layout(&self) -> Result<Layout, LayoutError> {
        Layout::new(
            self.epoch_ms,
            self.time_bits,
            self.worker_bits,
            self.sequence_bits,
        )
    }
}

/// ID layout and worker-ID lease settings.
#[derive(Debug, Clone, clap::Args)]
pub struct IdgenArgs {
    /// ZooKeeper connect string (`host:port[,host:port…][/chroot]`).
    #[arg(long, env = "ZOOKEEPER_CONNECT", default_value = "127.0.0.1:52181")]
    pub zookeeper_connect: String,
    /// ZooKeeper digest credentials, `user:password`: sessions authenticate with them and every node is created
    /// readable and writable by this identity only. Unset: nodes are world-writable (a ZooKeeper only snowlink
    /// reaches). Every snowlink service of a deployment must use the same value.
    #[arg(long, env = "ZOOKEEPER_AUTH", hide_env_values = true)]
    pub zookeeper_auth: Option<SecretString>,
    /// ZooKeeper node under which worker IDs are leased.
    #[arg(long, env = "IDGEN_LEASE_ROOT", default_value = DEFAULT_LEASE_ROOT)]
    pub lease_root: String,
    /// ZooKeeper session timeout in milliseconds: a dead generator's worker ID is free again after this.
    #[arg(long, env = "IDGEN_SESSION_TIMEOUT_MS", default_value_t = DEFAULT_SESSION_TIMEOUT_MS)]
    pub session_timeout_ms: u64,
    /// Bound on every ZooKeeper call, in milliseconds.
    #[arg(long, env = "IDGEN_ZOOKEEPER_TIMEOUT_MS", default_value_t = DEFAULT_ZOOKEEPER_TIMEOUT_MS)]
    pub zookeeper_timeout_ms: u64,
    /// Stop issuing IDs this many milliseconds before ZooKeeper could expire a silent session: IDs are issued
    /// only until the last answer from ZooKeeper + session timeout − this margin.
    #[arg(long, env = "IDGEN_LEASE_SAFETY_MARGIN_MS", default_value_t = DEFAULT_LEASE_SAFETY_MARGIN_MS)]
    pub lease_safety_margin_ms: u64,
    /// How often, in milliseconds, the holder records its clock high-water mark in ZooKeeper (this also
    /// renews the lease).
    #[arg(long, env = "IDGEN_MARK_INTERVAL_MS", default_value_t = DEFAULT_MARK_INTERVAL_MS)]
    pub mark_interval_ms: u64,
    /// Longest wait, in milliseconds, for this clock to pass a worker ID's recorded mark; a mark further ahead
    /// is refused with an error.
    #[arg(long, env = "IDGEN_MAX_MARK_WAIT_MS", default_value_t = DEFAULT_MAX_MARK_WAIT_MS)]
    pub max_mark_wait_ms: u64,
    /// Lease only worker IDs below this number (default: all 2^worker-bits).
    #[arg(long, env = "IDGEN_MAX_WORKERS")]
    pub max_workers: Option<u64>,
    /// How IDs are laid out.
    #[command(flatten)]
    pub id_layout: LayoutArgs,
    /// Largest backwards clock step, in milliseconds, that is waited out rather than refused.
    #[arg(long, env = "IDGEN_MAX_CLOCK_BACKWARDS_MS", default_value_t = DEFAULT_MAX_CLOCK_BACKWARDS_MS)]
    pub max_clock_backwards_ms: u64,
    /// Numbers in a block of the code counter leased from ZooKeeper: the first block's size and the smallest;
    /// blocks grow while they last under a second (up to 1,000,000, or this if larger).
    #[arg(long, env = "IDGEN_CODE_BLOCK_SIZE", default_value_t = DEFAULT_CODE_BLOCK_SIZE,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub code_block_size: u64,
}

impl IdgenArgs {
    /// Defaults pointing at `zookeeper_connect` (tests build settings this way, never through the environment).
    pub fn new(zookeeper_connect: impl Into<String>) -> Self {
        Self {
            zookeeper_connect: zookeeper_connect.into(),
            zookeeper_auth: None,
            lease_root: DEFAULT_LEASE_ROOT.into(),
            session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
            zookeeper_timeout_ms: DEFAULT_ZOOKEEPER_TIMEOUT_MS,
            lease_safety_margin_ms: DEFAULT_LEASE_SAFETY_MARGIN_MS,
            mark_interval_ms: DEFAULT_MARK_INTERVAL_MS,
            max_mark_wait_ms: DEFAULT_MAX_MARK_WAIT_MS,
            max_workers: None,
            id_layout: LayoutArgs::default(),
            max_clock_backwards_ms: DEFAULT_MAX_CLOCK_BACKWARDS_MS,
            code_block_size: DEFAULT_CODE_BLOCK_SIZE,
        }
    }

    /// The layout these flags describe.
    ///
    /// # Errors
    /// When the bits do not fit.
    pub fn layout(&self) -> Result<Layout, LayoutError> {
        self.id_layout.layout()
    }

    /// How to reach ZooKeeper: the connect string, session timeout and identity every session of ours uses.
    ///
    /// # Errors
    /// Credentials that are not `user:password`.
    pub fn zookeeper(&self) -> Result<ZooKeeperOptions, BadZooKeeperAuth> {
        Ok(ZooKeeperOptions {
            connect: self.zookeeper_connect.clone(),
            session_timeout: Duration::from_millis(self.session_timeout_ms),
            auth: self
                .zookeeper_auth
                .clone()
                .map(ZooKeeperAuth::new)
                .transpose()?,
        })
    }

    /// The lease settings.
    ///
    /// # Errors
    /// Credentials that are not `user:password`.
    pub fn lease(&self) -> Result<LeaseOptions, BadZooKeeperAuth> {
        Ok(LeaseOptions {
            zookeeper: self.zookeeper()?,
            root: self.lease_root.clone(),
            call_timeout: Duration::from_millis(self.zookeeper_timeout_ms),
            safety_margin: Duration::from_millis(self.lease_safety_margin_ms),
            mark_interval: Duration::from_millis(self.mark_interval_ms),
            max_mark_wait: Duration::from_millis(self.max_mark_wait_ms),
            max_workers: self.max_workers,
        })
    }

    /// The code counter `{lease_root}/code-counter` and its block sizes.
    ///
    /// # Errors
    /// Credentials that are not `user:password`.
    pub fn blocks(&self) -> Result<BlockOptions, BadZooKeeperAuth> {
        Ok(BlockOptions {
            counter: CounterOptions {
                zookeeper: self.zookeeper()?,
                path: format!("{}/code-counter", self.lease_root.trim_end_matches('/')),
                call_timeout: Duration::from_millis(self.zookeeper_timeout_ms),
            },
            min_block: self.code_block_size,
            max_block: DEFAULT_MAX_BLOCK.max(self.code_block_size),
        })
    }
}
