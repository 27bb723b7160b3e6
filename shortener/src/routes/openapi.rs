//! `GET /v1/openapi.json`: the OpenAPI 3 document of the API, generated from the handlers' annotations and the
//! very types they serialise, so it cannot drift from what the service answers.

use actix_web::HttpResponse;
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use crate::routes::{export, hits, owned, patch, qr, stats, urls};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "snowlink shortener",
        description = "Create, read, list, change and delete short links; their QR codes, hits per day and where clicks come from. Every call \
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
        stats::stats
    ),
    modifiers(&BearerKey),
    tags((name = "links", description = "Short links"))
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

/// The schema of a link's `redirect` field: one of the four redirect statuses, or null for the default (302).
/// utoipa has no field attribute for an enum of integers.
pub fn redirect_status() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .enum_values(Some([
            serde_json::json!(301),
            serde_json::json!(302),
            serde_json::json!(307),
            serde_json::json!(308),
            serde_json::Value::Null,
        ]))
        .examples([serde_json::json!(302)])
        .build()
}

/// The schema of a link's `tags`: up to 10 strings of 1 to 32 of `a-z 0-9 -` (duplicates are folded).
pub fn tags() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[a-z0-9-]{1,32}$"))
                .min_length(Some(1))
                .max_length(Some(32)),
        )
        .max_items(Some(10))
        .examples([serde_json::json!(["campaign", "q4"])])
        .build()
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
