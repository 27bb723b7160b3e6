//! What rules ask about a visitor, read cheaply off the request: the [`Visitor`] that `choose` takes, the device
//! classes, and the country a CDN put in a header. The OS and the language have modules of their own ([`super::os`],
//! [`super::language`]); like them, nothing here allocates.

use chrono::{DateTime, Utc};

use super::{Lang, Os};

/// What [`crate::routing::Routing::choose`] knows of a visitor: the caller reads each attribute off the request
/// (only those [`crate::routing::Routing::needs`] asks for; the rest may be left at their "unknown" value).
#[derive(Debug, Clone, Copy)]
pub struct Visitor<'a> {
    /// The device class the redirect already gives each hit.
    pub device: DeviceClass,
    /// The operating system, [`Os::of`] the `User-Agent`.
    pub os: Os,
    /// The [`super::primary_language`] of `Accept-Language`.
    pub language: Option<Lang>,
    /// The country (two letters, either case) from the trusted country header; see [`country_code`].
    pub country: Option<[u8; 2]>,
    /// The time the visit is judged at (`after`, `before`).
    pub now: DateTime<Utc>,
    /// The raw query string (without `?`), for `query` conditions.
    pub query: &'a str,
    /// The visitor's [`crate::routing::visitor_key`], which keeps a visitor on one variant.
    pub key: u64,
}

/// A device class, as the redirect's hit counter tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceClass {
    /// A desktop browser (and what is not known to be anything else).
    Desktop,
    /// A phone.
    Mobile,
    /// A tablet.
    Tablet,
    /// A crawler, a previewer, a script: no `device` condition holds for it.
    Bot,
}

/// The device classes a rule may name, by their names in the API.
const DEVICE_NAMES: [(&str, DeviceClass); 3] = [
    ("desktop", DeviceClass::Desktop),
    ("mobile", DeviceClass::Mobile),
    ("tablet", DeviceClass::Tablet),
];

impl DeviceClass {
    /// The class a rule names (`bot` is none: a rule cannot ask for bots).
    pub fn from_name(name: &str) -> Option<Self> {
        DEVICE_NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, class)| *class)
    }

    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Desktop => "desktop",
            Self::Mobile => "mobile",
            Self::Tablet => "tablet",
            Self::Bot => "bot",
        }
    }
}

/// A country header's value as two uppercase letters (`de` → `DE`); `None` unless it is two ASCII letters.
pub fn country_code(value: &[u8]) -> Option<[u8; 2]> {
    match value.trim_ascii() {
        &[first, second] if first.is_ascii_alphabetic() && second.is_ascii_alphabetic() => {
            Some([first.to_ascii_uppercase(), second.to_ascii_uppercase()])
        }
        _ => None,
    }
}
