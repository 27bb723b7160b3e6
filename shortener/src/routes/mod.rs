//! The API's resources: creating links (one or a batch), the caller's own links (read, list, change, delete), their QR codes and hits per
//! day, and the web page that uses them; [`LinkAt`], the link a code-addressed call names (its `?domain=` too).

pub mod batch_items;
pub mod body;
pub mod create_links;
pub mod events;
pub mod export;
pub mod fields;
pub mod hits;
pub mod openapi;
pub mod owned;
pub mod patch;
pub mod qr;
pub mod schemas;
pub mod stats;
pub mod urls;
pub mod web;

use std::future::{ready, Ready};

use actix_web::{FromRequest, HttpRequest};

use crate::{errors::ApiError, state::AppState};

/// The link a code-addressed call names: the `{code}` of its path on the domain of its `?domain=HOST` (the
/// default domain when absent). Text no link can have (a NUL, a space, 65 characters) is a 404 at once, before
/// any query (PostgreSQL refuses a NUL in text with an error, which was a 500); so is a domain that is not
/// registered.
#[derive(Debug, Clone)]
pub struct LinkAt {
    /// The key the link is stored under (`links::domain::link_key`).
    pub key: String,
    /// The code as the path names it, for messages.
    pub code: String,
}

impl LinkAt {
    /// 404 for this link.
    pub fn not_found(&self) -> ApiError {
        ApiError::NotFound(self.code.clone())
    }

    fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        let code = req.match_info().get("code").unwrap_or_default();
        if !links::code::is_plausible(code) {
            return Err(ApiError::NotFound(
                code.chars().take(links::code::MAX_CODE_LEN).collect(),
            ));
        }
        let not_found = || ApiError::NotFound(code.to_owned());
        let domain = url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(name, _)| name == "domain")
            .map(|(_, host)| host);
        let host = match domain {
            None => None,
            Some(raw) => {
                let state = req
                    .app_data::<actix_web::web::Data<AppState>>()
                    .ok_or_else(not_found)?;
                let host = links::domain::normalize_host(&raw).ok_or_else(not_found)?;
                let table = state.domains.load();
                let domain = table.get(&host).ok_or_else(not_found)?;
                (!domain.is_default).then_some(host)
            }
        };
        Ok(Self {
            key: links::domain::link_key(host.as_deref(), code),
            code: code.to_owned(),
        })
    }
}

impl FromRequest for LinkAt {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(Self::of(req))
    }
}

/// `?domain=HOST` of a code-addressed call, for the OpenAPI document (read by [`LinkAt`]).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DomainQuery {
    /// The registered domain the link is on (`GET /v1/domains`); the default domain when absent.
    #[param(max_length = 253)]
    pub domain: Option<String>,
}
