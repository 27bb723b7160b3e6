//! The schemas of `rules` and `variants` for the OpenAPI document: the fields are read by `links::routing` as
//! JSON, so their shape is described here, once, for create, PATCH and the link as answered. Likewise a
//! webhook's event names, read by `links::webhooks`.

/// A rule of `rules`, for the OpenAPI document (the rules are read by `links::routing`).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the field for the OpenAPI document")]
pub struct RuleSchema {
    /// The conditions, at least one; every one given must hold.
    when: WhenSchema,
    /// Where the rule sends a visitor, under the same rules as `long_url`.
    #[schema(max_length = 2048)]
    long_url: String,
}

/// The conditions of a rule.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the field for the OpenAPI document")]
pub struct WhenSchema {
    /// The visitor's device class, from its User-Agent.
    #[schema(pattern = "^(desktop|mobile|tablet)$")]
    device: Option<String>,
    /// The visitor's operating system, from its User-Agent.
    #[schema(pattern = "^(ios|android|windows|macos|linux)$")]
    os: Option<String>,
    /// The primary subtag of the visitor's preferred language (`Accept-Language`), e.g. `de`.
    #[schema(pattern = "^[A-Za-z]{2,3}$")]
    language: Option<String>,
    /// The visitor's country (two letters) from the operator's `--country-header`, believed from trusted proxies
    /// only.
    #[schema(pattern = "^[A-Za-z]{2}$")]
    country: Option<String>,
    /// Holds from this instant on (RFC 3339).
    #[schema(format = DateTime)]
    after: Option<String>,
    /// Holds until this instant (RFC 3339), which must be later than `after`.
    #[schema(format = DateTime)]
    before: Option<String>,
    /// `name: value` pairs the visit's query string must all have (at most 5).
    query: Option<std::collections::HashMap<String, String>>,
}

/// A variant of `variants`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the field for the OpenAPI document")]
pub struct VariantSchema {
    /// Where the variant sends a visitor, under the same rules as `long_url`.
    #[schema(max_length = 2048)]
    long_url: String,
    /// Its share against the sum of the weights: 1 to 1000.
    #[schema(minimum = 1, maximum = 1000)]
    weight: u16,
}

/// The schema of `rules`: at most 20, the first that holds wins; null for none.
pub fn rules_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::{schema::ArrayBuilder, Ref};
    ArrayBuilder::new()
        .items(Ref::from_schema_name("RuleSchema"))
        .max_items(Some(20))
        .build()
}

/// The schema of `variants`: 2 to 10; null for none.
pub fn variants_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::{schema::ArrayBuilder, Ref};
    ArrayBuilder::new()
        .items(Ref::from_schema_name("VariantSchema"))
        .min_items(Some(2))
        .max_items(Some(10))
        .build()
}

/// An event a webhook receives (`links::webhooks::EventType`), for the OpenAPI document.
#[derive(utoipa::ToSchema)]
pub enum EventSchema {
    /// A visit of one of the caller's links.
    #[schema(rename = "click")]
    Click,
    /// One of the caller's links was created.
    #[schema(rename = "link.created")]
    LinkCreated,
    /// One of the caller's links was changed.
    #[schema(rename = "link.updated")]
    LinkUpdated,
    /// One of the caller's links was deleted.
    #[schema(rename = "link.deleted")]
    LinkDeleted,
}
