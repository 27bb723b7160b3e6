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

/// The value stored for a target: `5|flags|status|expires_ms|id|max_hits|owner|[hash|]routing_len|routing url` for
/// a live link (flags: 1 password, 2 visit limit; an empty `expires_ms`, `max_hits` or `owner` for none; the
/// password's PHC string, which holds no `|`, only with flag 1; `routing_len` bytes of stored rules and variants,
/// `0` for none, running straight into the URL); `g` for gone, `u` for unknown (the negative entry). The owner
/// travels so the redirect can tell a link whose owner takes click events without a read per visit. Each new field
/// made a version of its own, so a redirect of the version before reads the value as a miss rather than
/// misreading it; [`decode`] still reads the versions before (`2|`, `3|`, `4|`, `1|`, `p|`, with no owner). Short
/// and parsed without allocation of fields.
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
            owner,
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
            let stored = routing
                .as_ref()
                .map(|routing| routing.to_stored())
                .unwrap_or_default();
            let max = max_hits.map(|max| max.to_string()).unwrap_or_default();
            let owner = owner.map(|owner| owner.to_string()).unwrap_or_default();
            format!(
                "5|{flags}|{status}|{expires}|{id}|{max}|{owner}|{hash}{}|{stored}{long_url}",
                stored.len()
            )
        }
        Resolution::Gone => "g".to_owned(),
        Resolution::Unknown => "u".to_owned(),
    }
}

/// Reads a version-4 or -5 value (see [`encode`]): `rest` is what follows `4|` or `5|`; version 5 has the owner
/// and may have no routing.
fn decode_routed(rest: &str, version: u8) -> Option<Resolution> {
    let (flags, rest) = rest.split_once('|')?;
    let flags = flags.parse::<u8>().ok()?;
    let protected = flags & PASSWORD != 0;
    let with_owner = version == 5;
    let mut fields = rest.splitn(5 + usize::from(protected) + usize::from(with_owner), '|');
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
    let owner = match with_owner.then(|| fields.next()).flatten() {
        None | Some("") => None,
        Some(owner) => Some(owner.parse().ok()?),
    };
    let password_hash = if protected {
        Some(fields.next()?.to_owned())
    } else {
        None
    };
    let (length, rest) = fields.next()?.split_once('|')?;
    let (stored, long_url) = rest.split_at_checked(length.parse().ok()?)?;
    let routing = match stored {
        "" if with_owner => None,
        stored => Some(crate::model::routing_of(Some(stored))?),
    };
    Some(Resolution::Live {
        long_url: long_url.to_owned(),
        redirect,
        expires_at,
        id,
        password_hash,
        limited: flags & LIMITED != 0 || max_hits.is_some(),
        max_hits,
        routing,
        owner,
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
    if let Some(rest) = value.strip_prefix("5|") {
        return decode_routed(rest, 5);
    }
    if let Some(rest) = value.strip_prefix("4|") {
        return decode_routed(rest, 4);
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
        owner: None,
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
            owner: None,
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
                owner: Some(7),
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
            owner: None,
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
    fn the_values_of_the_versions_before_still_read_without_an_owner() {
        assert!(matches!(
            decode("3|2|308||42|5|https://example.com/a|b?c=d"),
            Some(Resolution::Live {
                owner: None,
                max_hits: Some(5),
                id: 42,
                ..
            })
        ));
        assert_eq!(
            decode("2|2|308||42|https://example.com/a|b?c=d"),
            Some(live_as(None, true))
        );
        assert_eq!(decode("3|2|308||42|x|https://example.com/"), None);
    }

    #[test]
    fn every_live_link_is_version_5_with_its_owner() {
        assert_eq!(
            encode(&with_max(live(None), 5)),
            "5|2|308||42|5|7|0|https://example.com/a|b?c=d"
        );
        assert_eq!(
            encode(&live_as(None, true)),
            "5|2|308||42|||0|https://example.com/a|b?c=d"
        );
        assert_eq!(decode("5|0|308||42||x|0|https://example.com/"), None);
        assert_eq!(decode("5|0|308||42|||3|https://example.com/"), None);
    }

    #[test]
    fn a_link_with_rules_or_variants_survives_a_round_trip() {
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
                owner: Some(9),
            };
            let value = encode(&target);
            assert!(value.starts_with("5|"), "{value}");
            assert_eq!(decode(&value), Some(target));
        }
        let written_by_the_version_before = format!(
            "4|4|302||44||{}|{stored}https://example.com/a|b",
            stored.len()
        );
        assert!(matches!(
            decode(&written_by_the_version_before),
            Some(Resolution::Live {
                routing: Some(_),
                owner: None,
                ..
            })
        ));
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
