//! The API's resources: creating links (one or a batch), and the caller's own links.

pub mod body;
pub mod openapi;
pub mod owned;
pub mod urls;
