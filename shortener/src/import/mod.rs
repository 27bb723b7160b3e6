//! Imports: links brought over from another shortener's export file (`POST /v1/import`, `shortener import`).
//! The file streams through: chunks are parsed as they arrive into rows (each with its line), rows are checked
//! and written [`BATCH_ROWS`] at a time, so a million-line file holds one chunk and one batch in memory, never
//! the file. A bad line is reported with its number and changes nothing; the other lines still import; running
//! the same file again imports nothing twice (see [`writer`]).
//!
//! # Layout
//! - [`parser`]: the [`Format`]s and the parser from chunks to rows.
//! - [`formats`]: one module per format, each naming the file it reads and where its format was found.
//! - [`csv_records`], [`json_elements`]: reading CSV records and a JSON array's elements incrementally, bounded.
//! - [`row`]: the row every format makes, and the helpers formats share.
//! - [`writer`]: checking and writing batches; the report.
//! - [`route`]: `POST /v1/import`, one import at a time per process.
//! - [`command`]: the operator's `shortener import`.

pub mod command;
pub mod csv_records;
pub mod formats;
pub mod json_elements;
pub mod parser;
pub mod route;
pub mod row;
pub mod writer;

use futures_util::{Stream, StreamExt as _};

pub use self::parser::Format;
use self::{
    parser::Parser,
    writer::{ImportReport, Target, Writer},
};
use crate::errors::{ApiError, ErrorCode};

/// Rows checked and written together: one lookup of taken codes, one of reusable links, one insert statement.
pub const BATCH_ROWS: usize = 500;

/// Largest file an import reads.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Imports the file `chunks` hold, in `format`, into `target`.
///
/// # Errors
/// 422 `invalid_file` when the file is not of its format, 413 past [`MAX_FILE_BYTES`], 400 when the body cannot
/// be read, 503 when a dependency fails (the batches written before stay written).
pub async fn run<S, C, E>(
    chunks: S,
    format: Format,
    target: Target<'_>,
) -> Result<ImportReport, ApiError>
where
    S: Stream<Item = Result<C, E>>,
    C: AsRef<[u8]>,
    E: std::fmt::Display,
{
    let mut chunks = std::pin::pin!(chunks);
    let mut parser = Parser::new(format);
    let mut writer = Writer::new(target);
    let mut rows = Vec::new();
    let mut read: u64 = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| ApiError::InvalidField {
            code: ErrorCode::MalformedBody,
            message: format!("the file could not be read: {error}"),
        })?;
        let chunk = chunk.as_ref();
        read += chunk.len() as u64;
        if read > MAX_FILE_BYTES {
            return Err(ApiError::InvalidField {
                code: ErrorCode::BodyTooLarge,
                message: format!("an import file is at most {} GiB", MAX_FILE_BYTES >> 30),
            });
        }
        parser.feed(chunk, &mut rows)?;
        while rows.len() >= BATCH_ROWS {
            let rest = rows.split_off(BATCH_ROWS);
            writer.write(std::mem::replace(&mut rows, rest)).await?;
        }
    }
    parser.finish(&mut rows)?;
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(BATCH_ROWS));
        writer.write(std::mem::replace(&mut rows, rest)).await?;
    }
    Ok(writer.finish())
}
