//! The API's resources: creating links (one or a batch), the caller's own links (read, list, change, delete), their QR codes and hits per
//! day, and the web page that uses them.

pub mod batch_items;
pub mod body;
pub mod create_links;
pub mod export;
pub mod hits;
pub mod openapi;
pub mod owned;
pub mod patch;
pub mod qr;
pub mod stats;
pub mod urls;
pub mod web;
