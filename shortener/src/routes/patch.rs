//! `PATCH /v1/urls/{code}`: the owner changes where a link goes (a printed QR code keeps working with a new
//! target), its status, expiry, tags, password or visit limit. Validated exactly as a create is; the change and
//! its invalidation commit in one statement and are delivered at once, as a delete's are, so every redirect
//! replica serves the new target within a second.

use actix_web::{web, HttpResponse};
use links::manage::LinkPatch;
use serde::{Deserialize, Deserializer};

use crate::{
    auth::Caller,
    deadline::Deadline,
    errors::{ApiError, ErrorCode},
    hashing::Spender,
    routes::{
        body::{ErrorBody, LinkBody, RateLimited, Unauthorized, Unavailable, WholeNumber},
        fields,
    },
    state::AppState,
};

/// What browsers do with a permanent redirect, said in the answer to a change of one.
const PERMANENT_WARNING: &str = "this link answers with a permanent redirect (301 or 308), which browsers \
    cache: visitors who followed it before may keep going to the old target. Use 302 or 307 for a link whose \
    target will change.";

/// The body of a PATCH: any of the fields; a nullable one sent as `null` is cleared, one left out is kept.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    /// A new target, under the same rules as on create (422 `invalid_url`, `blocked_domain`).
    #[schema(value_type = Option<String>, max_length = 2048)]
    #[serde(default, deserialize_with = "sent")]
    long_url: Option<Option<String>>,
    /// A new status: 301, 302, 307 or 308 (422 `invalid_redirect`); null for the default, 302.
    #[schema(schema_with = fields::redirect_schema)]
    #[serde(default, deserialize_with = "sent")]
    redirect: Option<Option<u16>>,
    /// A new expiry (RFC 3339, in the future), or null to make the link permanent.
    #[schema(value_type = Option<String>, format = DateTime, nullable)]
    #[serde(default, deserialize_with = "sent")]
    expires_at: Option<Option<String>>,
    /// The link's new tags, replacing its old ones (`[]` removes them all).
    #[schema(schema_with = fields::tags_schema)]
    #[serde(default, deserialize_with = "sent")]
    tags: Option<Option<Vec<String>>>,
    /// A new password (1 to 128 characters), or null to remove it.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 128, format = Password, nullable)]
    #[serde(default, deserialize_with = "sent")]
    password: Option<Option<String>>,
    /// A new visit limit (1 to 10^12), or null to remove it. At or under the hits counted so far, the link answers
    /// 410 at once; above them, it is live again.
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1_000_000_000_000_i64, nullable)]
    #[serde(default, deserialize_with = "sent")]
    max_hits: Option<Option<WholeNumber>>,
    /// New rules replacing the old ones, or null to remove them (422 `invalid_rules`).
    #[schema(schema_with = crate::routes::schemas::rules_schema)]
    #[serde(default, deserialize_with = "sent")]
    rules: Option<Option<serde_json::Value>>,
    /// New variants replacing the old ones, or null to remove them (422 `invalid_variants`).
    #[schema(schema_with = crate::routes::schemas::variants_schema)]
    #[serde(default, deserialize_with = "sent")]
    variants: Option<Option<serde_json::Value>>,
}

/// A field that was sent, as `Some` of its value (`Some(None)` for `null`); serde's `default` makes a field
/// left out `None`.
fn sent<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A patch that passed validation, owning what [`LinkPatch`] borrows.
struct CheckedPatch {
    long_url: Option<String>,
    redirect: Option<links::model::RedirectStatus>,
    expires_at: Option<Option<chrono::DateTime<chrono::Utc>>>,
    tags: Option<Vec<String>>,
    password: Option<Option<String>>,
    max_hits: Option<Option<i64>>,
    /// The stored parts sent (`{"rules": …, "variants": …}`, `null` to clear), merged by the store.
    routing: Option<String>,
}

fn not_null<T>(field: &'static str, value: Option<Option<T>>) -> Result<Option<T>, ApiError> {
    match value {
        Some(None) => Err(ApiError::InvalidField {
            code: ErrorCode::InvalidPatch,
            message: format!("{field} cannot be null"),
        }),
        Some(Some(value)) => Ok(Some(value)),
        None => Ok(None),
    }
}

fn check(request: PatchRequest, state: &AppState) -> Result<CheckedPatch, ApiError> {
    let PatchRequest {
        long_url,
        redirect,
        expires_at,
        tags,
        password,
        max_hits,
        rules,
        variants,
    } = request;
    let nothing_sent = rules.is_none()
        && variants.is_none()
        && long_url.is_none()
        && redirect.is_none()
        && expires_at.is_none()
        && tags.is_none()
        && password.is_none()
        && max_hits.is_none();
    if nothing_sent {
        return Err(ApiError::InvalidField {
            code: ErrorCode::EmptyPatch,
            message:
                "send at least one of long_url, redirect, expires_at, tags, password, max_hits, rules, \
                 variants"
                    .into(),
        });
    }
    let long_url = not_null("long_url", long_url)?
        .map(|raw| fields::long_url(&raw, state))
        .transpose()?;
    let redirect = redirect
        .map(|sent| sent.map(fields::redirect).transpose())
        .transpose()?
        .map(Option::unwrap_or_default);
    let now = state.clock.now();
    let expires_at = expires_at
        .map(|sent| {
            sent.as_deref()
                .map(|raw| fields::expires_at(raw, now))
                .transpose()
        })
        .transpose()?;
    let tags = not_null("tags", tags)?.map(fields::tags).transpose()?;
    if let Some(Some(password)) = &password {
        fields::password(password)?;
    }
    let max_hits = max_hits
        .map(|sent| sent.map(fields::max_hits).transpose())
        .transpose()?;
    let routing = routing_patch(rules, variants, state)?;
    Ok(CheckedPatch {
        long_url,
        redirect,
        expires_at,
        tags,
        password,
        max_hits,
        routing,
    })
}

/// The parts of the stored routing a PATCH sends, checked: `{"rules": [...]}` and/or `{"variants": [...]}`, each
/// `null` when sent as `null` or empty; `None` when neither is sent.
fn routing_patch(
    rules: Option<Option<serde_json::Value>>,
    variants: Option<Option<serde_json::Value>>,
    state: &AppState,
) -> Result<Option<String>, ApiError> {
    if rules.is_none() && variants.is_none() {
        return Ok(None);
    }
    let null = serde_json::Value::Null;
    let mut parts = serde_json::Map::new();
    if let Some(sent) = rules {
        let routing = links::routing::Routing {
            rules: fields::rules(sent.as_ref().unwrap_or(&null), state)?,
            variants: Vec::new(),
        };
        let value = if routing.rules.is_empty() {
            null.clone()
        } else {
            routing.rules_json()
        };
        parts.insert("rules".into(), value);
    }
    if let Some(sent) = variants {
        let routing = links::routing::Routing {
            rules: Vec::new(),
            variants: fields::variants(sent.as_ref().unwrap_or(&null), state)?,
        };
        let value = if routing.variants.is_empty() {
            null
        } else {
            routing.variants_json()
        };
        parts.insert("variants".into(), value);
    }
    Ok(Some(serde_json::Value::Object(parts).to_string()))
}

/// `PATCH /v1/urls/{code}`: 200 with the changed link once it is committed and its invalidation delivered (or
/// queued for the outbox, if Redis fails: then the replicas catch up when Redis is back).
#[utoipa::path(
    patch,
    path = "/v1/urls/{code}",
    tag = "links",
    params(("code" = String, Path, description = "The short code"), crate::routes::DomainQuery),
    request_body = PatchRequest,
    responses(
        (status = 200, description = "The changed link with `hits` (and `warning` for a permanent redirect)", body = LinkBody),
        (status = 400, description = "Malformed JSON or an unknown field", body = ErrorBody),
        (status = 401, response = Unauthorized),
        (status = 404, description = "No such link of the caller's", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "empty_patch, invalid_patch, invalid_url, blocked_domain, expires_in_past, invalid_expires_at, invalid_redirect, invalid_tags, invalid_password, invalid_max_hits, invalid_rules, invalid_variants", body = ErrorBody),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
#[tracing::instrument(skip_all, fields(owner_id = caller.owner_id))]
pub async fn patch(
    state: web::Data<AppState>,
    caller: Caller,
    deadline: Deadline,
    at: crate::routes::LinkAt,
    body: web::Json<PatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let checked = check(body.into_inner(), &state)?;
    let password_hash = match checked.password {
        Some(Some(password)) => {
            // Only for a link of the caller's: made-up codes must not cost a hash each.
            if state
                .store
                .find_owned(caller.owner_id, &at.key, deadline.budget()?)
                .await?
                .is_none()
            {
                return Err(at.not_found());
            }
            Some(Some(
                fields::password_hash(&state, Spender::Key(caller.owner_id), password).await?,
            ))
        }
        Some(None) => Some(None),
        None => None,
    };
    let patch = LinkPatch {
        long_url: checked.long_url.as_deref(),
        redirect: checked.redirect,
        expires_at: checked.expires_at,
        tags: checked.tags.as_deref(),
        password_hash: password_hash.as_ref().map(Option::as_deref),
        max_hits: checked.max_hits,
        routing: checked.routing.as_deref(),
    };
    let Some((changed, owed)) = state
        .store
        .patch_owned(caller.owner_id, &at.key, &patch)
        .await?
    else {
        return Err(at.not_found());
    };
    state.invalidate(owed).await;
    let mut body = LinkBody::with_hits(&changed.link, changed.hits, &state);
    state
        .events
        .emitter
        .link(
            events::Kind::LinkUpdated,
            Some(caller.owner_id),
            &at.key,
            || serde_json::to_value(&body).unwrap_or_default(),
        )
        .await;
    if changed.link.redirect.is_permanent() {
        body.warning = Some(PERMANENT_WARNING.to_owned());
    }
    Ok(HttpResponse::Ok().json(body))
}
