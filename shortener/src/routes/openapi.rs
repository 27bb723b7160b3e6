//! `GET /v1/openapi.json`: the OpenAPI 3 document of the API, generated from the handlers' annotations and the
//! very types they serialise, so it cannot drift from what the service answers.

use actix_web::HttpResponse;
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use crate::routes::{
    body::{RateLimited, Unauthorized, Unavailable},
    export, hits, owned, patch, qr, stats, urls,
};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "snowlink shortener",
        description = "Create, read, list, change and delete short links; their QR codes, hits per day and where clicks come from; webhooks for their events. Every call \
                       needs `Authorization: Bearer <key>` \
                       (`shortener keys create --name NAME`). Errors are `{\"error\": {\"code\", \"message\"}}`; \
                       a method a path does not list is 405 `method_not_allowed` with `Allow`."
    ),
    paths(
        urls::create,
        urls::create_batch,
        owned::get,
        owned::list,
        export::export,
        owned::delete,
        patch::patch,
        qr::qr,
        hits::hits,
        stats::stats,
        crate::routes::events::events,
        crate::domains::list,
        crate::webhooks::routes::create,
        crate::webhooks::routes::list,
        crate::webhooks::routes::delete,
        crate::import::route::import
    ),
    components(
        responses(Unauthorized, RateLimited, Unavailable),
        schemas(
            crate::routes::schemas::RuleSchema,
            crate::routes::schemas::WhenSchema,
            crate::routes::schemas::VariantSchema
        )
    ),
    modifiers(&BearerKey),
    tags(
        (name = "links", description = "Short links"),
        (name = "domains", description = "The hosts links live on (`shortener domains add HOST`)"),
        (name = "webhooks", description = "Where the caller's events are POSTed, signed (`Snowlink-Signature`)")
    )
)]
pub struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sl_…")
                    .build(),
            ),
        );
    }
}

/// The document as JSON, built once: it never changes while the process runs.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"))
    })
}

/// `GET /v1/openapi.json` (no key needed).
pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}
