//! Who the client is, for limits keyed by client: the TCP peer, or behind proxies the operator trusts
//! (`--trusted-proxies`) the right-most `X-Forwarded-For` address that is not itself a trusted proxy. Written once
//! here so the shortener's rate limits and the redirect's bound on unknown codes can never disagree on it.
//!
//! Only the right end of `X-Forwarded-For` can be believed: each trusted proxy appends the address it saw, while
//! everything left of the first untrusted hop was written by the client and may be anything. A malformed entry
//! stops the walk at the last address that was believed (a trusted proxy): garbage is never a client identity.
//! IPv6 clients are keyed by their /64, since one host commonly owns a whole /64; IPv4-mapped IPv6 addresses
//! (a dual-stack listener's view of an IPv4 client) are the IPv4 address.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use actix_web::{http::header::HeaderValue, HttpRequest};
use ipnet::IpNet;

/// The header proxies append the address they saw to.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The `--trusted-proxies` flag, written once for every service that keys anything by client.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientIpArgs {
    /// Proxies (CIDR blocks or single addresses, comma separated) whose `X-Forwarded-For` is believed: behind
    /// them the client is the right-most forwarded address that is not itself one of them. Empty (the default):
    /// the TCP peer is the client and `X-Forwarded-For` is ignored.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<ProxyNet>,
}

impl ClientIpArgs {
    /// The proxies to trust.
    pub fn trusted(&self) -> TrustedProxies {
        TrustedProxies(self.trusted_proxies.iter().map(|net| net.0).collect())
    }
}

/// One `--trusted-proxies` entry: a CIDR block, or one address (a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet(IpNet);

impl FromStr for ProxyNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let net = match text.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => text.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                format!("{text:?} is neither a CIDR block (10.0.0.0/8) nor an IP address")
            })?,
        };
        Ok(Self(net.trunc()))
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Whether `ip` is one of the trusted proxies (an IPv4-mapped address is checked as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client of `req`, as limits key it.
    pub fn client(&self, req: &HttpRequest) -> ClientKey {
        ClientKey::of(self.address(req))
    }

    /// The client's address as [`client_ip`](Self::client_ip) reads it off `req`.
    pub fn address(&self, req: &HttpRequest) -> IpAddr {
        let peer = req.peer_addr().map(|addr| addr.ip());
        self.client_ip(peer, req.headers().get_all(X_FORWARDED_FOR))
    }

    /// The client's address: `peer` (a request not over TCP counts as one anonymous client), or, when `peer`
    /// is a trusted proxy, the right-most address in the `X-Forwarded-For` lines (in the order received) that is
    /// not a trusted proxy; the left-most one if all are; the last believed one if an entry is malformed.
    pub fn client_ip<'a>(
        &self,
        peer: Option<IpAddr>,
        forwarded: impl DoubleEndedIterator<Item = &'a HeaderValue>,
    ) -> IpAddr {
        let mut client = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ip| ip.to_canonical());
        if self.0.is_empty() || !self.contains(client) {
            return client;
        }
        for line in forwarded.rev() {
            let Ok(line) = line.to_str() else {
                return client;
            };
            for entry in line.rsplit(',') {
                let Ok(hop) = entry.trim().parse::<IpAddr>() else {
                    return client;
                };
                client = hop.to_canonical();
                if !self.contains(client) {
                    return client;
                }
            }
        }
        client
    }
}

/// What limits key a client by: its IPv4 address, or the /64 of its IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of the client at `ip`.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }
}

impl ClientKey {
    /// The /48 an IPv6 client's /64 lies in (`None` for IPv4): what a site is commonly given, 65,536 /64s that
    /// would otherwise each be a client of their own, so a bound per client also needs one per /48.
    pub fn site(self) -> Option<Self> {
        match self.0 {
            IpAddr::V4(_) => None,
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 80) - 1);
                Some(Self(IpAddr::V6(Ipv6Addr::from(prefix))))
            }
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => v4.fmt(f),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        ClientIpArgs {
            trusted_proxies: nets
                .iter()
                .map(|net| net.parse().expect("a proxy net"))
                .collect(),
        }
        .trusted()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn client(proxies: &TrustedProxies, peer: &str, lines: &[&str]) -> IpAddr {
        let values: Vec<HeaderValue> = lines
            .iter()
            .map(|line| HeaderValue::from_str(line).expect("a header value"))
            .collect();
        proxies.client_ip(Some(ip(peer)), values.iter())
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        assert_eq!(client(&none, "10.0.0.1", &["203.0.113.9"]), ip("10.0.0.1"));
    }

    #[test]
    fn an_untrusted_peer_cannot_name_another_client() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(
            client(&proxies, "198.51.100.7", &["203.0.113.9"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let proxies = trusted(&["10.0.0.0/8", "192.168.1.1"]);
        // The client wrote "1.2.3.4" itself; the trusted hops appended the rest.
        let lines = ["1.2.3.4, 203.0.113.9", "192.168.1.1"];
        assert_eq!(client(&proxies, "10.1.2.3", &lines), ip("203.0.113.9"));
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(client(&proxies, "10.0.0.1", &[]), ip("10.0.0.1"));
    }

    #[test]
    fn when_every_hop_is_trusted_the_left_most_is_the_client() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(
            client(&proxies, "10.0.0.1", &["10.9.9.9, 10.0.0.2"]),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn a_malformed_entry_stops_the_walk_at_the_last_believed_hop() {
        let proxies = trusted(&["10.0.0.0/8"]);
        for garbage in ["not-an-ip", "", "203.0.113.9:443", "unknown", "1.2.3.4/8"] {
            let line = format!("203.0.113.9, {garbage}");
            assert_eq!(
                client(&proxies, "10.0.0.1", &[&line]),
                ip("10.0.0.1"),
                "{garbage:?}"
            );
            let line = format!("203.0.113.9, {garbage}, 10.0.0.2");
            assert_eq!(
                client(&proxies, "10.0.0.1", &[&line]),
                ip("10.0.0.2"),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4_for_trust_and_for_keys() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(
            client(&proxies, "::ffff:10.0.0.1", &["::ffff:203.0.113.9"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            ClientKey::of(ip("::ffff:203.0.113.9")),
            ClientKey::of(ip("203.0.113.9"))
        );
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let first = ClientKey::of(ip("2001:db8:1:2::1"));
        assert_eq!(first, ClientKey::of(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(first, ClientKey::of(ip("2001:db8:1:3::1")));
        assert_eq!(first.to_string(), "2001:db8:1:2::/64");
    }

    #[test]
    fn the_slash_64s_of_an_ipv6_slash_48_share_a_site_and_ipv4_has_none() {
        let site = ClientKey::of(ip("2001:db8:1:2::1")).site();
        assert!(site.is_some());
        assert_eq!(site, ClientKey::of(ip("2001:db8:1:ffff::9")).site());
        assert_ne!(site, ClientKey::of(ip("2001:db8:2:2::1")).site());
        assert_eq!(ClientKey::of(ip("203.0.113.9")).site(), None);
    }

    #[test]
    fn a_bad_proxy_entry_is_refused_with_its_text() {
        let error = "10.0.0.0/33".parse::<ProxyNet>().expect_err("refused");
        assert!(error.contains("10.0.0.0/33"), "{error}");
        assert_eq!(
            "10.1.2.3/8".parse::<ProxyNet>(),
            "10.0.0.0/8".parse::<ProxyNet>()
        );
    }
}
