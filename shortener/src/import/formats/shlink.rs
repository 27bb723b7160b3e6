//! `format=shlink`: the CSV that Shlink's web client exports from its short URL list ("Export" button:
//! `short_urls.csv`). Read from shlinkio/shlink-web-component `src/short-urls/helpers/ExportShortUrlsBtn.tsx`
//! (the row: `createdAt`, `domain`, `shortCode`, `shortUrl`, `longUrl`, `title`, `tags` joined with `|`,
//! `visits` = `visitsSummary.total`) and `src/utils/services/ReportExporter.ts` (json2csv: a header row, quoted
//! fields). Shlink's own CSV import (shlinkio/shlink-importer `src/Sources/Csv/CsvImporter.php`) names the same
//! columns, so a file written for it reads too. The export has no expiry; `domain` and `title` are not kept (the
//! import's `?domain=` says where the links go).

use crate::errors::ApiError;
use crate::import::row::{count, fold_tags, instant, Header, Row};

/// Refuses a header without `longUrl`.
///
/// # Errors
/// 422 `invalid_file`.
pub fn check(header: &Header) -> Result<(), ApiError> {
    header.require("shlink", &["longurl"])
}

/// A record as a row.
///
/// # Errors
/// `invalid_line` for a date or count that does not parse.
pub fn row(header: &Header, record: &[String]) -> Result<Row, ApiError> {
    Ok(Row {
        code: header.get(record, &["shortcode"]).map(str::to_owned),
        long_url: header
            .get(record, &["longurl"])
            .unwrap_or_default()
            .to_owned(),
        tags: fold_tags(header.get(record, &["tags"]).unwrap_or_default().split('|')),
        created_at: header
            .get(record, &["createdat", "datecreated"])
            .map(|raw| instant(raw, "createdAt"))
            .transpose()?,
        expires_at: header
            .get(record, &["validuntil"])
            .map(|raw| instant(raw, "validUntil"))
            .transpose()?,
        hits: header
            .get(record, &["visits", "visitscount"])
            .map(|raw| count(raw, "visits"))
            .transpose()?
            .unwrap_or(0),
    })
}
