//! The primary language a visitor prefers, read off `Accept-Language` without allocating, with the work bounded
//! whatever the header holds, for `language` conditions.

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
/// a header cut at 1 KiB loses its last, partial entry.
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
