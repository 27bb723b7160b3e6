//! What rules ask about a visitor, read cheaply off the request's raw header bytes: the operating system from the
//! `User-Agent`, the primary language of the best `Accept-Language` entry, the country a CDN put in a header. None
//! of it allocates, and each reader bounds its work, whatever a request sends.

use chrono::{DateTime, Utc};

/// What [`crate::routing::Routing::choose`] knows of a visitor: the caller reads each attribute off the request
/// (only those [`crate::routing::Routing::needs`] asks for; the rest may be left at their "unknown" value).
#[derive(Debug, Clone, Copy)]
pub struct Visitor<'a> {
    /// The device class the redirect already gives each hit.
    pub device: DeviceClass,
    /// The operating system, [`Os::of`] the `User-Agent`.
    pub os: Os,
    /// The [`primary_language`] of `Accept-Language`.
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

/// An operating system, as far as rules tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Os {
    /// iOS and iPadOS (an iPad that asks for desktop sites says Macintosh and is [`Os::Macos`]).
    Ios,
    /// Android.
    Android,
    /// Windows.
    Windows,
    /// macOS.
    Macos,
    /// Linux desktops and ChromeOS.
    Linux,
    /// Anything else, or no `User-Agent`: no `os` condition holds for it.
    Other,
}

/// The systems a rule may name, by their names in the API.
const OS_NAMES: [(&str, Os); 5] = [
    ("ios", Os::Ios),
    ("android", Os::Android),
    ("windows", Os::Windows),
    ("macos", Os::Macos),
    ("linux", Os::Linux),
];

/// The longest prefix of a `User-Agent` searched: real ones name their system in their first hundred bytes.
const MAX_AGENT_SCAN: usize = 1024;

impl Os {
    /// The system a rule names (`other` is none).
    pub fn from_name(name: &str) -> Option<Self> {
        OS_NAMES
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, os)| *os)
    }

    /// Its name in the API.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Windows => "windows",
            Self::Macos => "macos",
            Self::Linux => "linux",
            Self::Other => "other",
        }
    }

    /// The system a `User-Agent` names, in one pass over it. iOS agents also say "like Mac OS X" and Android
    /// agents say "Linux", so the more specific system wins: iOS, then Android, Windows, macOS, Linux.
    pub fn of(user_agent: &[u8]) -> Self {
        let agent = &user_agent[..user_agent.len().min(MAX_AGENT_SCAN)];
        let mut seen = Seen::default();
        for start in 0..agent.len() {
            let rest = &agent[start..];
            match rest[0] {
                b'i' if starts_with_any(rest, &[b"iPhone", b"iPad", b"iPod"]) => return Self::Ios,
                b'C' if rest.starts_with(b"CPU OS") => return Self::Ios,
                b'A' if rest.starts_with(b"Android") => seen.android = true,
                b'W' if rest.starts_with(b"Windows") => seen.windows = true,
                b'M' if starts_with_any(rest, &[b"Macintosh", b"Mac OS X"]) => seen.macos = true,
                b'L' if rest.starts_with(b"Linux") => seen.linux = true,
                b'X' if rest.starts_with(b"X11") => seen.linux = true,
                b'C' if rest.starts_with(b"CrOS") => seen.linux = true,
                _ => {}
            }
        }
        seen.os()
    }
}

/// The systems an agent named, before precedence picks one.
#[derive(Default)]
struct Seen {
    android: bool,
    windows: bool,
    macos: bool,
    linux: bool,
}

impl Seen {
    fn os(&self) -> Os {
        if self.android {
            Os::Android
        } else if self.windows {
            Os::Windows
        } else if self.macos {
            Os::Macos
        } else if self.linux {
            Os::Linux
        } else {
            Os::Other
        }
    }
}

fn starts_with_any(bytes: &[u8], prefixes: &[&[u8]]) -> bool {
    prefixes.iter().any(|prefix| bytes.starts_with(prefix))
}

/// A primary language subtag: two or three ASCII letters, lowercase (`de`, `fil`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lang {
    /// The letters, a two-letter subtag padded with a zero.
    letters: [u8; 3],
}

impl Lang {
    /// The subtag `bytes` name, lowercased; `None` unless it is two or three ASCII letters.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        if !(2..=3).contains(&bytes.len()) || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return None;
        }
        let mut letters = [0; 3];
        for (letter, byte) in letters.iter_mut().zip(bytes) {
            *letter = byte.to_ascii_lowercase();
        }
        Some(Self { letters })
    }

    /// The subtag.
    pub fn as_str(&self) -> &str {
        let len = if self.letters[2] == 0 { 2 } else { 3 };
        // Only ASCII letters are ever stored.
        std::str::from_utf8(&self.letters[..len]).unwrap_or_default()
    }
}

impl std::fmt::Debug for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lang({})", self.as_str())
    }
}

/// Most `Accept-Language` entries read, and most bytes: browsers send a handful in a few dozen bytes.
const MAX_LANGUAGE_ENTRIES: usize = 32;
const MAX_LANGUAGE_BYTES: usize = 1024;

/// The primary subtag of the `Accept-Language` entry the visitor prefers: the highest `q` (ties: the first
/// listed). Entries with `q=0`, `*`, and those whose primary subtag is not two or three letters are passed over;
/// a header cut at [`MAX_LANGUAGE_BYTES`] loses its last, partial entry.
pub fn primary_language(accept_language: &[u8]) -> Option<Lang> {
    let header = if accept_language.len() > MAX_LANGUAGE_BYTES {
        let head = &accept_language[..MAX_LANGUAGE_BYTES];
        &head[..head.iter().rposition(|&byte| byte == b',').unwrap_or(0)]
    } else {
        accept_language
    };
    let mut best: Option<(u16, Lang)> = None;
    for entry in header
        .split(|&byte| byte == b',')
        .take(MAX_LANGUAGE_ENTRIES)
    {
        let Some((quality, lang)) = language_entry(entry) else {
            continue;
        };
        if quality > 0 && best.is_none_or(|(best_quality, _)| quality > best_quality) {
            best = Some((quality, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// One entry's quality in thousandths and its primary subtag; `None` when either cannot be read.
fn language_entry(entry: &[u8]) -> Option<(u16, Lang)> {
    let mut parts = entry.split(|&byte| byte == b';');
    let tag = parts.next()?.trim_ascii();
    let primary = tag.split(|&byte| byte == b'-').next()?;
    let lang = Lang::new(primary)?;
    let mut quality = 1000;
    for parameter in parts {
        let parameter = parameter.trim_ascii();
        if let Some(value) = parameter
            .strip_prefix(b"q=")
            .or_else(|| parameter.strip_prefix(b"Q="))
        {
            quality = parse_quality(value.trim_ascii())?;
        }
    }
    Some((quality, lang))
}

/// A `qvalue` (`0`, `0.8`, `1.000`) in thousandths; `None` when it is not one.
fn parse_quality(value: &[u8]) -> Option<u16> {
    let (&whole, rest) = value.split_first()?;
    let decimals = match rest {
        [] => &[][..],
        [b'.', decimals @ ..] if decimals.len() <= 3 => decimals,
        _ => return None,
    };
    let mut thousandths = match whole {
        b'0' => 0_u16,
        b'1' => 1000,
        _ => return None,
    };
    for (digit, scale) in decimals.iter().zip([100, 10, 1]) {
        if !digit.is_ascii_digit() {
            return None;
        }
        thousandths += u16::from(digit - b'0') * scale;
    }
    (thousandths <= 1000).then_some(thousandths)
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
