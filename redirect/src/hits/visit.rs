//! Where a counted hit comes from, read cheaply off the request: the referrer's domain (`Referer`), the device
//! class from the `User-Agent` (desktop, mobile, tablet, or bot), and the country a CDN put in a header the
//! operator names (`--country-header`), believed only from a trusted proxy. Nothing here allocates: the domain stays a slice of the header (the
//! counter lower-cases it only the first time it sees it in an interval), the User-Agent is read in one pass of
//! an Aho-Corasick automaton, and only when this thread has not just classified the same User-Agent.

use std::{cell::RefCell, sync::LazyLock};

use actix_web::{
    http::header::{self, HeaderName},
    HttpRequest,
};
use aho_corasick::AhoCorasick;

/// The longest referrer domain kept; longer ones are cut (DNS names are at most 253 bytes, and nothing real is
/// near this).
pub const MAX_DOMAIN_LEN: usize = 100;

/// A device class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Device {
    /// A desktop browser (and what is not known to be anything else).
    Desktop = 0,
    /// A phone.
    Mobile = 1,
    /// A tablet.
    Tablet = 2,
    /// A crawler, a link previewer, a script: counted apart, never in `hits`.
    Bot = 3,
}

impl Device {
    /// Its name in the stats.
    pub fn name(self) -> &'static str {
        match self {
            Self::Desktop => "desktop",
            Self::Mobile => "mobile",
            Self::Tablet => "tablet",
            Self::Bot => "bot",
        }
    }

    /// The class of a `User-Agent` value (`None`: the header is missing).
    pub fn of(user_agent: Option<&[u8]>) -> Self {
        let Some(agent) = user_agent.filter(|agent| !agent.is_empty()) else {
            return Self::Bot;
        };
        RECENT_AGENTS.with(|recent| recent.borrow_mut().device(agent))
    }

    /// The class of a non-empty `User-Agent`, read by the automaton.
    fn classify(agent: &[u8]) -> Self {
        let mut seen = 0_u8;
        for found in AGENT_WORDS.find_overlapping_iter(agent) {
            seen |= WORD_CLASSES[found.pattern().as_usize()];
        }
        // Browsers all say Mozilla (or Opera); a User-Agent that says neither is a library or a tool.
        if seen & BOT != 0 || seen & BROWSER == 0 {
            Self::Bot
        } else if seen & TABLET != 0 || (seen & ANDROID != 0 && seen & MOBILE == 0) {
            Self::Tablet
        } else if seen & (MOBILE | ANDROID) != 0 {
            Self::Mobile
        } else {
            Self::Desktop
        }
    }
}

/// User-Agents remembered per thread (slots of a direct-mapped table).
const RECENT_SLOTS: usize = 32;

/// Longer User-Agents are classified every time, never remembered: the memo's memory is bounded by
/// `RECENT_SLOTS` x this per worker thread, whatever requests send.
const RECENT_MAX_LEN: usize = 512;

thread_local! {
    static RECENT_AGENTS: RefCell<RecentAgents> = RefCell::new(RecentAgents::default());
}

/// The last User-Agents this thread classified and their class. Real traffic repeats a few browsers' agents, and
/// comparing ~120 bytes costs a fraction of the automaton's overlapping scan (5% of the one-link profile before
/// this memo); a slot is found by the agent's length and a few of its bytes, and confirmed by the whole agent.
#[derive(Default)]
struct RecentAgents {
    slots: Vec<(Vec<u8>, Device)>,
}

impl RecentAgents {
    fn device(&mut self, agent: &[u8]) -> Device {
        if agent.len() > RECENT_MAX_LEN {
            return Device::classify(agent);
        }
        if self.slots.is_empty() {
            self.slots = vec![(Vec::new(), Device::Bot); RECENT_SLOTS];
        }
        let (remembered, device) = &mut self.slots[Self::slot(agent)];
        if remembered.as_slice() != agent {
            remembered.clear();
            remembered.extend_from_slice(agent);
            *device = Device::classify(agent);
        }
        *device
    }

    /// The slot of a non-empty agent: its length mixed with bytes near its end, where browsers' agents differ
    /// (versions, platform tokens).
    fn slot(agent: &[u8]) -> usize {
        let len = agent.len();
        let mix = len
            ^ usize::from(agent[len - 1]) << 3
            ^ usize::from(agent[len / 2]) << 5
            ^ usize::from(agent[len.saturating_sub(9)]) << 1;
        mix % RECENT_SLOTS
    }
}

const BOT: u8 = 1;
const BROWSER: u8 = 2;
const MOBILE: u8 = 4;
const TABLET: u8 = 8;
const ANDROID: u8 = 16;

/// Words of a User-Agent (matched case-insensitively anywhere in it) and what each says.
const WORDS: &[(&str, u8)] = &[
    ("bot", BOT),
    ("crawl", BOT),
    ("spider", BOT),
    ("slurp", BOT),
    ("headless", BOT),
    ("lighthouse", BOT),
    ("preview", BOT),
    ("facebookexternalhit", BOT),
    ("whatsapp", BOT),
    ("python", BOT),
    ("curl/", BOT),
    ("wget/", BOT),
    ("mozilla", BROWSER),
    ("opera", BROWSER),
    ("mobi", MOBILE),
    ("iphone", MOBILE),
    ("ipod", MOBILE),
    ("windows phone", MOBILE),
    ("ipad", TABLET),
    ("tablet", TABLET),
    ("kindle", TABLET),
    ("silk/", TABLET),
    ("android", ANDROID),
];

static WORD_CLASSES: LazyLock<Vec<u8>> =
    LazyLock::new(|| WORDS.iter().map(|(_, class)| *class).collect());

static AGENT_WORDS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(WORDS.iter().map(|(word, _)| word))
        .expect("a few short literal words always build")
});

/// Where one hit comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit<'a> {
    /// The device class.
    pub device: Device,
    /// The referrer's host as sent (not yet lower-cased), without `www.`; empty for none (a direct visit).
    pub referrer: &'a [u8],
    /// The country, two upper-case letters; `None` when no country header is configured; `Some(*b"??")` when
    /// it is configured but the request has no valid value.
    pub country: Option<[u8; 2]>,
    /// The index of the link's variant the visitor was sent to, if the link has variants.
    pub variant: Option<u8>,
}

impl<'a> Visit<'a> {
    /// Reads `req`; `country_header` is the operator's `--country-header`, if any, read only when
    /// `from_trusted_proxy` (the peer is one of `--trusted-proxies`): anyone else could write it themselves, so
    /// their visits count as from an unknown country.
    pub fn of(
        req: &'a HttpRequest,
        country_header: Option<&HeaderName>,
        from_trusted_proxy: bool,
    ) -> Self {
        let headers = req.headers();
        let device = Device::of(
            headers
                .get(header::USER_AGENT)
                .map(actix_web::http::header::HeaderValue::as_bytes),
        );
        let referrer = headers
            .get(header::REFERER)
            .map_or(&[][..], |value| referrer_host(value.as_bytes()));
        let country = country_header.map(|name| {
            headers
                .get(name)
                .filter(|_| from_trusted_proxy)
                .map_or(UNKNOWN_COUNTRY, |value| country_code(value.as_bytes()))
        });
        Self {
            device,
            referrer,
            country,
            variant: None,
        }
    }
}

/// What an invalid or missing country header counts as.
pub const UNKNOWN_COUNTRY: [u8; 2] = *b"??";

/// Two ASCII letters, upper-cased; anything else (Cloudflare's `XX` and `T1` included) is unknown.
fn country_code(value: &[u8]) -> [u8; 2] {
    match value {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            let code = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
            if &code == b"XX" || &code == b"T1" {
                UNKNOWN_COUNTRY
            } else {
                code
            }
        }
        _ => UNKNOWN_COUNTRY,
    }
}

/// The host of a `Referer` URL, without a `www.` and cut to [`MAX_DOMAIN_LEN`]; empty when it has none (a
/// `Referer` that is not an absolute http(s) URL counts as a direct visit).
pub fn referrer_host(referer: &[u8]) -> &[u8] {
    let rest = strip_prefix_ignore_case(referer, b"https://")
        .or_else(|| strip_prefix_ignore_case(referer, b"http://"))
        .unwrap_or_default();
    let end = rest
        .iter()
        .position(|byte| matches!(byte, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let mut host = &rest[..end];
    // Credentials before an `@`, and a port, are not part of the host.
    if let Some(at) = host.iter().rposition(|byte| *byte == b'@') {
        host = &host[at + 1..];
    }
    if let Some(colon) = host.iter().position(|byte| *byte == b':') {
        host = &host[..colon];
    }
    let host = strip_prefix_ignore_case(host, b"www.").unwrap_or(host);
    let valid = host
        .iter()
        .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_'));
    if valid {
        &host[..host.len().min(MAX_DOMAIN_LEN)]
    } else {
        &[]
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (text.len() >= prefix.len() && text[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_classed_as_desktop_mobile_tablet_or_bot() {
        let cases: &[(&str, Device)] = &[
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", Device::Desktop),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", Device::Desktop),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", Device::Mobile),
            ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", Device::Mobile),
            ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", Device::Tablet),
            ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", Device::Tablet),
            ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", Device::Bot),
            ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", Device::Bot),
            ("Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/131.0.0.0 Safari/537.36", Device::Bot),
            ("curl/8.5.0", Device::Bot),
            ("python-requests/2.32", Device::Bot),
            ("snowlink-loadtest", Device::Bot),
        ];
        for (agent, device) in cases {
            assert_eq!(Device::of(Some(agent.as_bytes())), *device, "{agent}");
        }
        assert_eq!(Device::of(None), Device::Bot);
        assert_eq!(Device::of(Some(b"")), Device::Bot);
        // Asked again (now from the memo), and in another order, each keeps its class.
        for (agent, device) in cases.iter().rev() {
            assert_eq!(Device::of(Some(agent.as_bytes())), *device, "{agent}");
        }
    }

    #[test]
    fn the_memo_never_answers_for_another_agent_and_stays_bounded() {
        // Agents of one length that differ in one byte share slots; each must still get its own class.
        let mut recent = RecentAgents::default();
        for round in 0..3 {
            for n in 0..200_u32 {
                let agent = if n % 2 == 0 {
                    format!("Mozilla/5.0 (Linux; Android {:03}) Mobile", n)
                } else {
                    format!("Mozilla/5.0 (Linux; Android {:03}) Tablet", n)
                };
                let want = Device::classify(agent.as_bytes());
                assert_eq!(
                    recent.device(agent.as_bytes()),
                    want,
                    "{agent} (round {round})"
                );
            }
        }
        let huge = format!("Mozilla/5.0 {}", "x".repeat(RECENT_MAX_LEN));
        assert_eq!(recent.device(huge.as_bytes()), Device::Desktop);
        assert_eq!(recent.slots.len(), RECENT_SLOTS);
        assert!(recent
            .slots
            .iter()
            .all(|(agent, _)| agent.len() <= RECENT_MAX_LEN));
    }

    #[test]
    fn the_referrer_is_its_host_without_www() {
        let host = |referer: &str| {
            String::from_utf8(referrer_host(referer.as_bytes()).to_vec()).expect("ascii")
        };
        assert_eq!(
            host("https://www.News.example.com/a/b?c#d"),
            "News.example.com"
        );
        assert_eq!(host("http://t.co"), "t.co");
        assert_eq!(host("https://user:pw@example.org:8443/x"), "example.org");
        assert_eq!(host("android-app://com.slack/"), "");
        assert_eq!(host("not a url"), "");
        assert_eq!(host("https://bad host/"), "");
        assert_eq!(
            host(&format!("https://{}.com/", "a".repeat(500))).len(),
            MAX_DOMAIN_LEN
        );
    }

    #[test]
    fn countries_are_two_letters_or_unknown() {
        assert_eq!(country_code(b"de"), *b"DE");
        assert_eq!(country_code(b"US"), *b"US");
        for bad in [&b"XX"[..], b"T1", b"", b"USA", b"1x", "é".as_bytes()] {
            assert_eq!(country_code(bad), UNKNOWN_COUNTRY);
        }
    }
}
