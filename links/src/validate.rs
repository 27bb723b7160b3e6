//! Input rules for links, each failure a variant of [`Invalid`] (which the shortener answers with its own error
//! code each, as its OpenAPI document lists them): long URLs are absolute http(s), bounded, normalised (punycode
//! hosts) and never point back at the shortener; aliases share the code alphabet and avoid reserved words; tags,
//! passwords and visit limits are bounded.

use crate::code::is_code_byte;

/// Longest long URL accepted, in bytes of its normalised form.
pub const MAX_URL_LEN: usize = 2048;

/// Alias length bounds.
pub const ALIAS_LEN: std::ops::RangeInclusive<usize> = 3..=64;

/// Words an alias may not be, compared case-insensitively: paths the services use now or may use later, and
/// every segment of a route (an alias `batch` would be a link that `DELETE /v1/urls/batch` cannot reach).
pub const RESERVED_ALIASES: &[&str] = &[
    "v1",
    "v2",
    "api",
    "urls",
    "batch",
    "export",
    "export.csv",
    "import",
    "openapi.json",
    "qr",
    "hits",
    "stats",
    "events",
    "domains",
    "webhooks",
    "blocks",
    "ids",
    "index",
    "healthz",
    "readyz",
    "metrics",
    "static",
    "admin",
    "assets",
    "favicon.ico",
    "robots.txt",
    "login",
    "logout",
    "docs",
    "openapi",
    "status",
    "www",
];

/// Most tags on one link.
pub const MAX_TAGS: usize = 10;

/// Tag length bounds, in bytes of `[a-z0-9-]`.
pub const TAG_LEN: std::ops::RangeInclusive<usize> = 1..=32;

/// Password length bounds, in characters. The upper bound also bounds the hashing work a request can ask for.
pub const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 1..=128;

/// Largest visit limit: far beyond any link's life, small enough that sums of hits never overflow.
pub const MAX_HITS_LIMIT: i64 = 1_000_000_000_000;

/// Why an input was refused. Not `#[non_exhaustive]`: the shortener matches every variant to its error code, so
/// a new rule fails its build until the rule has a code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Not an absolute http/https URL with a host.
    #[error("long_url must be an absolute http or https URL with a host ({0})")]
    Url(String),
    /// Longer than [`MAX_URL_LEN`].
    #[error("long_url is longer than {MAX_URL_LEN} bytes")]
    UrlTooLong,
    /// Carries a user name or password, a classic disguise for phishing links.
    #[error("long_url must not contain a user name or password")]
    UrlCredentials,
    /// Points at the shortener's own host: a redirect loop.
    #[error("long_url points at this shortener ({0}); that would be a redirect loop")]
    OwnHost(String),
    /// Wrong characters or length.
    #[error("alias must be 3 to 64 characters of A-Z, a-z, 0-9, '_' and '-'")]
    Alias,
    /// A reserved word.
    #[error("alias {0:?} is reserved")]
    ReservedAlias(String),
    /// The host, or a domain it belongs to, is on the operator's blocklist.
    #[error("links to {0} are not allowed here")]
    BlockedDomain(String),
    /// More than [`MAX_TAGS`] tags, or one that is not 1 to 32 of `a-z 0-9 -`.
    #[error("tags must be at most 10 tags, each 1 to 32 of a-z, 0-9 and '-'")]
    Tags,
    /// A password that is empty or longer than 128 characters.
    #[error("password must be 1 to 128 characters")]
    Password,
    /// A visit limit outside 1 ..= [`MAX_HITS_LIMIT`].
    #[error("max_hits must be an integer from 1 to 1000000000000")]
    MaxHits,
}

/// Whether `tag` is one tag: 1 to 32 of `a-z 0-9 -`.
pub fn is_tag(tag: &str) -> bool {
    TAG_LEN.contains(&tag.len())
        && tag
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
}

/// Checks a link's tags and returns them sorted without duplicates, the form they are stored and shown in.
///
/// # Errors
/// [`Invalid::Tags`] for more than [`MAX_TAGS`] distinct tags or one that is not [`is_tag`].
pub fn check_tags(tags: Vec<String>) -> Result<Vec<String>, Invalid> {
    if tags.len() > MAX_TAGS * 4 || !tags.iter().all(|tag| is_tag(tag)) {
        return Err(Invalid::Tags);
    }
    let mut tags = tags;
    tags.sort_unstable();
    tags.dedup();
    if tags.len() > MAX_TAGS {
        return Err(Invalid::Tags);
    }
    Ok(tags)
}

/// Checks a password's length (the hash is made by [`crate::password`]).
///
/// # Errors
/// [`Invalid::Password`] outside [`PASSWORD_LEN`] characters.
pub fn check_password(password: &str) -> Result<(), Invalid> {
    // Counting stops past the bound, so a huge string costs no more than a long one.
    let chars = password.chars().take(PASSWORD_LEN.end() + 1).count();
    if PASSWORD_LEN.contains(&chars) {
        Ok(())
    } else {
        Err(Invalid::Password)
    }
}

/// Checks a visit limit.
///
/// # Errors
/// [`Invalid::MaxHits`] outside 1 ..= [`MAX_HITS_LIMIT`].
pub fn check_max_hits(max_hits: i64) -> Result<i64, Invalid> {
    if (1..=MAX_HITS_LIMIT).contains(&max_hits) {
        Ok(max_hits)
    } else {
        Err(Invalid::MaxHits)
    }
}

/// Parses and normalises a long URL: lower-case scheme and host, Unicode hosts as punycode, `/` for an empty
/// path. `own_hosts` are the shortener's public host names (lower-case); a URL to one of them is refused.
///
/// # Errors
/// [`Invalid`] naming the broken rule.
pub fn normalize_long_url(raw: &str, own_hosts: &[String]) -> Result<url::Url, Invalid> {
    if raw.len() > MAX_URL_LEN {
        return Err(Invalid::UrlTooLong);
    }
    let url = url::Url::parse(raw.trim()).map_err(|error| Invalid::Url(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Invalid::Url(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| Invalid::Url("no host".into()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Invalid::UrlCredentials);
    }
    if is_own_host(&url, own_hosts) {
        return Err(Invalid::OwnHost(host.to_owned()));
    }
    if url.as_str().len() > MAX_URL_LEN {
        return Err(Invalid::UrlTooLong);
    }
    Ok(url)
}

/// Whether `url` points at one of `own_hosts`. `sho.rt.` is `sho.rt` to DNS, and `www.sho.rt` may well be
/// served by the shortener too: both would loop. An IPv4-mapped IPv6 address is its IPv4 address. While the
/// shortener is served on a loopback address or `localhost` (`make run`), every loopback address and
/// `localhost` name reaches it: `http://localhost:8081/x` loops as surely as `http://127.0.0.1:8081/x`.
fn is_own_host(url: &url::Url, own_hosts: &[String]) -> bool {
    let own_ips: Vec<std::net::IpAddr> = own_hosts.iter().filter_map(|own| ip_of(own)).collect();
    let loopback_is_own =
        own_ips.iter().any(is_loopback) || own_hosts.iter().any(|own| is_localhost_name(own));
    let ip = match url.host() {
        Some(url::Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.');
            let own = |suffix: &str| {
                own_hosts
                    .iter()
                    .any(|own| own.trim_end_matches('.').eq_ignore_ascii_case(suffix))
            };
            return host_and_parents(domain).any(own)
                || (loopback_is_own && is_localhost_name(domain));
        }
        Some(url::Host::Ipv4(ip)) => std::net::IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => ip
            .to_ipv4_mapped()
            .map_or(std::net::IpAddr::V6(ip), std::net::IpAddr::V4),
        None => return false,
    };
    own_ips.contains(&ip) || (loopback_is_own && is_loopback(&ip))
}

/// The address an own host names, if it is one (`127.0.0.1`, `[::1]`, `::ffff:127.0.0.1`).
fn ip_of(host: &str) -> Option<std::net::IpAddr> {
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    Some(match ip {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
        v4 => v4,
    })
}

/// Loopback, or the unspecified address, which a connection on the same machine reaches as loopback.
fn is_loopback(ip: &std::net::IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

/// `localhost` and its subdomains, which resolvers answer with loopback (RFC 6761).
fn is_localhost_name(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case("localhost")
        || host
            .len()
            .checked_sub(".localhost".len())
            .is_some_and(|start| host[start..].eq_ignore_ascii_case(".localhost"))
}

/// `a.b.example`, then `b.example`, `example`: the domains a host belongs to.
fn host_and_parents(host: &str) -> impl Iterator<Item = &str> {
    std::iter::once(host).chain(host.match_indices('.').map(|(dot, _)| &host[dot + 1..]))
}

/// Checks a custom alias.
///
/// # Errors
/// [`Invalid::Alias`] or [`Invalid::ReservedAlias`].
pub fn check_alias(alias: &str) -> Result<(), Invalid> {
    if !ALIAS_LEN.contains(&alias.len()) || !alias.bytes().all(is_code_byte) {
        return Err(Invalid::Alias);
    }
    if RESERVED_ALIASES
        .iter()
        .any(|word| word.eq_ignore_ascii_case(alias))
    {
        return Err(Invalid::ReservedAlias(alias.to_owned()));
    }
    Ok(())
}

/// Domains long URLs may not point at: an entry blocks its exact host and every subdomain of it.
#[derive(Debug, Clone, Default)]
pub struct Blocklist {
    domains: std::collections::HashSet<String>,
}

impl Blocklist {
    /// A blocklist of `domains` (any case, Unicode or punycode, an optional leading `*.` or `.`); blank entries
    /// are skipped.
    ///
    /// # Errors
    /// The first entry that is not a host name, as written, so the caller can refuse to start on a typo.
    pub fn new<I, S>(domains: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = std::collections::HashSet::new();
        for raw in domains {
            let entry = raw.as_ref().trim();
            let bare = entry.trim_start_matches("*.").trim_start_matches('.');
            if bare.is_empty() {
                continue;
            }
            match url::Host::parse(bare) {
                Ok(host) => set.insert(host.to_string()),
                Err(_) => return Err(entry.to_owned()),
            };
        }
        Ok(Self { domains: set })
    }

    /// Parses a blocklist file: one domain per line; blank lines and `#` comments are ignored.
    ///
    /// # Errors
    /// The offending line, when one is not a host name.
    pub fn parse_file(text: &str) -> Result<Self, String> {
        Self::new(
            text.lines()
                .map(|line| line.split('#').next().unwrap_or_default().trim())
                .filter(|line| !line.is_empty()),
        )
    }

    /// Adds the entries of `other`.
    pub fn extend(&mut self, other: Self) {
        self.domains.extend(other.domains);
    }

    /// How many domains are blocked.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// Whether nothing is blocked.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// Refuses a normalised URL whose host is blocked, or a subdomain of a blocked domain.
    ///
    /// # Errors
    /// [`Invalid::BlockedDomain`].
    pub fn check(&self, url: &url::Url) -> Result<(), Invalid> {
        let Some(host) = url.host_str() else {
            return Ok(());
        };
        let host = host.trim_end_matches('.');
        let blocked = host_and_parents(host).any(|suffix| self.domains.contains(suffix));
        if blocked {
            return Err(Invalid::BlockedDomain(host.to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Vec<String> {
        vec!["sho.rt".to_owned(), "127.0.0.1".to_owned()]
    }

    #[test]
    fn tags_come_back_sorted_and_unique_and_bad_ones_are_refused() {
        let tags = |list: &[&str]| list.iter().map(|tag| (*tag).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            check_tags(tags(&["b", "a-1", "b"])),
            Ok(tags(&["a-1", "b"]))
        );
        assert_eq!(check_tags(Vec::new()), Ok(Vec::new()));
        let eleven: Vec<String> = (0..11).map(|n| format!("t{n}")).collect();
        for bad in [
            tags(&["A"]),
            tags(&[""]),
            tags(&["a b"]),
            tags(&["é"]),
            vec!["x".repeat(33)],
            eleven,
        ] {
            assert_eq!(check_tags(bad.clone()), Err(Invalid::Tags), "{bad:?}");
        }
    }

    #[test]
    fn passwords_and_visit_limits_are_bounded() {
        assert!(check_password("s").is_ok());
        assert!(check_password(&"é".repeat(128)).is_ok());
        assert_eq!(check_password(""), Err(Invalid::Password));
        assert_eq!(check_password(&"x".repeat(129)), Err(Invalid::Password));
        assert_eq!(check_max_hits(1), Ok(1));
        assert_eq!(check_max_hits(MAX_HITS_LIMIT), Ok(MAX_HITS_LIMIT));
        for bad in [0, -1, MAX_HITS_LIMIT + 1] {
            assert_eq!(check_max_hits(bad), Err(Invalid::MaxHits));
        }
    }

    #[test]
    fn a_url_is_normalised() {
        let url = normalize_long_url("HTTPS://Example.COM", &own()).expect("valid");
        assert_eq!(url.as_str(), "https://example.com/");
    }

    #[test]
    fn unicode_hosts_become_punycode() {
        let url = normalize_long_url("https://bücher.example/a?b=c", &own()).expect("valid");
        assert_eq!(url.as_str(), "https://xn--bcher-kva.example/a?b=c");
    }

    #[test]
    fn only_absolute_http_urls_with_a_host_pass() {
        for bad in [
            "ftp://example.com/",
            "javascript:alert(1)",
            "/relative",
            "example.com",
            "http://",
            "mailto:a@b.c",
            "",
        ] {
            let error = normalize_long_url(bad, &own()).expect_err(bad);
            assert!(matches!(error, Invalid::Url(_)), "{bad}: {error:?}");
        }
    }

    #[test]
    fn credentials_in_a_url_are_refused() {
        assert_eq!(
            normalize_long_url("https://google.com@evil.example/", &own()),
            Err(Invalid::UrlCredentials)
        );
    }

    #[test]
    fn a_url_to_the_shortener_itself_is_refused() {
        assert_eq!(
            normalize_long_url("http://SHO.RT/abc", &own()),
            Err(Invalid::OwnHost("sho.rt".into()))
        );
        assert_eq!(
            normalize_long_url("http://127.0.0.1:8081/abc", &own()),
            Err(Invalid::OwnHost("127.0.0.1".into()))
        );
    }

    #[test]
    fn a_url_to_the_shortener_under_another_spelling_is_refused_too() {
        for looping in [
            "https://sho.rt./x",
            "https://www.sho.rt/x",
            "https://a.b.SHO.RT./x",
        ] {
            assert!(
                matches!(
                    normalize_long_url(looping, &own()),
                    Err(Invalid::OwnHost(_))
                ),
                "{looping}"
            );
        }
        assert!(normalize_long_url("https://notsho.rt/x", &own()).is_ok());
        assert!(normalize_long_url("https://sho.rt.example/x", &own()).is_ok());
    }

    #[test]
    fn a_shortener_on_loopback_refuses_every_loopback_spelling() {
        for looping in [
            "http://localhost:8081/x",
            "http://LOCALHOST./x",
            "http://app.localhost/x",
            "http://127.0.0.2/x",
            "http://2130706433/x",
            "http://[::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://0.0.0.0:8081/x",
        ] {
            assert!(
                matches!(
                    normalize_long_url(looping, &own()),
                    Err(Invalid::OwnHost(_))
                ),
                "{looping}"
            );
        }
        assert!(normalize_long_url("http://localhost.example/x", &own()).is_ok());
    }

    #[test]
    fn a_public_shortener_refuses_its_own_address_in_any_form_and_not_loopback() {
        let own = ["sho.rt".to_owned(), "203.0.113.7".to_owned()];

        assert!(matches!(
            normalize_long_url("http://[::ffff:203.0.113.7]/x", &own),
            Err(Invalid::OwnHost(_))
        ));
        assert!(normalize_long_url("http://localhost:3000/x", &own).is_ok());
    }

    #[test]
    fn every_route_segment_is_a_reserved_alias() {
        for word in ["batch", "Export", "urls", "stats", "hits", "events"] {
            assert_eq!(
                check_alias(word),
                Err(Invalid::ReservedAlias(word.to_owned()))
            );
        }
    }

    #[test]
    fn long_urls_are_bounded() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(normalize_long_url(&long, &own()), Err(Invalid::UrlTooLong));
        let fits = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 20));
        assert!(normalize_long_url(&fits, &own()).is_ok());
    }

    #[test]
    fn aliases_follow_the_alphabet_and_length() {
        assert_eq!(check_alias("my-link_2"), Ok(()));
        assert_eq!(check_alias("ab"), Err(Invalid::Alias));
        assert_eq!(check_alias(&"a".repeat(65)), Err(Invalid::Alias));
        assert_eq!(check_alias("has space"), Err(Invalid::Alias));
        assert_eq!(check_alias("dot.ted"), Err(Invalid::Alias));
    }

    #[test]
    fn reserved_words_are_refused_whatever_their_case() {
        assert_eq!(
            check_alias("HealthZ"),
            Err(Invalid::ReservedAlias("HealthZ".into()))
        );
        assert_eq!(
            check_alias("api"),
            Err(Invalid::ReservedAlias("api".into()))
        );
    }

    fn blocked(list: &Blocklist, url: &str) -> bool {
        let url = normalize_long_url(url, &own()).expect("valid url");
        list.check(&url).is_err()
    }

    #[test]
    fn a_blocked_domain_covers_its_subdomains_but_not_lookalikes() {
        let list = Blocklist::new(["Evil.example", "*.phish.test"]).expect("valid");
        assert!(blocked(&list, "https://evil.example/login"));
        assert!(blocked(&list, "https://www.EVIL.example./x"));
        assert!(blocked(&list, "http://a.b.phish.test/"));
        assert!(!blocked(&list, "https://notevil.example/"));
        assert!(!blocked(&list, "https://evil.example.org/"));
        let url = normalize_long_url("https://evil.example/", &own()).expect("valid");
        assert_eq!(
            list.check(&url),
            Err(Invalid::BlockedDomain("evil.example".into()))
        );
    }

    #[test]
    fn unicode_entries_match_punycode_hosts() {
        let list = Blocklist::new(["bücher.example"]).expect("valid");
        assert!(blocked(&list, "https://shop.xn--bcher-kva.example/"));
    }

    #[test]
    fn a_blocklist_file_skips_comments_and_refuses_garbage() {
        let list = Blocklist::parse_file("# phishing\nevil.example  # reported\n\nphish.test\n")
            .expect("valid");
        assert_eq!(list.len(), 2);
        assert_eq!(
            Blocklist::parse_file("ok.example\nnot a host\n").map(|l| l.len()),
            Err("not a host".to_owned())
        );
    }
}

/// Properties of the validators over generated input: they never panic, what they accept keeps every rule, and
/// aliases are accepted exactly when the documented rule says so.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn own() -> Vec<String> {
        vec!["sho.rt".to_owned(), "127.0.0.1".to_owned()]
    }

    /// Text that is often nearly a URL: a scheme, userinfo, a host (sometimes the shortener's), a port, a path.
    fn url_like() -> impl Strategy<Value = String> {
        (
            prop_oneof![
                "https?",
                "(ftp|javascript|mailto|HTTP|Https|data)",
                "[a-z]{0,6}"
            ],
            prop_oneof![Just("://"), Just(":"), Just(":///"), Just("")],
            prop_oneof![Just(String::new()), "[a-z:]{1,8}@"],
            prop_oneof![
                "[a-z0-9-]{1,20}(\\.[a-z]{2,6}){0,3}\\.?",
                Just("SHO.RT".to_owned()),
                Just("127.0.0.1".to_owned()),
                "\\[[0-9a-f:]{2,20}\\]",
                "[^/?#]{0,20}",
            ],
            prop_oneof![Just(String::new()), ":[0-9]{1,6}"],
            "(/[^ ]{0,40}){0,3}",
        )
            .prop_map(|(scheme, separator, userinfo, host, port, path)| {
                format!("{scheme}{separator}{userinfo}{host}{port}{path}")
            })
    }

    fn any_url_text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => url_like(),
            1 => any::<String>(),
            1 => "https://example.com/[a-z]{2000,2100}",
        ]
    }

    proptest! {
        #[test]
        fn an_accepted_url_keeps_every_rule(raw in any_url_text()) {
            if let Ok(url) = normalize_long_url(&raw, &own()) {
                prop_assert!(matches!(url.scheme(), "http" | "https"), "{url}");
                let host = url.host_str().unwrap_or_default();
                prop_assert!(!host.is_empty(), "{url}");
                prop_assert!(url.as_str().len() <= MAX_URL_LEN, "{url}");
                prop_assert!(url.username().is_empty() && url.password().is_none(), "{url}");
                prop_assert!(!own().iter().any(|own| own.eq_ignore_ascii_case(host)), "{url}");
            }
        }

        // Every refusal is one of the URL's own rules, which the shortener answers as `invalid_url`.
        #[test]
        fn a_refused_url_says_invalid_url(raw in any_url_text()) {
            if let Err(invalid) = normalize_long_url(&raw, &own()) {
                prop_assert!(
                    matches!(
                        invalid,
                        Invalid::Url(_) | Invalid::UrlTooLong | Invalid::UrlCredentials | Invalid::OwnHost(_)
                    ),
                    "{:?}",
                    invalid
                );
            }
        }

        #[test]
        fn input_over_the_length_bound_is_always_refused(
            path in "[a-z/]{0,100}", padding in MAX_URL_LEN..MAX_URL_LEN + 200
        ) {
            let raw = format!("https://example.com/{path}{}", "a".repeat(padding));
            prop_assert_eq!(normalize_long_url(&raw, &own()), Err(Invalid::UrlTooLong));
        }

        // Normalising is idempotent: a stored URL submitted again is the same URL (reuse matches on it).
        #[test]
        fn normalising_a_normalised_url_changes_nothing(raw in any_url_text()) {
            if let Ok(url) = normalize_long_url(&raw, &own()) {
                prop_assert_eq!(normalize_long_url(url.as_str(), &own()), Ok(url));
            }
        }

        #[test]
        fn plain_http_urls_to_other_hosts_are_accepted(
            scheme in "https?",
            host in "[a-z][a-z0-9-]{0,20}\\.(com|org|example|xn--bcher-kva)",
            path in "(/[A-Za-z0-9._~-]{0,20}){0,4}",
        ) {
            let raw = format!("{scheme}://{host}{path}");
            prop_assert!(normalize_long_url(&raw, &own()).is_ok(), "{raw}");
        }

        #[test]
        fn an_alias_is_accepted_exactly_when_it_matches_the_documented_rule(
            alias in prop_oneof![
                "[A-Za-z0-9_-]{0,70}",
                "[A-Za-z0-9_.ü -]{0,70}",
                proptest::sample::select(RESERVED_ALIASES).prop_map(str::to_owned),
                proptest::sample::select(RESERVED_ALIASES).prop_map(|word| word.to_uppercase()),
                any::<String>(),
            ]
        ) {
            let matches_pattern = (3..=64).contains(&alias.chars().count())
                && alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            let reserved = RESERVED_ALIASES.iter().any(|word| word.to_lowercase() == alias.to_lowercase());
            let expected = match (matches_pattern, reserved) {
                (false, _) => Err(Invalid::Alias),
                (true, true) => Err(Invalid::ReservedAlias(alias.clone())),
                (true, false) => Ok(()),
            };
            prop_assert_eq!(check_alias(&alias), expected, "{:?}", alias);
        }
    }
}
