//! `GET /v1/urls/{code}/qr`: the QR code of a short URL, as SVG (default) or PNG. A code's short URL never
//! changes (codes are never reused, even after a delete), so browsers may keep the image.

use actix_web::{http::header, web, HttpResponse};
use serde::Deserialize;

use crate::{
    auth::Viewer,
    errors::{ApiError, ErrorCode},
    qr::Matrix,
    routes::body::{ErrorBody, RateLimited, Unauthorized, Unavailable},
    state::AppState,
};

/// Smallest, default and largest side of the image, in pixels. Below 64 a phone camera struggles with a long
/// URL's code; above 1024 the PNG costs more to make than it is worth.
pub const MIN_SIZE: u32 = 64;
const DEFAULT_SIZE: u32 = 256;
/// Largest side of the image, in pixels.
pub const MAX_SIZE: u32 = 1024;

/// How long browsers keep the image: private, since it is answered to a key.
const CACHE_CONTROL: &str = "private, max-age=86400";

/// Query of the QR call.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QrQuery {
    /// `svg` (default) or `png`.
    #[param(pattern = "^(svg|png)$")]
    format: Option<String>,
    /// Side in pixels, 64 to 1024 (default 256).
    #[param(minimum = 64, maximum = 1024)]
    size: Option<u32>,
    /// Read by [`crate::routes::LinkAt`]; documented by [`crate::routes::DomainQuery`].
    #[serde(default)]
    #[param(ignore)]
    #[allow(dead_code)]
    domain: Option<String>,
}

/// The image formats.
#[derive(Debug, Clone, Copy)]
enum Format {
    Svg,
    Png,
}

impl QrQuery {
    fn checked(&self) -> Result<(Format, u32), ApiError> {
        let format = match self.format.as_deref() {
            None | Some("svg") => Format::Svg,
            Some("png") => Format::Png,
            Some(other) => {
                return Err(ApiError::InvalidField {
                    code: ErrorCode::InvalidFormat,
                    message: format!("format must be svg or png, not {other:?}"),
                })
            }
        };
        let size = self.size.unwrap_or(DEFAULT_SIZE);
        if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
            return Err(ApiError::InvalidField {
                code: ErrorCode::InvalidSize,
                message: format!(
                    "size must be between {MIN_SIZE} and {MAX_SIZE} pixels, not {size}"
                ),
            });
        }
        Ok((format, size))
    }
}

/// `GET /v1/urls/{code}/qr?format=svg|png&size=N`: the QR code of the caller's link's short URL. Without a key
/// (only when anonymous creation is allowed) it answers for links nobody owns.
#[utoipa::path(
    get,
    path = "/v1/urls/{code}/qr",
    tag = "links",
    params(("code" = String, Path, description = "The short code"), QrQuery, crate::routes::DomainQuery),
    responses(
        (status = 200, description = "The QR code of the short URL, cacheable (`Cache-Control`)", content(
            (String = "image/svg+xml"),
            (Vec<u8> = "image/png")
        )),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such link of the caller's", body = ErrorBody),
        (status = 422, description = "invalid_format, invalid_size, invalid_query", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn qr(
    state: web::Data<AppState>,
    viewer: Viewer,
    at: crate::routes::LinkAt,
    query: web::Query<QrQuery>,
) -> Result<HttpResponse, ApiError> {
    let (format, size) = query.checked()?;
    if !state
        .store
        .is_live_link_of(viewer.owner_id, &at.key)
        .await?
    {
        return Err(at.not_found());
    }
    let matrix = Matrix::of(&state.short_url(&at.key)).map_err(|error| {
        ApiError::Internal(anyhow::anyhow!("no QR code for {}: {error}", at.code))
    })?;
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    Ok(match format {
        Format::Svg => response
            .content_type("image/svg+xml")
            .body(matrix.svg(size)),
        Format::Png => response.content_type("image/png").body(
            matrix
                .png(size)
                .map_err(|error| ApiError::Internal(error.into()))?,
        ),
    })
}
