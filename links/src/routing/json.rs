//! A [`Routing`] written back out: the API's `rules` and `variants` JSON, and the stored form that PostgreSQL
//! (jsonb) and the Redis cache entry keep. The stored form is the API's shape under `rules` and `variants` (each
//! left out when empty), so one reader serves both and a stored value reads like the request that made it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use super::{parse, Routing, Rule, Variant};

impl Routing {
    /// The rules as the API shows them.
    pub fn rules_json(&self) -> Value {
        Value::Array(self.rules.iter().map(rule_json).collect())
    }

    /// The variants as the API shows them.
    pub fn variants_json(&self) -> Value {
        Value::Array(self.variants.iter().map(variant_json).collect())
    }

    /// The compact JSON kept in the database and the cache: `{"rules": [...], "variants": [...]}`, each left out
    /// when empty (`{}` for an empty routing).
    pub fn to_stored(&self) -> String {
        let mut stored = Map::new();
        if !self.rules.is_empty() {
            stored.insert("rules".to_owned(), self.rules_json());
        }
        if !self.variants.is_empty() {
            stored.insert("variants".to_owned(), self.variants_json());
        }
        Value::Object(stored).to_string()
    }

    /// Reads [`Routing::to_stored`]'s form. Its URLs are trusted (they were checked when stored); anything that
    /// is not a routing this version can read is `None`.
    pub fn from_stored(stored: &str) -> Option<Self> {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(stored) else {
            return None;
        };
        let trusted = |url: &str| Ok(url.to_owned());
        let rules =
            parse::parse_rules(fields.get("rules").unwrap_or(&Value::Null), &trusted).ok()?;
        let variants =
            parse::parse_variants(fields.get("variants").unwrap_or(&Value::Null), &trusted).ok()?;
        Some(Self { rules, variants })
    }
}

fn rule_json(rule: &Rule) -> Value {
    let when = &rule.when;
    let mut conditions = Map::new();
    let mut put = |name: &str, value: Value| {
        conditions.insert(name.to_owned(), value);
    };
    if let Some(device) = when.device {
        put("device", device.name().into());
    }
    if let Some(os) = when.os {
        put("os", os.name().into());
    }
    if let Some(language) = when.language {
        put("language", language.as_str().into());
    }
    if let Some(country) = when.country {
        put("country", String::from_utf8_lossy(&country).into());
    }
    if let Some(after) = when.after {
        put("after", time_json(after));
    }
    if let Some(before) = when.before {
        put("before", time_json(before));
    }
    if !when.query.is_empty() {
        let pairs = when
            .query
            .iter()
            .map(|(name, value)| (name.clone(), Value::from(value.as_str())));
        put("query", Value::Object(pairs.collect()));
    }
    json!({"when": conditions, "long_url": rule.long_url})
}

fn variant_json(variant: &Variant) -> Value {
    json!({"long_url": variant.long_url, "weight": variant.weight})
}

/// RFC 3339 in UTC, with as many fraction digits as the time has (none for whole seconds).
fn time_json(time: DateTime<Utc>) -> Value {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true).into()
}
