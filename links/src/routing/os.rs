//! The operating system a `User-Agent` names, found in one pass over its bytes (bounded, allocation-free), for
//! `os` conditions.

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
    ///
    /// The pass ends at the first `)`: browsers and apps name their platform in the first comment
    /// (`Mozilla/5.0 (Windows NT 10.0; Win64; x64) …`), and a desktop agent's remaining hundred bytes of engine
    /// names would triple the work.
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
                b')' => break,
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
