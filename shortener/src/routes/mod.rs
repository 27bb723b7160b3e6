//! The API's resources, one module each.

pub mod urls;
