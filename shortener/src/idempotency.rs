//! `Idempotency-Key` on the create calls, as payment APIs have it: the same key and the same request within
//! 24 hours get the first answer again (`Idempotent-Replayed: true`), so a client may retry a create that timed
//! out without making a second link. Keys belong to the API key that sent them; anonymous callers cannot use
//! them (nothing identifies them well enough to keep one caller's answers from another behind the same address).
//!
//! A request with a key runs in one transaction of its own: the claim of the key (an advisory lock, so a
//! concurrent duplicate gets 409 at once instead of holding a connection until the first is done), the links
//! and the recorded answer commit together or not at all. Only 2xx and 4xx answers are recorded: after a 5xx
//! nothing was kept, and a retry really retries.

use std::{
    future::{ready, Ready},
    sync::Arc,
};

use actix_web::{
    dev::Payload,
    http::{header, StatusCode},
    FromRequest, HttpRequest, HttpResponse, ResponseError as _,
};
use database::DbError;
use links::{
    idempotency::{self, Claim, StoredAnswer},
    model::Link,
};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::{
    deadline::{self, Deadline},
    errors::ApiError,
    routes::body::{ErrorBody, ErrorDetail},
    routes::create_links::{write_through, Writer},
    state::AppState,
};

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The response header on an answer that is a replay.
pub const REPLAYED: &str = "idempotent-replayed";

/// Longest key: enough for any UUID or hash a client makes, bounded so a key costs little to store.
const MAX_KEY_LEN: usize = 255;

/// The `Idempotency-Key` header of a request, checked: 1 to 255 visible ASCII characters, or absent.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(Option<Arc<str>>);

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(parse(req.headers().get(HEADER)).map(Self))
    }
}

fn parse(value: Option<&header::HeaderValue>) -> Result<Option<Arc<str>>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LEN || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(ApiError::InvalidIdempotencyKey(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good choice)",
        ));
    }
    Ok(Some(Arc::from(String::from_utf8_lossy(bytes))))
}

/// An answer as it is sent and stored: status, `Location`, JSON body.
#[derive(Debug)]
pub struct Answer(StoredAnswer);

impl Answer {
    /// `status` with `body` as JSON, and a `Location` when given.
    ///
    /// # Errors
    /// When the body does not serialise (a bug).
    pub fn json(
        status: StatusCode,
        location: Option<String>,
        body: &impl Serialize,
    ) -> Result<Self, ApiError> {
        let body = serde_json::to_vec(body).map_err(|error| ApiError::Internal(error.into()))?;
        Ok(Self(StoredAnswer {
            status: status.as_u16(),
            location,
            body,
        }))
    }

    /// The error answer for a client error (4xx), as the response would have been.
    fn client_error(error: &ApiError) -> Result<Self, ApiError> {
        let body = ErrorBody {
            error: ErrorDetail::from(error),
        };
        Self::json(error.status_code(), None, &body)
    }

    fn response(self, replayed: bool) -> HttpResponse {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::OK);
        let mut response = HttpResponse::build(status);
        response.content_type("application/json");
        if let Some(location) = self.0.location {
            response.insert_header((header::LOCATION, location));
        }
        if replayed {
            response.insert_header((REPLAYED, "true"));
        }
        response.body(self.0.body)
    }
}

/// What a create produced: its answer, whether any part of it is a server error (then it is not kept), and the
/// links it committed (or will commit with the transaction), to write through once they are durable.
pub struct Outcome {
    /// The answer.
    pub answer: Answer,
    /// Some item of a batch failed with a 5xx: not an answer to keep.
    pub server_error: bool,
    /// The links created.
    pub created: Vec<Link>,
}

/// A fingerprint of a request: SHA-256 of its route and its body as parsed (so spacing and key order do not
/// matter: serde_json's maps are sorted while no crate turns on its `preserve_order`), to tell a retry from
/// another request that reuses the key. A `password` anywhere in the body counts only as being there: an
/// unsalted hash of a body is a hash of the password a dictionary can reverse, and it is stored for 24 hours.
///
/// # Errors
/// When the body does not serialise (a bug).
pub fn fingerprint(route: &str, body: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    let mut value = serde_json::to_value(body).map_err(|error| ApiError::Internal(error.into()))?;
    // A body without a password keeps the bytes (and so the fingerprints) of earlier versions, whose field
    // order a `Value` would sort: a retry across an upgrade still finds its first answer.
    let json = if redact_passwords(&mut value) {
        serde_json::to_vec(&value)
    } else {
        serde_json::to_vec(body)
    }
    .map_err(|error| ApiError::Internal(error.into()))?;
    Ok(Sha256::new()
        .chain_update(route.as_bytes())
        .chain_update([0])
        .chain_update(json)
        .finalize()
        .to_vec())
}

/// Replaces the value of every `password` field in `value` that holds one by `true`; whether any did.
fn redact_passwords(value: &mut serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(fields) => {
            let mut redacted = false;
            for (name, field) in fields.iter_mut() {
                if name == "password" && !field.is_null() {
                    *field = serde_json::Value::Bool(true);
                    redacted = true;
                } else {
                    redacted |= redact_passwords(field);
                }
            }
            redacted
        }
        serde_json::Value::Array(items) => items
            .iter_mut()
            .fold(false, |redacted, item| redact_passwords(item) | redacted),
        _ => false,
    }
}

/// Answers a create made by `owner_id` (`None`: anonymous): `work` runs once, through the group inserter when
/// there is no key, or in a transaction with the key's claim and record when there is. `fingerprint` is the
/// request's [`fingerprint`].
///
/// # Errors
/// A 5xx from `work` or the database; 400/409/422 for the key itself.
pub async fn answer_once(
    state: &AppState,
    owner_id: Option<i64>,
    key: IdempotencyKey,
    fingerprint: Vec<u8>,
    deadline: Deadline,
    work: impl AsyncFnOnce(Writer<'_>) -> Result<Outcome, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let Some(key) = key.0 else {
        let outcome = settle(work(Writer::Grouped(deadline.0)).await)?;
        write_through(state, &outcome.created).await;
        return Ok(outcome.answer.response(false));
    };
    let owner_id = owner_id.ok_or(ApiError::InvalidIdempotencyKey(
        "Idempotency-Key needs an API key: answers are kept per key",
    ))?;
    let _permit = state.inserter.direct_permit(deadline.0).await?;
    let budget =
        deadline::server_budget(deadline.0).ok_or_else(|| ApiError::unavailable("the database"))?;
    let mut client = state.store.pool().get().await.map_err(DbError::from)?;
    let tx = client.transaction().await.map_err(DbError::from)?;
    database::bound_transaction(&tx, budget).await?;
    match idempotency::claim(&tx, owner_id, &key, &fingerprint).await? {
        Claim::Fresh => {}
        Claim::Replay(stored) => return Ok(Answer(stored).response(true)),
        Claim::Reused => return Err(ApiError::IdempotencyKeyReused),
        Claim::InFlight => return Err(ApiError::IdempotencyKeyInFlight),
    }
    let outcome = settle(work(Writer::Transaction(&tx)).await)?;
    if outcome.server_error {
        // Dropping the transaction rolls the links back with it: a retry makes them again, under this key.
        return Err(ApiError::Internal(anyhow::anyhow!(
            "an item failed with a server error; nothing was kept"
        )));
    }
    idempotency::record(&tx, owner_id, &key, &fingerprint, &outcome.answer.0).await?;
    tx.commit().await.map_err(DbError::from)?;
    write_through(state, &outcome.created).await;
    Ok(outcome.answer.response(false))
}

/// A client error (4xx) is an answer like any other (kept and replayed); a server error stays an error.
fn settle(result: Result<Outcome, ApiError>) -> Result<Outcome, ApiError> {
    match result {
        Err(error) if error.status_code().is_client_error() => Ok(Outcome {
            answer: Answer::client_error(&error)?,
            server_error: false,
            created: Vec::new(),
        }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_holds_no_password() {
        let with = |password: &str| {
            let body = serde_json::json!({"items": [{"long_url": "https://e.com/", "password": password}]});
            fingerprint("/v1/urls/batch", &body).expect("serialises")
        };
        let without = fingerprint(
            "/v1/urls/batch",
            &serde_json::json!({"items": [{"long_url": "https://e.com/"}]}),
        )
        .expect("serialises");

        assert_eq!(with("hunter2"), with("correct horse"));
        assert_ne!(with("hunter2"), without);
    }

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        let parsed =
            |raw: &[u8]| parse(Some(&header::HeaderValue::from_bytes(raw).expect("value")));

        assert!(parsed(b"4f0c2a9e-7d1b-4a57-9b0e-3c1f5a2d8e61").is_ok());
        assert!(parsed(&[b'k'; 255]).is_ok());
        assert!(parsed(&[b'k'; 256]).is_err());
        assert!(parsed(b"").is_err());
        assert!(parsed(b"two words").is_err());
        assert!(parsed("caf\u{e9}".as_bytes()).is_err());
        assert!(parse(None).is_ok_and(|key| key.is_none()));
    }
}
