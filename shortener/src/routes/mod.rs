//! The API's resources: creating links (one or a batch), the caller's own links (read, list, change, delete), their QR codes and hits per
//! day, and the web page that uses them.

pub mod batch_items;
pub mod body;
pub mod create_links;
pub mod export;
pub mod fields;
pub mod hits;
pub mod openapi;
pub mod owned;
pub mod patch;
pub mod qr;
pub mod stats;
pub mod urls;
pub mod web;

use crate::errors::ApiError;

/// The `{code}` of a link's path, checked before it reaches a query: text no link can have (a NUL, a space, 65
/// characters) is a 404 at once. PostgreSQL refuses a NUL in text with an error, which was a 500.
///
/// # Errors
/// [`ApiError::NotFound`] for a code no link can have.
pub fn code_of(path: actix_web::web::Path<String>) -> Result<String, ApiError> {
    let code = path.into_inner();
    if links::code::is_plausible(&code) {
        Ok(code)
    } else {
        Err(ApiError::NotFound(
            code.chars().take(links::code::MAX_CODE_LEN).collect(),
        ))
    }
}
