//! The SSRF guard: where a webhook may point. Only http and https, and only public addresses: a webhook is a
//! request the shortener makes from inside the operator's network on a user's say, so loopback, private,
//! link-local, cloud-metadata and other non-public addresses are refused unless the operator allows them
//! (`--allow-private-webhooks`, for a receiver on the same machine under `make run`).
//!
//! A URL is checked when the webhook is created ([`check_url`]: its name resolved, refused if any address is
//! forbidden) and again at every delivery, where the sender connects only to addresses it has just checked
//! (`send`), so a name that later resolves elsewhere reaches nothing it may not.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs as _},
    sync::{Arc, LazyLock},
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The longest webhook URL, as for long URLs.
pub const MAX_URL_LEN: usize = 2_048;

/// The longest a name may take to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Name lookups that API requests may have running at once, in this process. A lookup blocks a thread of
/// tokio's blocking pool until the resolver answers (a timeout abandons the wait, not the thread), so without a
/// bound a client sending URLs on names that never answer could hold hundreds of threads.
const ROUTE_LOOKUPS: usize = 8;

static ROUTE_LOOKUP_PERMITS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(ROUTE_LOOKUPS)));

/// Why a URL cannot receive webhooks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// Over [`MAX_URL_LEN`].
    #[error("url must be at most {MAX_URL_LEN} characters")]
    TooLong,
    /// Not an absolute URL.
    #[error("url is not an absolute URL")]
    Malformed,
    /// Neither http nor https.
    #[error("url must be http or https")]
    Scheme,
    /// A user name or password in the URL.
    #[error("url may not carry a user name or password")]
    Credentials,
    /// No host.
    #[error("url has no host")]
    NoHost,
    /// The host is an address webhooks may not reach.
    #[error("{0} is a loopback, private, link-local or otherwise non-public address, which webhooks may not reach")]
    ForbiddenAddress(IpAddr),
    /// The host is a name that resolves to an address webhooks may not reach.
    #[error("{host} resolves to {address}, a loopback, private, link-local or otherwise non-public address, which webhooks may not reach")]
    ResolvesToForbidden {
        /// The name.
        host: String,
        /// The first forbidden address it resolves to.
        address: IpAddr,
    },
    /// The host is a name that resolves to no address within [`RESOLVE_TIMEOUT`].
    #[error("{0} does not resolve to any address")]
    DoesNotResolve(String),
    /// This process is resolving as many names for requests as it may: retry shortly.
    #[error("too many webhook URLs are being checked at once; retry shortly")]
    Busy,
}

/// Whether webhooks may not reach `ip`: loopback, private, shared (CGNAT), link-local (with the cloud metadata
/// service, 169.254.169.254), unique-local (with AWS's fd00:ec2::254), unspecified, broadcast, multicast,
/// documentation, benchmarking and reserved ranges, and IPv6 forms that carry such an IPv4 address (mapped,
/// NAT64, 6to4) or any IPv4 address in the deprecated compatible form.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => forbidden_v4(ip),
        IpAddr::V6(ip) => forbidden_v6(ip),
    }
}

/// IPv4 networks webhooks may not reach: (network, prefix length).
const FORBIDDEN_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8), // "this network", with the unspecified address
    (Ipv4Addr::new(10, 0, 0, 0), 8), // private
    (Ipv4Addr::new(100, 64, 0, 0), 10), // shared address space (carrier-grade NAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8), // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16), // link-local, with cloud metadata at 169.254.169.254
    (Ipv4Addr::new(172, 16, 0, 0), 12), // private
    (Ipv4Addr::new(192, 0, 0, 0), 24), // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24), // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24), // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16), // private
    (Ipv4Addr::new(198, 18, 0, 0), 15), // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24), // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4), // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4), // reserved, with the broadcast address
];

/// IPv6 networks webhooks may not reach: (network, prefix length).
const FORBIDDEN_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96), // unspecified, loopback, IPv4-compatible (deprecated)
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48), // local-use NAT64
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64), // discard-only
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32), // Teredo (carries an IPv4 address)
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7), // unique local, with AWS metadata at fd00:ec2::254
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10), // link-local
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10), // site-local (deprecated)
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8), // multicast
];

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    FORBIDDEN_V4.iter().any(|&(network, prefix)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        bits & mask == u32::from(network)
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    let bits = u128::from(ip);
    FORBIDDEN_V6.iter().any(|&(network, prefix)| {
        let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
        bits & mask == u128::from(network)
    })
}

/// The IPv4 address an IPv6 address reaches through: IPv4-mapped (`::ffff:a.b.c.d`, what a dual-stack socket
/// connects to as IPv4), well-known NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let bits = u128::from(ip);
    let low = |shift: u32| Ipv4Addr::from((bits >> shift) as u32);
    match ip.segments() {
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low(0)),
        [0x2002, ..] => Some(low(80)),
        _ => None,
    }
}

/// The rules a webhook URL must keep that need no lookup: at most [`MAX_URL_LEN`], absolute, http or https, no
/// user name or password, a host. Returns the URL as parsed (normalised: an address written in any form reads
/// as an address host).
///
/// # Errors
/// The rule the URL breaks.
pub fn parse(raw: &str) -> Result<url::Url, TargetError> {
    if raw.len() > MAX_URL_LEN {
        return Err(TargetError::TooLong);
    }
    let url = url::Url::parse(raw).map_err(|_| TargetError::Malformed)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TargetError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    if url.host().is_none() {
        return Err(TargetError::NoHost);
    }
    Ok(url)
}

/// The address a URL's host is, if it is one (no lookup needed, none made by a client either).
pub fn address_host(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Checks a webhook URL when it is registered: [`parse`]'s rules, then an address host must be one webhooks may
/// reach, and a name must resolve (within [`RESOLVE_TIMEOUT`]) to addresses that all are. `allow_private` lifts
/// the address rule only. Returns the URL as parsed.
///
/// # Errors
/// The rule the URL breaks, or [`TargetError::Busy`] when this process is resolving as many names for requests
/// as it may (answer 503).
pub async fn check_url(raw: &str, allow_private: bool) -> Result<url::Url, TargetError> {
    check_url_within(raw, allow_private, &ROUTE_LOOKUP_PERMITS).await
}

/// [`check_url`] with a name's lookup taking one of `lookups`, or refused at once when none is free.
async fn check_url_within(
    raw: &str,
    allow_private: bool,
    lookups: &Arc<Semaphore>,
) -> Result<url::Url, TargetError> {
    let url = parse(raw)?;
    if let Some(ip) = address_host(&url) {
        allowed(ip, allow_private)?;
        return Ok(url);
    }
    let (Some(name), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Err(TargetError::NoHost);
    };
    let permit = Arc::clone(lookups)
        .try_acquire_owned()
        .map_err(|_| TargetError::Busy)?;
    let addresses = resolve(name, port, permit).await?;
    if !allow_private {
        if let Some(address) = addresses
            .iter()
            .map(SocketAddr::ip)
            .find(|ip| forbidden(*ip))
        {
            return Err(TargetError::ResolvesToForbidden {
                host: name.to_owned(),
                address,
            });
        }
    }
    Ok(url)
}

/// `ip` unless it is [`forbidden`] (and private addresses are not allowed).
///
/// # Errors
/// [`TargetError::ForbiddenAddress`].
pub fn allowed(ip: IpAddr, allow_private: bool) -> Result<(), TargetError> {
    if !allow_private && forbidden(ip) {
        return Err(TargetError::ForbiddenAddress(ip));
    }
    Ok(())
}

/// The addresses `name` resolves to (with `port`), within [`RESOLVE_TIMEOUT`]. The system resolver blocks, so
/// it runs on tokio's blocking pool holding `permit` until it returns: a timeout gives up the wait but the
/// permit stays taken while the thread is, so a bound on permits is a bound on threads.
///
/// # Errors
/// [`TargetError::DoesNotResolve`]: no address, an error, or no answer in time.
pub async fn resolve(
    name: &str,
    port: u16,
    permit: OwnedSemaphorePermit,
) -> Result<Vec<SocketAddr>, TargetError> {
    let lookup = {
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || {
            let addresses = (name.as_str(), port).to_socket_addrs();
            drop(permit);
            addresses.map(Iterator::collect::<Vec<_>>)
        })
    };
    match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(Ok(addresses))) if !addresses.is_empty() => Ok(addresses),
        _ => Err(TargetError::DoesNotResolve(name.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_forbidden_and_public_ones_are_not() {
        let forbidden_ones = [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "2001::1",
            "2001:db8::1",
            "3fff::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "100::1",
        ];
        for ip in forbidden_ones {
            assert!(forbidden(ip.parse().expect(ip)), "{ip} is forbidden");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.0.1",
            "192.167.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
        ];
        for ip in public {
            assert!(!forbidden(ip.parse().expect(ip)), "{ip} is public");
        }
    }

    #[tokio::test]
    async fn only_absolute_http_urls_without_credentials_pass() {
        for (raw, error) in [
            ("ftp://example.com/", TargetError::Scheme),
            ("file:///etc/passwd", TargetError::Scheme),
            ("example.com/hook", TargetError::Malformed),
            ("https://user:pw@example.com/", TargetError::Credentials),
            ("https://user@example.com/", TargetError::Credentials),
        ] {
            assert_eq!(check_url(raw, true).await, Err(error), "{raw}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_url(&long, true).await, Err(TargetError::TooLong));
    }

    #[tokio::test]
    async fn an_address_host_is_checked_as_it_is_written_in_any_form() {
        for raw in [
            "http://127.0.0.1:9/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://[fd00:ec2::254]/",
        ] {
            assert!(
                matches!(
                    check_url(raw, false).await,
                    Err(TargetError::ForbiddenAddress(_))
                ),
                "{raw}"
            );
            assert!(check_url(raw, true).await.is_ok(), "{raw} with the flag");
        }
        assert!(check_url("https://8.8.8.8/hook", false).await.is_ok());
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_forbidden_address_is_refused() {
        let refused = check_url("http://localhost:9/hook", false).await;

        assert!(
            matches!(&refused, Err(TargetError::ResolvesToForbidden { host, .. }) if host == "localhost"),
            "{refused:?}"
        );
        assert!(check_url("http://localhost:9/hook", true).await.is_ok());
    }

    #[tokio::test]
    async fn a_name_is_not_looked_up_while_every_lookup_permit_is_taken() {
        let none = Arc::new(Semaphore::new(0));

        let busy = check_url_within("http://localhost:9/", true, &none).await;
        let address = check_url_within("https://8.8.8.8/", false, &none).await;

        assert_eq!(busy, Err(TargetError::Busy));
        assert!(address.is_ok(), "an address needs no lookup: {address:?}");
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_refused() {
        let refused = check_url("https://no-such-host.invalid/", true).await;

        assert_eq!(
            refused,
            Err(TargetError::DoesNotResolve("no-such-host.invalid".into()))
        );
    }
}
