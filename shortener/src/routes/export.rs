//! `GET /v1/urls/export.csv`: all of the caller's live links (or those with a tag, or matching a search) as CSV,
//! streamed a page at a time from the database by keyset, so an export of a million links holds one page in
//! memory, never the whole set. A page is bounded in bytes as well as rows, exports hold a slot of
//! [`crate::exports`] while they run, and a client that stops reading loses the export and the slot after the idle
//! timeout (a watchdog, because a parked response body is not polled at all until its socket drains).

use std::{
    cell::{Cell, RefCell},
    pin::Pin,
    rc::{Rc, Weak},
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{
    http::header::{self, ContentDisposition, DispositionParam, DispositionType},
    web::{self, Bytes},
    HttpResponse,
};
use futures_util::Stream;
use links::manage::{ExportPage, LinkFilter};
use serde::Deserialize;
use tokio::time::Instant;

use crate::{
    auth::Caller,
    errors::ApiError,
    exports::ExportSlot,
    routes::{
        body::{ErrorBody, RateLimited, Unauthorized, Unavailable},
        owned::link_filter,
    },
    state::AppState,
};

/// Links read from the database per page of the export, at most.
pub const PAGE: i64 = 1000;

/// Longest PostgreSQL may spend reading one page: a streamed export outlives its request's deadline, so each
/// page gets a bound of its own, and a client that stops reading holds no statement past it.
const PAGE_READ_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Bytes of links (see `links::manage::export_page`) read per page, at most: 1,000 typical links (~150 bytes)
/// fit, 1,000 links of 2 KB URLs do not. The CSV of a page is about as large again, so a running export holds
/// well under 1 MiB whatever its links hold.
pub const PAGE_BYTES: i64 = 256 * 1024;

/// The header row.
/// `domain` came last, with domains: a script that reads the columns by position keeps working.
const HEADER: &str = "code,short_url,long_url,created_at,expires_at,redirect,tags,hits,domain\r\n";

/// Query of the export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only links with this tag (1 to 32 of `a-z 0-9 -`; 422 `invalid_tag`).
    #[param(pattern = "^[a-z0-9-]{1,32}$")]
    tag: Option<String>,
    /// Only links whose code or long URL contains this text, ignoring case (3 to 200 characters, no control
    /// characters; 422 `invalid_query`).
    #[param(
        min_length = 3,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    q: Option<String>,
}

/// Where the export has got to.
struct Cursor {
    state: web::Data<AppState>,
    owner_id: i64,
    filter: LinkFilter,
    before: Option<i64>,
    /// Rows asked for next: after a page cut by bytes, twice what fitted (up to [`PAGE`]), so PostgreSQL does not
    /// read 1,000 rows of large links to keep a hundred.
    rows: i64,
    header_sent: bool,
    done: bool,
}

/// `GET /v1/urls/export.csv`: the caller's live links, newest first, as CSV (RFC 4180, CRLF line ends, a header
/// row; `tags` space-separated). A database failure after the first bytes ends the stream early: the client sees
/// a truncated download, never a partial file presented as complete (the connection is closed without the final
/// chunk). So does a client that stops reading for the idle timeout. At most `--exports-per-key` exports of one key
/// run at once (429) and `--exports-max` in all (503).
#[utoipa::path(
    get,
    path = "/v1/urls/export.csv",
    tag = "links",
    params(ExportQuery),
    responses(
        (status = 200, description = "The links as CSV", content_type = "text/csv", body = String),
        (status = 401, response = Unauthorized),
        (status = 422, description = "invalid_tag, invalid_query", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn export(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let ExportQuery { tag, q } = query.into_inner();
    let filter = link_filter(tag, q)?;
    // The slot before any database work: a refused export costs nothing.
    let slot = state.exports.take(caller.owner_id)?;
    let idle_timeout = state.exports.idle_timeout();
    // The first page is read before answering, so a database that is down is a 503, not an empty 200.
    let first = state
        .reads
        .export_page(
            caller.owner_id,
            &filter,
            None,
            PAGE,
            PAGE_BYTES,
            PAGE_READ_WITHIN,
        )
        .await?;
    let cursor_state = state.clone();
    let mut cursor = Cursor {
        state,
        owner_id: caller.owner_id,
        filter,
        before: None,
        rows: PAGE,
        header_sent: false,
        done: false,
    };
    let first = cursor.render(first);
    let rest = futures_util::stream::unfold(cursor, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        let page = cursor
            .state
            .reads
            .export_page(
                cursor.owner_id,
                &cursor.filter,
                cursor.before,
                cursor.rows,
                PAGE_BYTES,
                PAGE_READ_WITHIN,
            )
            .await;
        Some(match page {
            Ok(page) => (Ok(cursor.render(page)), cursor),
            Err(error) => {
                tracing::warn!(error = %plumbing::chain::Chain(&error), "export ended early");
                cursor.done = true;
                (Err(ApiError::from(error)), cursor)
            }
        })
    });
    let body = futures_util::stream::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, ApiError>(first) }),
        rest,
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename("links.csv".into())],
        })
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(Watched::new(
            Box::pin(body),
            slot,
            idle_timeout,
            &cursor_state,
        )))
}

/// What the export's body and its watchdog share (one worker thread: actix runs a response on the thread that
/// made it).
struct Watch {
    /// Since when the last chunk has waited for the client to take it (`None` while the export itself works).
    waiting_since: Cell<Option<Instant>>,
    /// The export's slot, until the export ends or is cut.
    slot: RefCell<Option<ExportSlot>>,
    /// Whether the watchdog cut the export.
    cut: Cell<bool>,
    /// Counts cut exports.
    cut_total: prometheus::IntCounter,
}

/// The export's body, watched: actix asks for the next chunk only once the client has taken the last one, so the
/// time between handing a chunk out and being asked again is the time the client is not reading.
struct Watched<S> {
    inner: Pin<Box<S>>,
    watch: Rc<Watch>,
    /// Counts this response as open until it is dropped (its connection ended).
    open: prometheus::IntGauge,
}

impl<S> Watched<S> {
    fn new(inner: Pin<Box<S>>, slot: ExportSlot, idle_timeout: Duration, state: &AppState) -> Self {
        let watch = Rc::new(Watch {
            waiting_since: Cell::new(None),
            slot: RefCell::new(Some(slot)),
            cut: Cell::new(false),
            cut_total: state.exports.cut.clone(),
        });
        actix_web::rt::spawn(watchdog(Rc::downgrade(&watch), idle_timeout));
        let open = state.exports.open.clone();
        open.inc();
        Self { inner, watch, open }
    }
}

impl<S> Drop for Watched<S> {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl<S: Stream<Item = Result<Bytes, ApiError>>> Stream for Watched<S> {
    type Item = Result<Bytes, ApiError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.watch.waiting_since.set(None);
        if self.watch.cut.get() {
            // An error, not the end: the download must not look complete.
            return Poll::Ready(Some(Err(ApiError::Internal(anyhow::anyhow!(
                "the export was cut: its client stopped reading"
            )))));
        }
        let next = self.inner.as_mut().poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(_))) => self.watch.waiting_since.set(Some(Instant::now())),
            // Over: the slot is free at once, even if the connection lingers.
            Poll::Ready(_) => drop(self.watch.slot.borrow_mut().take()),
            Poll::Pending => {}
        }
        next
    }
}

/// Cuts the export once its client has not asked for the next chunk for `idle_timeout`: frees the slot, and the
/// body ends in an error when (if ever) it is polled again. Ends with the body.
async fn watchdog(watch: Weak<Watch>, idle_timeout: Duration) {
    let mut check_at = Instant::now() + idle_timeout;
    loop {
        tokio::time::sleep_until(check_at).await;
        let Some(watch) = watch.upgrade() else {
            return;
        };
        match watch.waiting_since.get() {
            Some(since) if since.elapsed() >= idle_timeout => {
                watch.cut.set(true);
                watch.cut_total.inc();
                if let Some(slot) = watch.slot.borrow_mut().take() {
                    tracing::info!(
                        owner_id = slot.owner_id(),
                        idle_ms = since.elapsed().as_millis(),
                        "export cut: its client stopped reading"
                    );
                }
                return;
            }
            Some(since) => check_at = since + idle_timeout,
            None => check_at = Instant::now() + idle_timeout,
        }
    }
}

impl Cursor {
    /// A page as CSV lines (after the header, the first time); marks the end when no links may follow.
    fn render(&mut self, page: ExportPage) -> Bytes {
        let ExportPage { links: page, more } = page;
        let mut out = String::with_capacity(page.len() * 160 + HEADER.len());
        if !self.header_sent {
            out.push_str(HEADER);
            self.header_sent = true;
        }
        if !more {
            self.done = true;
        }
        let fitted = i64::try_from(page.len()).unwrap_or(PAGE);
        self.rows = fitted.saturating_mul(2).clamp(1, PAGE);
        if let Some(last) = page.last() {
            self.before = Some(last.link.id);
        }
        for row in &page {
            let link = &row.link;
            let fields = [
                link.short_code().to_owned(),
                self.state.short_url(&link.code),
                link.long_url.clone(),
                rfc3339(link.created_at),
                link.expires_at.map(rfc3339).unwrap_or_default(),
                link.redirect.code().to_string(),
                link.tags.join(" "),
                row.hits.to_string(),
                link.domain_host()
                    .or_else(|| self.state.public_base_url.host_str())
                    .unwrap_or_default()
                    .to_owned(),
            ];
            for (index, field) in fields.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                push_field(&mut out, field);
            }
            out.push_str("\r\n");
        }
        Bytes::from(out)
    }
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One CSV field: quoted (quotes doubled) when it holds a comma, a quote or a line break; one a spreadsheet would
/// run as a formula (`=`, `+`, `-`, `@` first) is prefixed with `'`, so opening an export never runs anything.
fn push_field(out: &mut String, field: &str) {
    let formula = field.starts_with(['=', '+', '-', '@']);
    let quoted = formula || field.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for character in field.chars() {
        if character == '"' {
            out.push('"');
        }
        out.push(character);
    }
    if quoted {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_when_they_must_be_and_formulas_are_defused() {
        let field = |text: &str| {
            let mut out = String::new();
            push_field(&mut out, text);
            out
        };
        assert_eq!(field("https://example.com/a"), "https://example.com/a");
        assert_eq!(field("https://e.com/?a=1,2"), "\"https://e.com/?a=1,2\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("-x campaign"), "\"'-x campaign\"");
        assert_eq!(field("=cmd()"), "\"'=cmd()\"");
        assert_eq!(field(""), "");
    }
}
