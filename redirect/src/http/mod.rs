//! The redirect's HTTP side: the one route's handler and the state it shares, the answers and pages it sends, and
//! the bounds a client meets on its way to them. What a code's link is comes from [`crate::tiers`]; a visit is
//! counted by [`crate::hits`].
//!
//! - [`follow`]: the handler of `GET`/`HEAD`/`POST /{code}` and `GET /{code}+`.
//! - [`state`]: what the handlers share, per process and per HTTP worker.
//! - [`route`]: links with rules or variants: where this visitor goes, and the cookie that keeps a variant.
//! - [`site`]: the domain a request is on: its links' keys, its root, not-found and robots answers.
//! - [`answer`]: turning a target into an HTTP answer (status, Location, caching headers, 404/410 bodies).
//! - [`pages`]: the password form and the preview page.
//! - [`unlock`]: `POST /{code}`, a password try on a protected link.
//! - [`checks`]: the bounds on password tries (per client, per IPv6 /48, per link) and the checks' turns.
//! - [`tries`]: the bound on password tries per link, whoever makes them, with a lock that backs off.
//! - [`misses`]: the bound on unknown codes per client (429 past it).

pub mod answer;
pub mod checks;
pub mod follow;
pub mod misses;
pub mod pages;
pub mod route;
pub mod site;
pub mod state;
pub mod tries;
pub mod unlock;
