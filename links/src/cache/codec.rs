//! The compact value cached per code, which the redirect decodes on every Redis hit, and how long it may stay.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::model::{RedirectStatus, Resolution};

/// How long a target may stay cached: `base`, shortened to the time the link has left, and never past it.
pub fn ttl_for(target: &Resolution, base: Duration, now: DateTime<Utc>) -> Duration {
    match target {
        Resolution::Live {
            expires_at: Some(expires_at),
            ..
        } => {
            let left = (*expires_at - now).to_std().unwrap_or(Duration::ZERO);
            base.min(left).max(Duration::from_millis(1))
        }
        _ => base,
    }
}

/// The value that replaces a code's entry when the link changes (deleted, disabled, expired), for
/// [`RECENTLY_CHANGED`]: a fill from a lookup that started before the change (or read a lagging replica) must not
/// write the old link back. Fills only set an absent key (`NX`), so they cannot overwrite it; a reader takes it
/// as "ask the primary". Not a valid value for [`decode`], so a reader that does not know it sees a miss.
pub const CHANGED_MARK: &str = "c";

/// How long [`CHANGED_MARK`] stays: past any replica lag the redirect tolerates (it confirms misses on the primary
/// for a minute too) and any lookup in flight (each is bounded by a second).
pub const RECENTLY_CHANGED: Duration = Duration::from_secs(60);

/// What Redis holds for a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// A target.
    Found(Resolution),
    /// The link changed within [`RECENTLY_CHANGED`]: only the primary's answer is current.
    RecentlyChanged,
    /// Nothing (or a value this version cannot read).
    Nothing,
}

impl Cached {
    /// Reads a stored value.
    pub fn from_value(value: Option<&str>) -> Self {
        match value {
            Some(CHANGED_MARK) => Self::RecentlyChanged,
            Some(value) => decode(value).map_or(Self::Nothing, Self::Found),
            None => Self::Nothing,
        }
    }

    /// The target, if one is cached.
    pub fn found(self) -> Option<Resolution> {
        match self {
            Self::Found(target) => Some(target),
            Self::RecentlyChanged | Self::Nothing => None,
        }
    }
}

/// Flag of a stored live link: a visitor must give a password.
const PASSWORD: u8 = 1;
/// Flag of a stored live link: it has a visit limit.
const LIMITED: u8 = 2;
/// Flag of a stored live link: it has rules or variants (version 4 only).
const ROUTED: u8 = 4;

/// The value stored for a target: `2|flags|status|expires_ms|id|url` for a live link (flags: 1 password, 2 visit
/// limit; empty `expires_ms` for never), with `password_hash|` before the URL when it has a password (a PHC string
/// holds no `|`); a link whose visit limit is known is `3|flags|status|expires_ms|id|max_hits|…` (a version of
/// its own: a redirect of the version before reads it as a miss, never its limit as part of the URL); `g` for
/// gone, `u` for unknown (the negative entry). A link with rules or variants is
/// `4|flags|status|expires_ms|id|max_hits_or_empty|[hash|]routing_len|routing_json url` (flag 4; the stored
/// routing JSON of `routing_len` bytes runs straight into the URL): a version of its own again, so a redirect that
/// cannot route reads it as a miss rather than send everyone to `long_url`. Short and parsed without allocation
/// of fields.
pub fn encode(target: &Resolution) -> String {
    match target {
        Resolution::Live {
            long_url,
            redirect,
            expires_at,
            id,
            password_hash,
            limited,
            max_hits,
            routing,
        } => {
            let expires = expires_at
                .map(|at| at.timestamp_millis().to_string())
                .unwrap_or_default();
            let status = redirect.code();
            let mut flags = if *limited || max_hits.is_some() {
                LIMITED
            } else {
                0
            };
            let hash = match password_hash {
                Some(hash) => {
                    flags |= PASSWORD;
                    format!("{hash}|")
                }
                None => String::new(),
            };
            if let Some(routing) = routing {
                let stored = routing.to_stored();
                let max = max_hits.map(|max| max.to_string()).unwrap_or_default();
                let flags = flags | ROUTED;
                return format!(
                    "4|{flags}|{status}|{expires}|{id}|{max}|{hash}{}|{stored}{long_url}",
                    stored.len()
                );
            }
            let (version, max) = match max_hits {
                Some(max) => ("3", format!("{max}|")),
                None => ("2", String::new()),
            };
            format!("{version}|{flags}|{status}|{expires}|{id}|{max}{hash}{long_url}")
        }
        Resolution::Gone => "g".to_owned(),
        Resolution::Unknown => "u".to_owned(),
    }
}

/// Reads a version-4 value (see [`encode`]): `rest` is what follows `4|`.
fn decode_routed(rest: &str) -> Option<Resolution> {
    let (flags, rest) = rest.split_once('|')?;
    let flags = flags.parse::<u8>().ok()?;
    let protected = flags & PASSWORD != 0;
    let mut fields = rest.splitn(5 + usize::from(protected), '|');
    let redirect = RedirectStatus::from_code(fields.next()?.parse().ok()?)?;
    let expires_at = match fields.next()? {
        "" => None,
        millis => Some(Utc.timestamp_millis_opt(millis.parse().ok()?).single()?),
    };
    let id = fields.next()?.parse().ok()?;
    let max_hits = match fields.next()? {
        "" => None,
        max => Some(max.parse().ok()?),
    };
    let password_hash = if protected {
        Some(fields.next()?.to_owned())
    } else {
        None
    };
    let (length, rest) = fields.next()?.split_once('|')?;
    let (stored, long_url) = rest.split_at_checked(length.parse().ok()?)?;
    let routing = crate::model::routing_of(Some(stored))?;
    Some(Resolution::Live {
        long_url: long_url.to_owned(),
        redirect,
        expires_at,
        id,
        password_hash,
        limited: flags & LIMITED != 0 || max_hits.is_some(),
        max_hits,
        routing: Some(routing),
    })
}

/// Reads a value written by [`encode`]; `None` for anything else (treated as a miss, then overwritten). Values
/// written before links said whether they have a visit limit (`1|…`, `p|…` for a password) read as limited: their
/// hits are written every tick, as they all were then, until the entry is refilled.
pub fn decode(value: &str) -> Option<Resolution> {
    match value {
        "g" => return Some(Resolution::Gone),
        "u" => return Some(Resolution::Unknown),
        _ => {}
    }
    if let Some(rest) = value.strip_prefix("4|") {
        return decode_routed(rest);
    }
    let (flags, rest, with_max) = match value.split_at_checked(2)? {
        (version @ ("2|" | "3|"), rest) => {
            let (flags, rest) = rest.split_once('|')?;
            (flags.parse::<u8>().ok()?, rest, version == "3|")
        }
        ("1|", rest) => (LIMITED, rest, false),
        ("p|", rest) => (LIMITED | PASSWORD, rest, false),
        _ => return None,
    };
    let protected = flags & PASSWORD != 0;
    let mut fields = rest.splitn(4 + usize::from(protected) + usize::from(with_max), '|');
    let redirect = RedirectStatus::from_code(fields.next()?.parse().ok()?)?;
    let expires_at = match fields.next()? {
        "" => None,
        millis => Some(Utc.timestamp_millis_opt(millis.parse().ok()?).single()?),
    };
    let id = fields.next()?.parse().ok()?;
    let max_hits = if with_max {
        Some(fields.next()?.parse().ok()?)
    } else {
        None
    };
    let password_hash = if protected {
        Some(fields.next()?.to_owned())
    } else {
        None
    };
    let long_url = fields.next()?.to_owned();
    Some(Resolution::Live {
        long_url,
        redirect,
        expires_at,
        id,
        password_hash,
        limited: flags & LIMITED != 0 || max_hits.is_some(),
        max_hits,
        routing: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(expires_at: Option<DateTime<Utc>>) -> Resolution {
        live_as(expires_at, false)
    }

    fn live_as(expires_at: Option<DateTime<Utc>>, limited: bool) -> Resolution {
        Resolution::Live {
            long_url: "https://example.com/a|b?c=d".into(),
            redirect: RedirectStatus::Permanent308,
            expires_at,
            id: 42,
            password_hash: None,
            limited,
            max_hits: None,
            routing: None,
        }
    }

    fn with_max(target: Resolution, max: i64) -> Resolution {
        match target {
            Resolution::Live {
                long_url,
                redirect,
                expires_at,
                id,
                password_hash,
                ..
            } => Resolution::Live {
                long_url,
                redirect,
                expires_at,
                id,
                password_hash,
                limited: true,
                max_hits: Some(max),
                routing: None,
            },
            other => other,
        }
    }

    #[test]
    fn every_target_survives_a_round_trip() {
        let at = Utc.timestamp_millis_opt(1_800_000_000_123).single();
        let protected = Resolution::Live {
            long_url: "https://example.com/a|b".into(),
            redirect: RedirectStatus::Found302,
            expires_at: at,
            id: 43,
            password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
            limited: true,
            max_hits: None,
            routing: None,
        };
        for target in [
            live(None),
            live(at),
            protected.clone(),
            live_as(at, true),
            with_max(live(at), 1),
            with_max(protected, 1_000_000_000_000),
            Resolution::Gone,
            Resolution::Unknown,
        ] {
            assert_eq!(decode(&encode(&target)), Some(target));
        }
    }

    #[test]
    fn values_from_before_visit_limits_were_cached_read_as_limited() {
        assert_eq!(
            decode("1|308||42|https://example.com/a|b?c=d"),
            Some(live_as(None, true))
        );
        let Some(Resolution::Live {
            password_hash: Some(hash),
            limited: true,
            ..
        }) = decode("p|302||43|$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA|https://example.com/")
        else {
            panic!("an old password value is a limited live link with its hash");
        };
        assert!(hash.starts_with("$argon2id$"));
    }

    #[test]
    fn a_known_limit_is_a_version_the_redirect_before_it_reads_as_a_miss() {
        let value = encode(&with_max(live(None), 5));
        assert_eq!(value, "3|2|308||42|5|https://example.com/a|b?c=d");
        assert_eq!(
            encode(&live_as(None, true)),
            "2|2|308||42|https://example.com/a|b?c=d",
            "a limit not known keeps the old version"
        );
        assert_eq!(decode("3|2|308||42|x|https://example.com/"), None);
    }

    #[test]
    fn a_link_with_rules_or_variants_is_a_version_of_its_own_and_survives_a_round_trip() {
        let stored = r#"{"rules":[{"when":{"os":"ios"},"long_url":"https://example.com/i|os"}],"variants":[{"long_url":"https://example.com/a","weight":70},{"long_url":"https://example.com/b","weight":30}]}"#;
        let routing = crate::model::routing_of(Some(stored));
        assert!(routing.is_some());
        for (password_hash, max_hits) in [
            (None, None),
            (
                Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned()),
                Some(5),
            ),
        ] {
            let target = Resolution::Live {
                long_url: "https://example.com/a|b".into(),
                redirect: RedirectStatus::Temporary307,
                expires_at: Utc.timestamp_millis_opt(1_800_000_000_123).single(),
                id: 44,
                password_hash,
                limited: max_hits.is_some(),
                max_hits,
                routing: routing.clone(),
            };
            let value = encode(&target);
            assert!(value.starts_with("4|"), "{value}");
            assert_eq!(decode(&value), Some(target));
        }
        assert_eq!(decode("4|4|302||1||5|{\"x\":https://example.com/"), None);
        assert_eq!(decode("4|4|302||1||999|{}https://example.com/"), None);
    }

    #[test]
    fn foreign_values_are_misses() {
        for junk in [
            "",
            "x",
            "1|",
            "1|200||1|u",
            "1|302|abc|1|u",
            "2|302||1|u",
            "2|x|302||1|u",
            "2|1|302||1|u",
            "p|302||1|u",
        ] {
            assert_eq!(decode(junk), None, "{junk}");
        }
    }

    #[test]
    fn the_ttl_never_outlives_the_link() {
        let now = Utc::now();
        let base = Duration::from_secs(3600);
        assert_eq!(ttl_for(&live(None), base, now), base);
        assert_eq!(
            ttl_for(&live(Some(now + chrono::Duration::seconds(10))), base, now),
            Duration::from_secs(10)
        );
        assert_eq!(
            ttl_for(&live(Some(now - chrono::Duration::seconds(10))), base, now),
            Duration::from_millis(1)
        );
    }
}
