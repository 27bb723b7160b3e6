//! Every error code the shortener answers with, one variant each, on one line with its wire string (the `code`
//! of `{"error": {"code", "message"}}`) and its status: the shortener spells a code nowhere else. The codes of the
//! answers every service shares (405, 413, 415, a malformed body or query) are spelt once, in
//! [`plumbing::http::code`], and named here. The OpenAPI document (`GET /v1/openapi.json`) names the codes each
//! call can answer; the README's API section explains them.

use actix_web::http::StatusCode;
use links::validate::Invalid;
use plumbing::http::code as shared;

/// Declares [`ErrorCode`] from one line per code: the variant, its wire string, its status.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $code:ident = $wire:expr, $status:ident;)*) => {
        /// A machine-readable reason for an error answer.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $code,)*
        }

        impl ErrorCode {
            /// Every code.
            pub const ALL: &[Self] = &[$(Self::$code),*];

            /// The code as the client reads it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$code => $wire,)*
                }
            }

            /// The status every answer with this code has.
            pub fn status(self) -> StatusCode {
                match self {
                    $(Self::$code => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    /// The body is not valid JSON for the call.
    MalformedJson = shared::MALFORMED_JSON, BAD_REQUEST;
    /// The body could not be read.
    MalformedBody = shared::MALFORMED_BODY, BAD_REQUEST;
    /// A malformed `Idempotency-Key`, or one sent without an API key.
    InvalidIdempotencyKey = "invalid_idempotency_key", BAD_REQUEST;
    /// No API key, or one that is not (or no longer) valid.
    Unauthorized = "unauthorized", UNAUTHORIZED;
    /// No such link (or webhook) of the caller's.
    NotFound = "not_found", NOT_FOUND;
    /// The path has no route for the method.
    MethodNotAllowed = shared::METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED;
    /// Another link has the alias.
    AliasTaken = "alias_taken", CONFLICT;
    /// A request with the same `Idempotency-Key` is still being answered.
    IdempotencyKeyInFlight = "idempotency_key_in_flight", CONFLICT;
    /// The body is over the call's limit.
    BodyTooLarge = shared::BODY_TOO_LARGE, PAYLOAD_TOO_LARGE;
    /// The body is not sent as JSON.
    UnsupportedMediaType = shared::UNSUPPORTED_MEDIA_TYPE, UNSUPPORTED_MEDIA_TYPE;
    /// The `Idempotency-Key` was used with another request.
    IdempotencyKeyReused = "idempotency_key_reused", UNPROCESSABLE_ENTITY;
    /// `long_url` is not an absolute http(s) URL within the bounds, or points at the shortener.
    InvalidUrl = "invalid_url", UNPROCESSABLE_ENTITY;
    /// `long_url`'s host is on the blocklist.
    BlockedDomain = "blocked_domain", UNPROCESSABLE_ENTITY;
    /// `alias` breaks the alphabet or length.
    InvalidAlias = "invalid_alias", UNPROCESSABLE_ENTITY;
    /// `alias` is a reserved word.
    ReservedAlias = "reserved_alias", UNPROCESSABLE_ENTITY;
    /// `expires_at` is not an RFC 3339 date-time.
    InvalidExpiresAt = "invalid_expires_at", UNPROCESSABLE_ENTITY;
    /// `expires_at` is not in the future.
    ExpiresInPast = "expires_in_past", UNPROCESSABLE_ENTITY;
    /// `redirect` is not 301, 302, 307 or 308.
    InvalidRedirect = "invalid_redirect", UNPROCESSABLE_ENTITY;
    /// `tags` of a link: too many, or one outside `a-z 0-9 -`.
    InvalidTags = "invalid_tags", UNPROCESSABLE_ENTITY;
    /// `password` is empty or too long, or sent in a batch.
    InvalidPassword = "invalid_password", UNPROCESSABLE_ENTITY;
    /// `max_hits` is not a whole number in bounds.
    InvalidMaxHits = "invalid_max_hits", UNPROCESSABLE_ENTITY;
    /// `domain` is not a registered domain.
    UnknownDomain = "unknown_domain", UNPROCESSABLE_ENTITY;
    /// `rules` break a rule (the message names the index and the field).
    InvalidRules = "invalid_rules", UNPROCESSABLE_ENTITY;
    /// `variants` break a rule (the message names the index and the field).
    InvalidVariants = "invalid_variants", UNPROCESSABLE_ENTITY;
    /// A webhook's `url`: not http(s), malformed, or reaching a non-public address (the message says which).
    InvalidWebhookUrl = "invalid_webhook_url", UNPROCESSABLE_ENTITY;
    /// A webhook's `events`: none, an unknown name, or one named twice.
    InvalidEvents = "invalid_events", UNPROCESSABLE_ENTITY;
    /// The caller has as many webhooks as a key may.
    TooManyWebhooks = "too_many_webhooks", UNPROCESSABLE_ENTITY;
    /// A PATCH that sends no field.
    EmptyPatch = "empty_patch", UNPROCESSABLE_ENTITY;
    /// A PATCH that sends `null` for a field that cannot be cleared.
    InvalidPatch = "invalid_patch", UNPROCESSABLE_ENTITY;
    /// A batch of no items or too many.
    InvalidBatchSize = "invalid_batch_size", UNPROCESSABLE_ENTITY;
    /// An item of a batch that is not a create body.
    InvalidItem = "invalid_item", UNPROCESSABLE_ENTITY;
    /// The `tag` filter of a list or an export.
    InvalidTag = "invalid_tag", UNPROCESSABLE_ENTITY;
    /// A query string that does not fit the call, or the `q` search text of a list or an export.
    InvalidQuery = shared::INVALID_QUERY, UNPROCESSABLE_ENTITY;
    /// A list's page size.
    InvalidLimit = "invalid_limit", UNPROCESSABLE_ENTITY;
    /// A list's cursor.
    InvalidCursor = "invalid_cursor", UNPROCESSABLE_ENTITY;
    /// The days of hits or stats.
    InvalidDays = "invalid_days", UNPROCESSABLE_ENTITY;
    /// A QR code's format, or an import's.
    InvalidFormat = "invalid_format", UNPROCESSABLE_ENTITY;
    /// A line of an import file that cannot be read as a link of its format.
    InvalidLine = "invalid_line", UNPROCESSABLE_ENTITY;
    /// An import file that is not its format at all (no header naming the URL column, not JSON).
    InvalidFile = "invalid_file", UNPROCESSABLE_ENTITY;
    /// A QR code's size.
    InvalidSize = "invalid_size", UNPROCESSABLE_ENTITY;
    /// Over a rate limit (or the caller's share of exports); see `Retry-After`.
    RateLimited = "rate_limited", TOO_MANY_REQUESTS;
    /// Anything unexpected, answered opaquely.
    Internal = "internal", INTERNAL_SERVER_ERROR;
    /// A dependency is down (or the process runs its most exports); see `Retry-After`.
    Unavailable = "unavailable", SERVICE_UNAVAILABLE;
    /// Another import is running in this process (one at a time); see `Retry-After`.
    ImportBusy = "import_busy", SERVICE_UNAVAILABLE;
}

impl From<&Invalid> for ErrorCode {
    fn from(invalid: &Invalid) -> Self {
        match invalid {
            Invalid::Url(_)
            | Invalid::UrlTooLong
            | Invalid::UrlCredentials
            | Invalid::OwnHost(_) => Self::InvalidUrl,
            Invalid::Alias => Self::InvalidAlias,
            Invalid::ReservedAlias(_) => Self::ReservedAlias,
            Invalid::BlockedDomain(_) => Self::BlockedDomain,
            Invalid::Tags => Self::InvalidTags,
            Invalid::Password => Self::InvalidPassword,
            Invalid::MaxHits => Self::InvalidMaxHits,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use links::validate::{self, Blocklist, Invalid};

    use super::ErrorCode::{self, ImportBusy, Internal, Unavailable};

    #[test]
    fn every_code_is_its_own_snake_case_word() {
        let words: std::collections::HashSet<&str> =
            ErrorCode::ALL.iter().map(|code| code.as_str()).collect();

        assert_eq!(words.len(), ErrorCode::ALL.len());
        for word in words {
            assert!(
                word.bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte == b'_'),
                "{word}"
            );
        }
    }

    #[test]
    fn every_client_error_is_a_4xx_and_only_internal_and_unavailable_are_5xx() {
        for &code in ErrorCode::ALL {
            let server = matches!(code, Internal | Unavailable | ImportBusy);
            assert_eq!(code.status().is_server_error(), server, "{code}");
            assert_eq!(code.status().is_client_error(), !server, "{code}");
        }
    }

    #[test]
    fn every_refused_url_answers_invalid_url_and_each_other_rule_its_own_code() {
        let own = ["sho.rt".to_owned()];
        for bad in [
            "ftp://example.com/",
            "https://a@b.example/",
            "https://sho.rt/x",
        ] {
            let invalid = validate::normalize_long_url(bad, &own).expect_err(bad);
            assert_eq!(ErrorCode::from(&invalid).as_str(), "invalid_url", "{bad}");
        }
        assert_eq!(
            ErrorCode::from(&Invalid::UrlTooLong).as_str(),
            "invalid_url"
        );
        let url = validate::normalize_long_url("https://evil.example/", &own).expect("valid");
        let blocked = Blocklist::new(["evil.example"]).expect("valid").check(&url);
        assert_eq!(
            blocked.map_err(|e| ErrorCode::from(&e).as_str()),
            Err("blocked_domain")
        );
        assert_eq!(ErrorCode::from(&Invalid::Alias).as_str(), "invalid_alias");
        assert_eq!(
            ErrorCode::from(&Invalid::ReservedAlias("api".into())).as_str(),
            "reserved_alias"
        );
        assert_eq!(ErrorCode::from(&Invalid::Tags).as_str(), "invalid_tags");
        assert_eq!(
            ErrorCode::from(&Invalid::Password).as_str(),
            "invalid_password"
        );
        assert_eq!(
            ErrorCode::from(&Invalid::MaxHits).as_str(),
            "invalid_max_hits"
        );
    }
}
