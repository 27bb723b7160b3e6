//! What a link is, and the part of it a redirect needs.

use chrono::{DateTime, Utc};

/// The HTTP status a short link answers with. 302 is the default: browsers do not cache it, so every visit is
/// counted; 301/308 let browsers and CDNs cache the redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedirectStatus {
    /// Moved Permanently.
    Permanent301,
    /// Found (the default).
    #[default]
    Found302,
    /// Temporary Redirect (keeps the method).
    Temporary307,
    /// Permanent Redirect (keeps the method).
    Permanent308,
}

impl RedirectStatus {
    /// The status for an HTTP status code, if it is one a link may use.
    pub fn from_code(code: u16) -> Option<Self> {
        match code {
            301 => Some(Self::Permanent301),
            302 => Some(Self::Found302),
            307 => Some(Self::Temporary307),
            308 => Some(Self::Permanent308),
            _ => None,
        }
    }

    /// The HTTP status code.
    pub fn code(self) -> u16 {
        match self {
            Self::Permanent301 => 301,
            Self::Found302 => 302,
            Self::Temporary307 => 307,
            Self::Permanent308 => 308,
        }
    }

    /// Whether browsers and shared caches may keep the redirect.
    pub fn is_permanent(self) -> bool {
        matches!(self, Self::Permanent301 | Self::Permanent308)
    }
}

/// A stored link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The Snowflake ID (primary key).
    pub id: i64,
    /// The key it is stored under: its code (compact, base62 of `id`, or the alias), as `host/code` on a domain
    /// other than the default one ([`crate::domain::link_key`]).
    pub code: String,
    /// The normalised target URL.
    pub long_url: String,
    /// When the link was created.
    pub created_at: DateTime<Utc>,
    /// When the link stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// The status the redirect answers with.
    pub redirect: RedirectStatus,
    /// The API key that created it, if any.
    pub owner_id: Option<i64>,
    /// Labels its owner finds it by: sorted, unique, each `[a-z0-9-]{1,32}`, at most 10.
    pub tags: Vec<String>,
    /// The Argon2id hash (PHC string) of the password a visitor must give, if any. Never shown to anyone.
    pub password_hash: Option<String>,
    /// Counted (human) hits after which the link answers 410, if any.
    pub max_hits: Option<i64>,
    /// Its rules and variants as stored (`crate::routing`'s JSON), if it has any.
    pub routing: Option<String>,
}

impl Link {
    /// What a redirect needs for this link while it is live.
    pub fn resolution(&self) -> Resolution {
        Resolution::Live {
            long_url: self.long_url.clone(),
            redirect: self.redirect,
            expires_at: self.expires_at,
            id: self.id,
            password_hash: self.password_hash.clone(),
            limited: self.max_hits.is_some(),
            max_hits: self.max_hits,
            routing: routing_of(self.routing.as_deref()),
            owner: self.owner_id,
        }
    }
}

/// Stored rules and variants, parsed (`None` for none, or for a value this version cannot read).
pub fn routing_of(stored: Option<&str>) -> Option<std::sync::Arc<crate::routing::Routing>> {
    stored
        .and_then(crate::routing::Routing::from_stored)
        .filter(|routing| !routing.is_empty())
        .map(std::sync::Arc::new)
}

/// A link to insert: a [`Link`] before the database gives it its creation time. Owned, so that it can wait in
/// the shortener's insert queue; the insert itself borrows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    /// The Snowflake ID.
    pub id: i64,
    /// base62 of the ID, or the alias.
    pub code: String,
    /// The normalised URL.
    pub long_url: String,
    /// When it expires, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// The redirect status.
    pub redirect: RedirectStatus,
    /// The creating API key.
    pub owner_id: Option<i64>,
    /// Sorted, unique, checked tags.
    pub tags: Vec<String>,
    /// The Argon2id hash of its password, if any.
    pub password_hash: Option<String>,
    /// Its visit limit, if any.
    pub max_hits: Option<i64>,
    /// Its rules and variants as stored, if any.
    pub routing: Option<String>,
}

/// What a redirect needs to answer for one code: the lookup result cached in Redis and in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A live (or since expired) link.
    Live {
        /// Where to send the visitor.
        long_url: String,
        /// The status to answer with.
        redirect: RedirectStatus,
        /// When it stops working, if ever: checked on every answer, whatever tier the target came from.
        expires_at: Option<DateTime<Utc>>,
        /// The link's ID, for hit counting.
        id: i64,
        /// The Argon2id hash of its password: the redirect asks for the password instead of redirecting.
        /// `None` for almost every link, which then pays nothing for the feature.
        password_hash: Option<String>,
        /// It has a visit limit (`max_hits`): its hits are written every flush tick so the limit is enforced
        /// promptly; the hits of every other link wait for the slower, paced write of where visits came from.
        limited: bool,
        /// The visit limit itself, when known (values cached before it travelled say only `limited`): a redirect
        /// process answers at most this many visits of the link itself, whatever becomes of its flushes.
        max_hits: Option<i64>,
        /// Its rules and variants, parsed once where the entry is filled; `None` for almost every link, which
        /// pays a single branch for the feature.
        routing: Option<std::sync::Arc<crate::routing::Routing>>,
        /// The API key that owns it (`None`: created anonymously): the redirect takes click events for the links
        /// of owners with a click webhook or a live stream open (see `events`).
        owner: Option<i64>,
    },
    /// The link existed and was deleted or disabled: 410.
    Gone,
    /// No such code: 404.
    Unknown,
}

impl Resolution {
    /// The target as seen at `now`: a live link past its expiry is `Gone`.
    pub fn at(self, now: DateTime<Utc>) -> Self {
        match self {
            Self::Live {
                expires_at: Some(expires_at),
                ..
            } if expires_at <= now => Self::Gone,
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_four_redirect_codes_are_accepted() {
        for code in [301, 302, 307, 308] {
            assert_eq!(
                RedirectStatus::from_code(code).map(RedirectStatus::code),
                Some(code)
            );
        }
        for code in [200, 300, 303, 304, 404] {
            assert_eq!(RedirectStatus::from_code(code), None);
        }
    }

    #[test]
    fn an_expired_live_target_is_gone() {
        let now = Utc::now();
        let live = |expires_at| Resolution::Live {
            long_url: "https://example.com/".into(),
            redirect: RedirectStatus::Found302,
            expires_at,
            id: 1,
            password_hash: None,
            limited: false,
            max_hits: None,
            routing: None,
            owner: None,
        };
        assert_eq!(live(Some(now)).at(now), Resolution::Gone);
        assert_eq!(
            live(Some(now + chrono::Duration::seconds(1))).at(now),
            live(Some(now + chrono::Duration::seconds(1)))
        );
        assert_eq!(live(None).at(now), live(None));
    }
}
