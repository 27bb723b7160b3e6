//! API-key authentication: `Authorization: Bearer <key>` on every /v1 call, resolved to the key's owner ID.

use std::{future::Future, pin::Pin};

use actix_web::{http::header, web, FromRequest, HttpRequest};

use crate::{errors::ApiError, state::AppState};

/// The authenticated caller: the ID of the API key that signed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The API key's ID, the owner of the links it creates.
    pub owner_id: i64,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let key = bearer_key(req);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let (Some(key), Some(state)) = (key, state) else {
                return Err(ApiError::Unauthorized);
            };
            match state.store.owner_of_key(&key).await? {
                Some(owner_id) => Ok(Caller { owner_id }),
                None => Err(ApiError::Unauthorized),
            }
        })
    }
}

fn bearer_key(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then(|| key.to_owned())
}
