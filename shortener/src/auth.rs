//! Who is calling: `Authorization: Bearer <key>` resolved to the key's owner ID, with the per-client limit
//! counted before the database is asked and the per-key limit after. A key that cannot be one of ours is refused
//! without a query, and keys the database does not know cost each client a bounded number of queries. [`Caller`] needs a key; [`Creator`] also accepts
//! anonymous callers when the operator allows them (with the stricter anonymous limit); [`Viewer`] too, without
//! spending that limit, for reads of what anonymous callers made (a QR code of their new link).

use std::{future::Future, pin::Pin};

use actix_web::{http::header, web, FromRequest, HttpRequest};
use links::apikey;
use plumbing::client_ip::ClientKey;

use crate::{errors::ApiError, hashing::Spender, key_cache::Cached, state::AppState};

/// An authenticated caller: the ID of the API key that signed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The API key's ID, the owner of the links it creates.
    pub owner_id: i64,
    /// Who sent the request (an address, an IPv6 /64), for budgets kept per client.
    pub client: ClientKey,
}

/// Who creates a link: a key's owner, or nobody when anonymous creation is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Creator {
    /// The owner, `None` for an anonymous creator.
    pub owner_id: Option<i64>,
    /// Who sent the request, for budgets kept per client.
    pub client: ClientKey,
}

impl Creator {
    /// Who pays for the password operations of this request: the key, or the client when anonymous.
    pub fn spender(&self) -> Spender {
        self.owner_id
            .map_or(Spender::Client(self.client), Spender::Key)
    }
}

/// Who reads a link's public face (its QR code): a key's owner, or an anonymous caller when anonymous creation
/// is allowed, who may see only links that nobody owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    /// The owner, `None` for an anonymous viewer.
    pub owner_id: Option<i64>,
}

type Authenticating<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Authenticating<Self>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let request = presented(req);
        Box::pin(async move {
            let (state, client, key) = request?;
            let key = key.ok_or(ApiError::Unauthorized)?;
            Ok(Caller {
                owner_id: authenticate(&state, client, &key).await?,
                client,
            })
        })
    }
}

impl FromRequest for Creator {
    type Error = ApiError;
    type Future = Authenticating<Self>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let request = presented(req);
        Box::pin(async move {
            let (state, client, key) = request?;
            match key {
                Some(key) => Ok(Creator {
                    owner_id: Some(authenticate(&state, client, &key).await?),
                    client,
                }),
                None if state.allow_anonymous => {
                    state.limits.check_anonymous(client)?;
                    Ok(Creator {
                        owner_id: None,
                        client,
                    })
                }
                None => Err(ApiError::Unauthorized),
            }
        })
    }
}

impl FromRequest for Viewer {
    type Error = ApiError;
    type Future = Authenticating<Self>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let request = presented(req);
        Box::pin(async move {
            let (state, client, key) = request?;
            match key {
                Some(key) => Ok(Viewer {
                    owner_id: Some(authenticate(&state, client, &key).await?),
                }),
                None if state.allow_anonymous => Ok(Viewer { owner_id: None }),
                None => Err(ApiError::Unauthorized),
            }
        })
    }
}

/// What a request presents: the state, who the client is and the bearer key, if any, once the per-client limit
/// let it through.
fn presented(
    req: &HttpRequest,
) -> Result<(web::Data<AppState>, ClientKey, Option<String>), ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("AppState is not registered")))?;
    let client = state.trusted_proxies.client(req);
    state.limits.check_ip(client)?;
    Ok((state, client, bearer_key(req)))
}

async fn authenticate(state: &AppState, client: ClientKey, key: &str) -> Result<i64, ApiError> {
    if !apikey::is_well_formed(key) {
        return Err(ApiError::Unauthorized);
    }
    let hash = apikey::hash(key);
    let owner_id = match state.key_owners.cached(&hash) {
        Cached::Owner(owner_id) => Some(owner_id),
        Cached::Unknown => None,
        Cached::NotCached => {
            state.limits.check_key_lookup(client)?;
            let owner_id = state.key_owners.look_up(&state.store, hash).await?;
            if owner_id.is_none() {
                state.limits.count_unknown_key(client);
            }
            owner_id
        }
        Cached::Untrusted => state.key_owners.look_up(&state.store, hash).await?,
    }
    .ok_or(ApiError::Unauthorized)?;
    state.limits.check_key(owner_id)?;
    Ok(owner_id)
}

fn bearer_key(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then(|| key.to_owned())
}
