//! Input rules for links, each failure carrying the Contract's machine-readable code: long URLs are absolute
//! http(s), bounded, normalised (punycode hosts) and never point back at the shortener; aliases share the code
//! alphabet and avoid reserved words.

use crate::code::is_code_byte;

/// Longest long URL accepted, in bytes of its normalised form.
pub const MAX_URL_LEN: usize = 2048;

/// Alias length bounds.
pub const ALIAS_LEN: std::ops::RangeInclusive<usize> = 3..=64;

/// Words an alias may not be, compared case-insensitively: paths the services use now or may use later.
pub const RESERVED_ALIASES: &[&str] = &[
    "v1",
    "v2",
    "api",
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

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
}

impl Invalid {
    /// The Contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Url(_) | Self::UrlTooLong | Self::UrlCredentials | Self::OwnHost(_) => {
                "invalid_url"
            }
            Self::Alias => "invalid_alias",
            Self::ReservedAlias(_) => "reserved_alias",
        }
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
    if own_hosts.iter().any(|own| own.eq_ignore_ascii_case(host)) {
        return Err(Invalid::OwnHost(host.to_owned()));
    }
    if url.as_str().len() > MAX_URL_LEN {
        return Err(Invalid::UrlTooLong);
    }
    Ok(url)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Vec<String> {
        vec!["sho.rt".to_owned(), "127.0.0.1".to_owned()]
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
            assert_eq!(error.code(), "invalid_url", "{bad}");
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
            check_alias("HealthZ").map_err(|e| e.code()),
            Err("reserved_alias")
        );
        assert_eq!(
            check_alias("api").map_err(|e| e.code()),
            Err("reserved_alias")
        );
    }
}
