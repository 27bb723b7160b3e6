//! A link's fields as a client sends them, one check each, shared by create (one link or a batch) and PATCH so a
//! field is refused with the same code and message whichever call sends it; and the schemas of the fields whose
//! rules the OpenAPI document states by hand.

use chrono::{DateTime, Utc};
use links::{model::RedirectStatus, validate};

use crate::{
    errors::{ApiError, ErrorCode},
    hashing::Spender,
    routes::body::WholeNumber,
    state::AppState,
};

/// `long_url`, normalised: 422 `invalid_url` for a URL that breaks a rule, `blocked_domain` for a blocked host.
pub(crate) fn long_url(raw: &str, state: &AppState) -> Result<String, ApiError> {
    long_url_within(
        raw,
        &state.own_hosts,
        &state.domains.load(),
        &state.blocklist,
    )
}

/// [`long_url`] against given own hosts, registered domains and blocklist (an import run from the command line
/// has no [`AppState`]).
pub(crate) fn long_url_within(
    raw: &str,
    own_hosts: &[String],
    domains: &links::domain::DomainTable,
    blocklist: &validate::Blocklist,
) -> Result<String, ApiError> {
    let url = validate::normalize_long_url(raw, own_hosts)?;
    // A registered domain is served by the redirect too: a link to it would loop like one to the own hosts.
    if let Some(host) = url.host_str().and_then(links::domain::normalize_host) {
        if domains.get(&host).is_some() {
            return Err(validate::Invalid::OwnHost(host).into());
        }
    }
    blocklist.check(&url)?;
    Ok(url.to_string())
}

/// `domain` (create only): the host of a registered domain, `None` for the default one (or none named); 422
/// `unknown_domain` for any other.
pub(crate) fn domain(raw: Option<&str>, state: &AppState) -> Result<Option<String>, ApiError> {
    domain_within(raw, &state.domains.load())
}

/// [`domain`] against a given table of domains.
pub(crate) fn domain_within(
    raw: Option<&str>,
    table: &links::domain::DomainTable,
) -> Result<Option<String>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let unknown = || ApiError::InvalidField {
        code: ErrorCode::UnknownDomain,
        message: format!(
            "domain {:?} is not registered here (GET /v1/domains lists those that are)",
            raw.chars()
                .take(links::domain::MAX_HOST_LEN)
                .collect::<String>()
        ),
    };
    let host = links::domain::normalize_host(raw).ok_or_else(unknown)?;
    let domain = table.get(&host).ok_or_else(unknown)?;
    Ok((!domain.is_default).then_some(host))
}

/// Reloads the domains when `named` is a host they lack: an operator may have added it a moment ago (see
/// `Domains::reload_for_miss` for the bound on what made-up hosts cost).
pub(crate) async fn load_domains(state: &AppState, named: Option<&str>) {
    let Some(host) = named.and_then(links::domain::normalize_host) else {
        return;
    };
    if state.domains.load().get(&host).is_none() {
        state.domains.reload_for_miss(&state.store).await;
    }
}

/// `rules` (422 `invalid_rules`): each target checked as `long_url` is. `null` is none.
pub(crate) fn rules(
    value: &serde_json::Value,
    state: &AppState,
) -> Result<Vec<links::routing::Rule>, ApiError> {
    links::routing::parse_rules(value, &|raw| target(raw, state)).map_err(invalid_routing)
}

/// `variants` (422 `invalid_variants`): each target checked as `long_url` is. `null` is none.
pub(crate) fn variants(
    value: &serde_json::Value,
    state: &AppState,
) -> Result<Vec<links::routing::Variant>, ApiError> {
    links::routing::parse_variants(value, &|raw| target(raw, state)).map_err(invalid_routing)
}

/// `rules` and `variants` of a create, as stored; `None` when the link has neither.
pub(crate) fn routing(
    rules: Option<&serde_json::Value>,
    variants: Option<&serde_json::Value>,
    state: &AppState,
) -> Result<Option<String>, ApiError> {
    let null = serde_json::Value::Null;
    let routing = links::routing::Routing {
        rules: self::rules(rules.unwrap_or(&null), state)?,
        variants: self::variants(variants.unwrap_or(&null), state)?,
    };
    Ok((!routing.is_empty()).then(|| routing.to_stored()))
}

/// A rule's or a variant's target, as `long_url` is checked; the refusal's message for the routing error.
fn target(raw: &str, state: &AppState) -> Result<String, String> {
    long_url(raw, state).map_err(|error| error.to_string())
}

fn invalid_routing(invalid: links::routing::Invalid) -> ApiError {
    ApiError::InvalidField {
        code: if invalid.code == "invalid_variants" {
            ErrorCode::InvalidVariants
        } else {
            ErrorCode::InvalidRules
        },
        message: invalid.message,
    }
}

/// `alias` (create only): 422 `invalid_alias` for the wrong alphabet or length, `reserved_alias` for a reserved
/// word.
pub(crate) fn alias(alias: &str) -> Result<(), ApiError> {
    Ok(validate::check_alias(alias)?)
}

/// `expires_at`: an RFC 3339 instant (422 `invalid_expires_at`) after `now` (422 `expires_in_past`).
pub(crate) fn expires_at(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    let at = DateTime::parse_from_rfc3339(raw)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| ApiError::InvalidField {
            code: ErrorCode::InvalidExpiresAt,
            message: format!(
                "expires_at must be an RFC 3339 date-time such as 2030-01-01T00:00:00Z ({error})"
            ),
        })?;
    if at <= now {
        return Err(ApiError::InvalidField {
            code: ErrorCode::ExpiresInPast,
            message: "expires_at must be in the future".into(),
        });
    }
    Ok(at)
}

/// `redirect`: the status, if a link may use it (422 `invalid_redirect`).
pub(crate) fn redirect(status: u16) -> Result<RedirectStatus, ApiError> {
    RedirectStatus::from_code(status).ok_or_else(|| ApiError::InvalidField {
        code: ErrorCode::InvalidRedirect,
        message: format!("redirect must be 301, 302, 307 or 308, not {status}"),
    })
}

/// `tags`, sorted and without duplicates (422 `invalid_tags`).
pub(crate) fn tags(tags: Vec<String>) -> Result<Vec<String>, ApiError> {
    Ok(validate::check_tags(tags)?)
}

/// `password`'s length (422 `invalid_password`); the hash is made by [`password_hash`].
pub(crate) fn password(password: &str) -> Result<(), ApiError> {
    Ok(validate::check_password(password)?)
}

/// `max_hits`: a whole number within the bounds (422 `invalid_max_hits`).
pub(crate) fn max_hits(sent: WholeNumber) -> Result<i64, ApiError> {
    let WholeNumber(Some(max_hits)) = sent else {
        return Err(validate::Invalid::MaxHits.into());
    };
    Ok(validate::check_max_hits(max_hits)?)
}

/// The Argon2id hash of a checked `password`, paid for by `spender`'s budget and made within the process-wide
/// bound on hashes (see [`crate::hashing`]).
///
/// # Errors
/// 429 past the spender's budget, 503 at once while every hash slot is taken.
pub(crate) async fn password_hash(
    state: &AppState,
    spender: Spender,
    password: String,
) -> Result<String, ApiError> {
    state.passwords.spend(spender)?;
    state.passwords.hash(password).await
}

/// The schema of a link's `redirect` field: one of the four redirect statuses, or null for the default (302).
/// utoipa has no field attribute for an enum of integers.
pub fn redirect_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .enum_values(Some([
            serde_json::json!(301),
            serde_json::json!(302),
            serde_json::json!(307),
            serde_json::json!(308),
            serde_json::Value::Null,
        ]))
        .examples([serde_json::json!(302)])
        .build()
}

/// The schema of a link's `tags`: up to 10 strings of 1 to 32 of `a-z 0-9 -` (duplicates are folded).
pub fn tags_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[a-z0-9-]{1,32}$"))
                .min_length(Some(1))
                .max_length(Some(32)),
        )
        .max_items(Some(10))
        .examples([serde_json::json!(["campaign", "q4"])])
        .build()
}
