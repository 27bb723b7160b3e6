//! An event as delivered: `{"id", "type", "created_at", "data"}`, built once where it happens so that every
//! delivery and every retry sends the same bytes (the signature covers them), with the owner and the link it
//! belongs to beside it for routing. A click's `data` never holds the visitor's address.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// What happened: the webhook registry's event types, one name for each everywhere.
pub use links::webhooks::EventType as Kind;

/// One event, ready to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Unique: receivers dedupe on it (`evt_` and 32 hex digits from the OS's random source).
    pub id: String,
    /// What happened.
    pub kind: Kind,
    /// The API key that owns the link: whose webhooks get it.
    pub owner: i64,
    /// The link's key (`host/code` off the default domain): whose live streams get it.
    pub link: String,
    /// The JSON delivered.
    pub body: String,
}

impl Event {
    /// An event of `kind` about the link `link` of `owner`, with `data`, happening `at`.
    pub fn new(kind: Kind, owner: i64, link: String, at: DateTime<Utc>, data: Value) -> Self {
        let id = new_id();
        let body = json!({
            "id": id,
            "type": kind.as_str(),
            "created_at": at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": data,
        })
        .to_string();
        Self {
            id,
            kind,
            owner,
            link,
            body,
        }
    }
}

/// A visit, as a click event tells it.
#[derive(Debug, Clone)]
pub struct Click<'a> {
    /// The code, without its domain.
    pub code: &'a str,
    /// The host the link is on.
    pub domain: &'a str,
    /// Where the visitor was sent (after rules and variants).
    pub long_url: &'a str,
    /// When.
    pub at: DateTime<Utc>,
    /// The referring page's domain, if any.
    pub referrer_domain: Option<&'a str>,
    /// `desktop`, `mobile`, `tablet` or `bot`.
    pub device: &'static str,
    /// `ios`, `android`, `windows`, `macos`, `linux` or `other`.
    pub os: &'static str,
    /// Two letters, when a trusted proxy said.
    pub country: Option<&'a str>,
    /// Whether the visitor is a crawler or a script.
    pub bot: bool,
    /// The variant the visitor got, by position.
    pub variant: Option<u8>,
}

impl Click<'_> {
    /// The click event of the link `link` of `owner`.
    pub fn event(&self, owner: i64, link: String) -> Event {
        let data = json!({
            "code": self.code,
            "domain": self.domain,
            "long_url": self.long_url,
            "at": self.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "referrer_domain": self.referrer_domain,
            "device": self.device,
            "os": self.os,
            "country": self.country,
            "bot": self.bot,
            "variant": self.variant,
        });
        Event::new(Kind::Click, owner, link, self.at, data)
    }
}

/// A new event id.
fn new_id() -> String {
    format!("evt_{}", hex::encode(rand::random::<[u8; 16]>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_click_event_is_the_contract_s_json_and_ids_differ() {
        let click = Click {
            code: "abc1234",
            domain: "go.example",
            long_url: "https://example.com/",
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default(),
            referrer_domain: Some("news.example"),
            device: "mobile",
            os: "ios",
            country: None,
            bot: false,
            variant: Some(1),
        };
        let first = click.event(7, "go.example/abc1234".into());
        let second = click.event(7, "go.example/abc1234".into());
        assert_ne!(first.id, second.id);
        let body: Value = serde_json::from_str(&first.body).unwrap_or_default();
        assert_eq!(body["id"], first.id.as_str());
        assert_eq!(body["type"], "click");
        assert_eq!(body["created_at"], "2027-01-15T08:00:00.000Z");
        let keys: Vec<&str> = body["data"]
            .as_object()
            .map(|data| data.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut expected = [
            "at",
            "bot",
            "code",
            "country",
            "device",
            "domain",
            "long_url",
            "os",
            "referrer_domain",
            "variant",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(body["data"]["variant"], 1);
        assert_eq!(Kind::parse("link.updated"), Some(Kind::LinkUpdated));
        assert_eq!(Kind::parse("clicks"), None);
    }
}
