//! `format=bitly`: either of the two files Bitly users have. Bitly's documented way out is its API's list of a
//! group's links, `GET /v4/groups/{group_guid}/bitlinks` (dev.bitly.com/api-reference, `getBitlinksByGroup`),
//! saved page by page: `{"links": [{"id", "link", "custom_bitlinks", "long_url", "title", "archived",
//! "created_at" (`2020-10-26T17:20:40+0000`), "tags"…}], "pagination": …}`; that is the file Kutt's issue #382
//! and Dub's issue #191 point Bitly users to, and what shlinkio/shlink-importer
//! `src/Sources/Bitly/BitlyApiImporter.php` reads (the code: the first of `custom_bitlinks`, else `link`). It has
//! no visit totals. The other is the CSV that Bitly's web app exports from the links list (a paid plan's
//! "Export"): a header row naming `Bitlink`, `Long URL` (or `Original URL`), `Title`, `Tags`, `Created`,
//! `Total Clicks`… (the columns as DhananjayThomble/URL-Shortener-App pull request #413 maps them); header names are
//! matched without case, and the visit totals are kept. The file's first character tells the two apart (`{` or
//! `[`: the API's JSON). A back-half is the last segment of its short URL; tags are folded into ours.

use serde::Deserialize;

use crate::errors::ApiError;
use crate::import::row::{bad_line, code_of_short_url, count, fold_tags, instant, Header, Row};

/// The key of the links' array in a page of the API's list.
pub const ARRAY_KEY: &str = "links";

/// Names of the CSV's columns, each with the spellings Bitly's exports have used.
const LONG_URL: &[&str] = &["long url", "long_url", "original url", "destination url"];
const BITLINK: &[&str] = &[
    "custom bitlink",
    "custom bitlinks",
    "bitlink",
    "short link",
    "link",
];
const CREATED: &[&str] = &["created", "date created", "created at", "created_at"];
const CLICKS: &[&str] = &["total clicks", "clicks", "total engagements", "engagements"];

/// A link of the API's list, as far as it is kept.
#[derive(Debug, Deserialize)]
struct Bitlink {
    link: Option<String>,
    #[serde(default)]
    custom_bitlinks: Vec<String>,
    long_url: Option<String>,
    created_at: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// Refuses a CSV header without a long URL column.
///
/// # Errors
/// 422 `invalid_file`.
pub fn check(header: &Header) -> Result<(), ApiError> {
    header.require("bitly", LONG_URL)
}

/// A record of the web app's CSV as a row.
///
/// # Errors
/// `invalid_line` for a date or count that does not parse.
pub fn row(header: &Header, record: &[String]) -> Result<Row, ApiError> {
    Ok(Row {
        code: header.get(record, BITLINK).and_then(code_of_short_url),
        long_url: header.get(record, LONG_URL).unwrap_or_default().to_owned(),
        tags: fold_tags(
            header
                .get(record, &["tags"])
                .unwrap_or_default()
                .split([',', '|']),
        ),
        created_at: header
            .get(record, CREATED)
            .map(|raw| instant(raw, "Created"))
            .transpose()?,
        expires_at: None,
        hits: header
            .get(record, CLICKS)
            .map(|raw| count(raw, "Total Clicks"))
            .transpose()?
            .unwrap_or(0),
    })
}

/// An element of the API's list as a row.
///
/// # Errors
/// `invalid_line` for an element that is not a bitlink object, or a date that does not parse.
pub fn element_row(element: &[u8]) -> Result<Row, ApiError> {
    let link: Bitlink = serde_json::from_slice(element)
        .map_err(|error| bad_line(format!("not a Bitly link: {error}")))?;
    let short = link.custom_bitlinks.first().or(link.link.as_ref());
    Ok(Row {
        code: short.and_then(|short| code_of_short_url(short)),
        long_url: link.long_url.unwrap_or_default(),
        tags: fold_tags(link.tags.iter().map(String::as_str)),
        created_at: link
            .created_at
            .as_deref()
            .map(|raw| instant(raw, "created_at"))
            .transpose()?,
        expires_at: None,
        hits: 0,
    })
}
