//! Webhooks: the caller's webhooks over the API, and the sending of one signed delivery to a URL the SSRF guard
//! lets through. What is stored is `links::webhooks`'; which events go where, queued and retried, is the
//! delivery task's.
//!
//! # Layout
//! - [`routes`]: `POST`, `GET /v1/webhooks` and `DELETE /v1/webhooks/{id}`.
//! - [`target`]: the SSRF guard: which URLs and addresses webhooks may reach.
//! - [`signature`]: `Snowlink-Signature`, made and checked.
//! - [`send`]: [`Sender`](send::Sender), one signed `POST` to a checked address.

pub mod routes;
pub mod send;
pub mod signature;
pub mod target;
