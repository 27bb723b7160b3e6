//! Webhooks: the event types an owner can subscribe to, and every statement on `webhooks` (an owner's webhooks
//! created, listed and deleted; the delivery side's reads, and its marks of a webhook failing, recovered or
//! paused). Sending is the shortener's (`webhooks::send`); this is what is stored.

use chrono::{DateTime, Utc};
use database::DbError;
use rand::RngCore as _;

use crate::store::Store;

/// The most webhooks one owner may have: each is a delivery of every event, so the bound keeps one key's
/// fan-out, and the shortener's outbound traffic for it, small.
pub const MAX_WEBHOOKS_PER_OWNER: i64 = 10;

/// Prefix that makes a webhook secret recognisable in logs and secret scanners.
pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and 64 hex digits (256 bits from the thread-local CSPRNG, as API keys).
pub fn generate_secret() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", hex::encode(bytes))
}

/// What happened, as a webhook subscribes to it and a delivery's `type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A visit of one of the owner's links.
    Click,
    /// One of the owner's links was created.
    LinkCreated,
    /// One of the owner's links was changed.
    LinkUpdated,
    /// One of the owner's links was deleted.
    LinkDeleted,
}

impl EventType {
    /// Every event type, in the order lists show them.
    pub const ALL: [Self; 4] = [
        Self::Click,
        Self::LinkCreated,
        Self::LinkUpdated,
        Self::LinkDeleted,
    ];

    /// The name of the API, the stored row and a delivery's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Click => "click",
            Self::LinkCreated => "link.created",
            Self::LinkUpdated => "link.updated",
            Self::LinkDeleted => "link.deleted",
        }
    }

    /// The event type named `name`, exactly as [`as_str`](Self::as_str) spells it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|event| event.as_str() == name)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of event types, one bit each: what a webhook subscribes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EventTypes(u8);

/// Why a list of event names is no webhook's subscription.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventsError {
    /// No event at all.
    #[error("events must name at least one of click, link.created, link.updated, link.deleted")]
    Empty,
    /// A name that is no event type (cut to 64 characters).
    #[error("{0:?} is not an event: use click, link.created, link.updated or link.deleted")]
    Unknown(String),
    /// A name given twice.
    #[error("{0:?} is named twice")]
    Duplicate(&'static str),
}

impl EventTypes {
    /// Whether `event` is in the set.
    pub fn contains(self, event: EventType) -> bool {
        self.0 & event.bit() != 0
    }

    /// The set with `event` in it too.
    #[must_use]
    pub fn with(self, event: EventType) -> Self {
        Self(self.0 | event.bit())
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The event types in the set, in [`EventType::ALL`]'s order.
    pub fn iter(self) -> impl Iterator<Item = EventType> {
        EventType::ALL
            .into_iter()
            .filter(move |event| self.contains(*event))
    }

    /// The names, as stored in `webhooks.events` and shown by the API.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(EventType::as_str).collect()
    }

    /// The set a request names: at least one event, each known and named once.
    ///
    /// # Errors
    /// The first name that breaks a rule, or [`EventsError::Empty`].
    pub fn parse_list<S: AsRef<str>>(names: &[S]) -> Result<Self, EventsError> {
        let mut set = Self::default();
        for name in names {
            let name = name.as_ref();
            let event = EventType::parse(name)
                .ok_or_else(|| EventsError::Unknown(name.chars().take(64).collect()))?;
            if set.contains(event) {
                return Err(EventsError::Duplicate(event.as_str()));
            }
            set = set.with(event);
        }
        if set.is_empty() {
            return Err(EventsError::Empty);
        }
        Ok(set)
    }

    /// The set a stored row names. A name this release does not know (written by a newer one, during a
    /// rollback) is skipped rather than failing the read.
    pub fn from_stored<S: AsRef<str>>(names: &[S]) -> Self {
        names
            .iter()
            .filter_map(|name| EventType::parse(name.as_ref()))
            .fold(Self::default(), Self::with)
    }
}

impl FromIterator<EventType> for EventTypes {
    fn from_iter<I: IntoIterator<Item = EventType>>(events: I) -> Self {
        events.into_iter().fold(Self::default(), Self::with)
    }
}

/// A webhook as stored. Its `Debug` print leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Its ID (shown by the API as a decimal string).
    pub id: i64,
    /// The API key whose events it receives.
    pub owner_id: i64,
    /// Where deliveries are POSTed (checked against private addresses when created and at every delivery).
    pub url: String,
    /// What it subscribes to.
    pub events: EventTypes,
    /// The key of its signatures (`whsec_…`); shown to the owner only when created.
    pub secret: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Since when deliveries fail; `None` while they succeed.
    pub failing_since: Option<DateTime<Utc>>,
    /// When it was paused for failing too long; a paused webhook gets no deliveries.
    pub paused_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Webhook")
            .field("id", &self.id)
            .field("owner_id", &self.owner_id)
            .field("url", &self.url)
            .field("events", &self.events.names())
            .field("secret", &"[REDACTED]")
            .field("created_at", &self.created_at)
            .field("failing_since", &self.failing_since)
            .field("paused_at", &self.paused_at)
            .finish()
    }
}

/// Why a webhook was not created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The owner has [`MAX_WEBHOOKS_PER_OWNER`] already.
    #[error("an API key may have at most {MAX_WEBHOOKS_PER_OWNER} webhooks; delete one first")]
    TooMany,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The columns [`webhook_from_row`] reads, in its order.
const WEBHOOK_COLUMNS: &str =
    "id, owner_id, url, events, secret, created_at, failing_since, paused_at";

fn webhook_from_row(row: &tokio_postgres::Row) -> Webhook {
    let events: Vec<String> = row.get(3);
    Webhook {
        id: row.get(0),
        owner_id: row.get(1),
        url: row.get(2),
        events: EventTypes::from_stored(&events),
        secret: row.get(4),
        created_at: row.get(5),
        failing_since: row.get(6),
        paused_at: row.get(7),
    }
}

impl Store {
    /// Creates a webhook of `owner_id`'s, unless it has [`MAX_WEBHOOKS_PER_OWNER`] already. The owner's API key
    /// row is locked first (`FOR NO KEY UPDATE`: it waits for no link insert's foreign-key check), so that two
    /// creates at once count in turn and cannot both pass the bound; the count runs after the lock, in a
    /// statement of its own whose snapshot sees the other's commit.
    ///
    /// # Errors
    /// [`WebhookError::TooMany`], or the database failed (an owner with no API key is a foreign-key error).
    pub async fn create_webhook(
        &self,
        owner_id: i64,
        url: &str,
        events: EventTypes,
        secret: &str,
    ) -> Result<Webhook, WebhookError> {
        let mut client = self.pool().get().await.map_err(DbError::from)?;
        let transaction = client.transaction().await.map_err(DbError::from)?;
        transaction
            .execute(
                "SELECT 1 FROM api_keys WHERE id = $1 FOR NO KEY UPDATE",
                &[&owner_id],
            )
            .await
            .map_err(DbError::from)?;
        let row = transaction
            .query_opt(
                &format!(
                    "INSERT INTO webhooks (owner_id, url, events, secret)
                     SELECT $1, $2, $3, $4
                     WHERE (SELECT count(*) FROM webhooks WHERE owner_id = $1) < $5
                     RETURNING {WEBHOOK_COLUMNS}"
                ),
                &[
                    &owner_id,
                    &url,
                    &events.names(),
                    &secret,
                    &MAX_WEBHOOKS_PER_OWNER,
                ],
            )
            .await
            .map_err(DbError::from)?;
        let webhook = row.as_ref().map(webhook_from_row);
        transaction.commit().await.map_err(DbError::from)?;
        webhook.ok_or(WebhookError::TooMany)
    }

    /// `owner_id`'s webhooks, oldest first.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn list_webhooks(&self, owner_id: i64) -> Result<Vec<Webhook>, DbError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE owner_id = $1 ORDER BY id"),
                &[&owner_id],
            )
            .await?;
        Ok(rows.iter().map(webhook_from_row).collect())
    }

    /// Deletes webhook `id` if it is `owner_id`'s; whether it was.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn delete_webhook(&self, owner_id: i64, id: i64) -> Result<bool, DbError> {
        let client = self.pool().get().await?;
        let deleted = client
            .execute(
                "DELETE FROM webhooks WHERE id = $1 AND owner_id = $2",
                &[&id, &owner_id],
            )
            .await?;
        Ok(deleted > 0)
    }

    /// Every webhook that is not paused, of every owner, by ID: what the delivery side sends to.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn active_webhooks(&self) -> Result<Vec<Webhook>, DbError> {
        let client = self.pool().get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE paused_at IS NULL ORDER BY id"
                ),
                &[],
            )
            .await?;
        Ok(rows.iter().map(webhook_from_row).collect())
    }

    /// Marks webhook `id` failing from now, unless it was already; returns since when it fails (`None`: no such
    /// webhook, deleted meanwhile).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn webhook_failed(&self, id: i64) -> Result<Option<DateTime<Utc>>, DbError> {
        let client = self.pool().get().await?;
        let row = client
            .query_opt(
                "UPDATE webhooks SET failing_since = coalesce(failing_since, now()) WHERE id = $1
                 RETURNING failing_since",
                &[&id],
            )
            .await?;
        Ok(row.and_then(|row| row.get(0)))
    }

    /// Marks webhook `id` as delivering again. Writes only when it was failing: a delivery that succeeds, the
    /// common case, costs no row version.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn webhook_recovered(&self, id: i64) -> Result<(), DbError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE webhooks SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
                &[&id],
            )
            .await?;
        Ok(())
    }

    /// Pauses webhook `id` (it gets no more deliveries; `GET /v1/webhooks` shows it paused). Pausing a paused
    /// one keeps its first pause time.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn pause_webhook(&self, id: i64) -> Result<(), DbError> {
        let client = self.pool().get().await?;
        client
            .execute(
                "UPDATE webhooks SET paused_at = now() WHERE id = $1 AND paused_at IS NULL",
                &[&id],
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_prefixed_and_256_bits() {
        let (a, b) = (generate_secret(), generate_secret());

        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 64);
    }

    #[test]
    fn every_event_type_reads_back_from_its_name() {
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Some(event));
        }
        assert_eq!(EventType::parse("Click"), None);
        assert_eq!(EventType::parse("link"), None);
    }

    #[test]
    fn a_set_holds_what_it_was_given_in_a_fixed_order() {
        let set = EventTypes::parse_list(&["link.deleted", "click"]).expect("valid");

        assert!(set.contains(EventType::Click));
        assert!(set.contains(EventType::LinkDeleted));
        assert!(!set.contains(EventType::LinkCreated));
        assert_eq!(set.names(), ["click", "link.deleted"]);
        assert_eq!(EventTypes::from_stored(&set.names()), set);
        assert_eq!(set.iter().collect::<EventTypes>(), set);
    }

    #[test]
    fn an_empty_unknown_or_repeated_list_is_refused() {
        let none: [&str; 0] = [];
        assert_eq!(EventTypes::parse_list(&none), Err(EventsError::Empty));
        assert_eq!(
            EventTypes::parse_list(&["click", "visit"]),
            Err(EventsError::Unknown("visit".into()))
        );
        assert_eq!(
            EventTypes::parse_list(&["click", "link.created", "click"]),
            Err(EventsError::Duplicate("click"))
        );
        let long = "x".repeat(1_000);
        assert!(matches!(
            EventTypes::parse_list(&[long]),
            Err(EventsError::Unknown(name)) if name.len() == 64
        ));
    }

    #[test]
    fn a_debug_print_leaves_the_secret_out() {
        let webhook = Webhook {
            id: 1,
            owner_id: 2,
            url: "https://example.com/".into(),
            events: EventTypes::default().with(EventType::Click),
            secret: generate_secret(),
            created_at: Utc::now(),
            failing_since: None,
            paused_at: None,
        };

        let printed = format!("{webhook:?}");

        assert!(!printed.contains(&webhook.secret), "{printed}");
        assert!(
            printed.contains("[REDACTED]") && printed.contains("click"),
            "{printed}"
        );
    }

    #[test]
    fn a_stored_name_this_release_does_not_know_is_skipped() {
        let set = EventTypes::from_stored(&["click", "link.archived"]);

        assert_eq!(set.names(), ["click"]);
    }
}
