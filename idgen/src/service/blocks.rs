//! `POST /v1/blocks?size=N`: a block of the code counter for writers in other languages, `{"start", "end"}`
//! with `end` exclusive. Each request is a ZooKeeper write, so at most [`CONCURRENT_LEASES`] run at once in the
//! process; a request that cannot get a turn within [`TURN_WAIT`] is a 503, not a queue that grows.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::{retry_later, ErrorCode};
use crate::blocks::{Counter, DEFAULT_MAX_BLOCK, DEFAULT_MIN_BLOCK};

/// Leases in flight at most: a lease takes a few milliseconds, so a few at once keep up with any sane caller,
/// and a flood of requests cannot become a flood of ZooKeeper writes.
pub const CONCURRENT_LEASES: usize = 4;
/// How long a request waits for a turn before it is a 503.
pub const TURN_WAIT: Duration = Duration::from_secs(1);

/// The counter and the turns to lease from it.
pub struct BlockLeases {
    counter: Counter,
    turns: Semaphore,
}

impl BlockLeases {
    /// Leases from `counter`, [`CONCURRENT_LEASES`] at a time.
    pub fn new(counter: Counter) -> Self {
        Self {
            counter,
            turns: Semaphore::new(CONCURRENT_LEASES),
        }
    }
}

#[derive(Deserialize)]
pub(super) struct LeaseQuery {
    size: Option<String>,
}

pub(super) async fn lease_block(
    leases: web::Data<BlockLeases>,
    query: web::Query<LeaseQuery>,
) -> HttpResponse {
    let size = match query.size.as_deref().map(str::parse::<u64>) {
        None => DEFAULT_MIN_BLOCK,
        Some(Ok(size)) if (1..=DEFAULT_MAX_BLOCK).contains(&size) => size,
        Some(_) => {
            return ErrorCode::InvalidSize.answer(&format!(
                "size must be an integer from 1 to {DEFAULT_MAX_BLOCK}"
            ))
        }
    };
    let Ok(Ok(_turn)) = tokio::time::timeout(TURN_WAIT, leases.turns.acquire()).await else {
        return retry_later(
            ErrorCode::CounterUnavailable.answer("too many blocks are being leased at once"),
        );
    };
    match leases.counter.lease(size).await {
        Ok(block) => HttpResponse::Ok().json(serde_json::json!({
            "start": block.start,
            "end": block.end,
        })),
        Err(error) => {
            tracing::warn!(%error, size, "cannot lease a block of the code counter");
            retry_later(ErrorCode::CounterUnavailable.answer("the code counter is unavailable"))
        }
    }
}
