//! `POST /v1/import`: the caller's export file from another shortener as the body, imported as their links. An
//! import may run for minutes and write a million links, so one runs at a time per process (a second is answered
//! 503 `import_busy` at once), and it is exempt from the request deadline (each batch has its own bound).

use actix_web::{web, HttpResponse};
use serde::Deserialize;

use super::{
    writer::{ImportReport, Target},
    Format,
};
use crate::{
    auth::Caller,
    errors::ApiError,
    routes::{
        body::{ErrorBody, RateLimited, Unauthorized, Unavailable},
        fields,
    },
    state::AppState,
};

/// The route's path (exempt from the request deadline).
pub const PATH: &str = "/v1/import";

/// Query of an import.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The file's format: `bitly` (its API's list of links as JSON, or its web app's CSV export), `shlink` (its
    /// web client's CSV export), `yourls` (the `yourls_url` table as CSV), `kutt` (its API's list of links as
    /// JSON) or `csv` (a header naming `long_url` and any of `code`, `tags`, `created_at`, `expires_at`, `hits`).
    #[param(example = "shlink")]
    format: String,
    /// The registered domain the links go on (`GET /v1/domains`); the default domain when absent.
    #[param(max_length = 253)]
    domain: Option<String>,
    /// Check every line, codes taken included, and write nothing.
    dry_run: Option<bool>,
}

/// `POST /v1/import`: imports the export file in the body (up to 1 GiB, streamed) as the caller's links, keeping
/// codes as aliases, targets, tags, creation dates, expiry and visit totals where the file has them. A line that
/// cannot be imported is listed with its number and reason and changes nothing; the others still import. Running
/// the same file again imports nothing twice: a code the caller already has for the same URL is skipped silently,
/// a code held by another link is `alias_taken`, and a line without a code reuses the caller's live link for its
/// URL. Imports run one at a time per process: another while one runs is 503 `import_busy` with `Retry-After`.
/// When a dependency fails midway the answer is 503 and what was written stays: run the import again.
#[utoipa::path(
    post,
    path = "/v1/import",
    tag = "links",
    params(ImportQuery),
    request_body(content = String, content_type = "text/csv",
        description = "The export file: CSV, or JSON for kutt and for bitly's API list"),
    responses(
        (status = 200, description = "What was imported and which lines were not", body = ImportReport),
        (status = 400, description = "The body could not be read", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 413, description = "Body over 1 GiB", body = ErrorBody),
        (status = 422, description = "invalid_format, invalid_file, unknown_domain, invalid_query", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn import(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ImportQuery>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let ImportQuery {
        format,
        domain,
        dry_run,
    } = query.into_inner();
    let format: Format = format.parse()?;
    fields::load_domains(&state, domain.as_deref()).await;
    let domain = fields::domain(domain.as_deref(), &state)?;
    let _running = state
        .imports
        .try_acquire()
        .map_err(|_| ApiError::ImportBusy)?;
    let target = Target {
        store: &state.store,
        ids: &state.ids,
        codes: &state.codes,
        own_hosts: &state.own_hosts,
        blocklist: &state.blocklist,
        domains: state.domains.load_full(),
        owner_id: caller.owner_id,
        domain,
        dry_run: dry_run.unwrap_or(false),
        now: state.clock.now(),
        announce: Some(&state),
    };
    let report = super::run(body, format, target).await?;
    Ok(HttpResponse::Ok().json(report))
}
