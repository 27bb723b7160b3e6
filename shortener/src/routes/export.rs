//! `GET /v1/urls/export.csv`: all of the caller's live links (or those with a tag, or matching a search) as CSV,
//! streamed a page at a time from the database by keyset, so an export of a million links holds one page in
//! memory, never the whole set.

use actix_web::{
    http::header::{self, ContentDisposition, DispositionParam, DispositionType},
    web::{self, Bytes},
    HttpResponse,
};
use links::manage::{LinkFilter, LinkWithHits};
use serde::Deserialize;

use crate::{
    auth::Caller,
    errors::ApiError,
    routes::{body::ErrorBody, owned::link_filter},
    state::AppState,
};

/// Links read from the database per page of the export.
pub const PAGE: i64 = 1000;

/// Longest PostgreSQL may spend reading one page: a streamed export outlives its request's deadline, so each
/// page gets a bound of its own, and a client that stops reading holds no statement past it.
const PAGE_READ_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// The header row.
const HEADER: &str = "code,short_url,long_url,created_at,expires_at,redirect,tags,hits\r\n";

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
    header_sent: bool,
    done: bool,
}

/// `GET /v1/urls/export.csv`: the caller's live links, newest first, as CSV (RFC 4180, CRLF line ends, a header
/// row; `tags` space-separated). A database failure after the first bytes ends the stream early: the client sees
/// a truncated download, never a partial file presented as complete (the connection is closed without the final
/// chunk).
#[utoipa::path(
    get,
    path = "/v1/urls/export.csv",
    tag = "links",
    params(ExportQuery),
    responses(
        (status = 200, description = "The links as CSV", content_type = "text/csv", body = String),
        (status = 401, description = "No or bad API key", body = ErrorBody),
        (status = 422, description = "invalid_tag, invalid_query", body = ErrorBody),
        (status = 429, description = "rate_limited; see Retry-After", body = ErrorBody),
        (status = 503, description = "unavailable; see Retry-After", body = ErrorBody),
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
    // The first page is read before answering, so a database that is down is a 503, not an empty 200.
    let first = state
        .reads
        .list_owned(caller.owner_id, &filter, None, PAGE, PAGE_READ_WITHIN)
        .await?;
    let mut cursor = Cursor {
        state,
        owner_id: caller.owner_id,
        filter,
        before: None,
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
            .list_owned(
                cursor.owner_id,
                &cursor.filter,
                cursor.before,
                PAGE,
                PAGE_READ_WITHIN,
            )
            .await;
        Some(match page {
            Ok(page) => (Ok(cursor.render(page)), cursor),
            Err(error) => {
                tracing::warn!(error = %links::chain::Chain(&error), "export ended early");
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
        .streaming(body))
}

impl Cursor {
    /// A page as CSV lines (after the header, the first time); marks the end when the page is not full.
    fn render(&mut self, page: Vec<LinkWithHits>) -> Bytes {
        let mut out = String::with_capacity(page.len() * 160 + HEADER.len());
        if !self.header_sent {
            out.push_str(HEADER);
            self.header_sent = true;
        }
        if usize::try_from(PAGE).is_ok_and(|full| page.len() < full) {
            self.done = true;
        }
        if let Some(last) = page.last() {
            self.before = Some(last.link.id);
        }
        for row in &page {
            let link = &row.link;
            let fields = [
                link.code.clone(),
                self.state.short_url(&link.code),
                link.long_url.clone(),
                rfc3339(link.created_at),
                link.expires_at.map(rfc3339).unwrap_or_default(),
                link.redirect.code().to_string(),
                link.tags.join(" "),
                row.hits.to_string(),
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
