//! The web page at `/` and its assets under `/static/`, compiled into the binary so the shortener serves them
//! with no build step and no files to deploy. No key is needed to load them; the page calls the API with the
//! key the person enters. Strict headers: scripts and styles only from this origin (no inline script), no
//! framing, no sniffing.

use actix_web::{http::header, web, HttpResponse};

use crate::{errors::ApiError, state::AppState};

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const APP_CSS: &str = include_str!("../../web/app.css");
const ICON_SVG: &str = include_str!("../../web/icon.svg");

/// Where the page tells its script whether anonymous creation is allowed.
const ANONYMOUS_PLACEHOLDER: &str = "{{allow_anonymous}}";

/// Everything the page may load comes from this origin; QR images arrive as `blob:` URLs, because they are
/// fetched with the key in a header, which an `<img src>` cannot send.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `GET /`: the page.
pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    let page = INDEX_HTML.replace(
        ANONYMOUS_PLACEHOLDER,
        if state.allow_anonymous {
            "true"
        } else {
            "false"
        },
    );
    hardened(HttpResponse::Ok())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("text/html; charset=utf-8")
        .body(page)
}

/// `GET /static/{file}`: one of the page's assets.
pub async fn asset(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    let (content_type, body) = match name.as_str() {
        "app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "app.css" => ("text/css; charset=utf-8", APP_CSS),
        "icon.svg" => ("image/svg+xml", ICON_SVG),
        _ => return Err(ApiError::NotFound(name)),
    };
    // Short: a new binary's assets reach browsers within minutes without versioned file names.
    Ok(hardened(HttpResponse::Ok())
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type(content_type)
        .body(body))
}

fn hardened(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    response
}
