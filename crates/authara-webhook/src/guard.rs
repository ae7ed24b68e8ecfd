//! The outbound address policy and the HTTP client built around it.
//!
//! A webhook URL names a host; what that host resolves to decides where the request goes. Unless
//! `allow_private_networks` is set, every address it resolves to must be a public unicast
//! address: a URL (or a DNS answer) pointing at loopback, a private network, the cloud metadata
//! address and the like is refused. The check runs inside the client's DNS resolver, so the
//! addresses checked are exactly the addresses connected to: a name that answers differently
//! between a check and the connection (DNS rebinding) gains nothing. IP-literal hosts skip DNS
//! and are checked by [`AddressPolicy::check_host`] before each request.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// How much of a response body is read before the connection is dropped.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// The address classes refused unless private networks are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// Carrier-grade NAT, RFC 6598: `100.64/10`.
    SharedAddressSpace,
    /// `169.254/16` (cloud metadata lives here), `fe80::/10`.
    LinkLocal,
    /// `fc00::/7`, and the deprecated site-local `fec0::/10`.
    UniqueLocal,
    /// `224/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18/15`, RFC 2544.
    Benchmarking,
    /// `192.0.0/24` (IETF protocol assignments), `240/4` (reserved), `100::/64` (discard),
    /// `2001::/32` (Teredo, whose embedded address cannot be vetted).
    Reserved,
}

impl Forbidden {
    /// A short description for error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified address",
            Self::Loopback => "loopback address",
            Self::Private => "private network",
            Self::SharedAddressSpace => "shared (carrier-grade NAT) address space",
            Self::LinkLocal => "link-local address",
            Self::UniqueLocal => "unique-local address",
            Self::Multicast => "multicast address",
            Self::Broadcast => "broadcast address",
            Self::Documentation => "documentation range",
            Self::Benchmarking => "benchmarking range",
            Self::Reserved => "reserved range",
        }
    }
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The class an address is refused for, or `None` for a public unicast address. IPv6 forms that
/// embed an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`,
/// 6to4 `2002::/16`) are judged by the embedded address.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let [a, b, c, _] = ip.octets();
    let class = match (a, b, c) {
        (0, _, _) => Forbidden::Unspecified,
        (127, _, _) => Forbidden::Loopback,
        (10, _, _) => Forbidden::Private,
        (172, 16..=31, _) => Forbidden::Private,
        (192, 168, _) => Forbidden::Private,
        (100, 64..=127, _) => Forbidden::SharedAddressSpace,
        (169, 254, _) => Forbidden::LinkLocal,
        (192, 0, 0) => Forbidden::Reserved,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Forbidden::Documentation,
        (198, 18..=19, _) => Forbidden::Benchmarking,
        (224..=239, _, _) => Forbidden::Multicast,
        _ if ip == Ipv4Addr::BROADCAST => Forbidden::Broadcast,
        (240..=255, _, _) => Forbidden::Reserved,
        _ => return None,
    };
    Some(class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    if ip.is_unspecified() {
        return Some(Forbidden::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Forbidden::Loopback);
    }
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated)
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => {
            return classify_v4(embedded(hi, lo));
        }
        // NAT64 well-known prefix
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return classify_v4(embedded(hi, lo)),
        // 6to4
        [0x2002, hi, lo, ..] => return classify_v4(embedded(hi, lo)),
        // discard-only
        [0x0100, 0, 0, 0, ..] => return Some(Forbidden::Reserved),
        _ => {}
    }
    let [first, second, ..] = s;
    let class = match (first, second) {
        (0xff00..=0xffff, _) => Forbidden::Multicast,
        (0xfe80..=0xfebf, _) => Forbidden::LinkLocal,
        (0xfec0..=0xfeff, _) | (0xfc00..=0xfdff, _) => Forbidden::UniqueLocal,
        (0x2001, 0x0db8) => Forbidden::Documentation,
        (0x3fff, 0x0000..=0x0fff) => Forbidden::Documentation,
        (0x2001, 0x0000) => Forbidden::Reserved,
        _ => return None,
    };
    Some(class)
}

/// An address the policy refused; the text names the address and why, never the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address {ip} refused: {class} (set AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow)")]
pub struct AddressRefused {
    /// The refused address.
    pub ip: IpAddr,
    /// Why.
    pub class: Forbidden,
}

/// Whether non-public addresses may be connected to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// `AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS`: allow every address (tests, receivers on the
    /// same host or network).
    pub allow_private_networks: bool,
}

impl AddressPolicy {
    /// Refuses `ip` if it is not public, unless private networks are allowed.
    pub fn check(self, ip: IpAddr) -> Result<(), AddressRefused> {
        if self.allow_private_networks {
            return Ok(());
        }
        match classify(ip) {
            Some(class) => Err(AddressRefused { ip, class }),
            None => Ok(()),
        }
    }

    /// Checks a URL whose host is an IP literal (which the client connects to without DNS);
    /// domain names pass here and are checked when resolved.
    pub fn check_host(self, url: &Url) -> Result<(), AddressRefused> {
        // The URL parser has already normalised IPv4 forms such as `0x7f.1` for http(s).
        let host = url.host_str().unwrap_or_default();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        match host.parse::<IpAddr>() {
            Ok(ip) => self.check(ip),
            Err(_) => Ok(()),
        }
    }
}

/// A DNS resolver that refuses a name when any address it resolves to is refused by the policy.
/// Refusing the whole answer, rather than picking the acceptable addresses, keeps a name that
/// mixes public and internal addresses from working by chance.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    policy: AddressPolicy,
}

/// The name resolved to no address at all.
#[derive(Debug, thiserror::Error)]
#[error("the host resolved to no address")]
struct NoAddress;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(NoAddress.into());
            }
            for addr in &addrs {
                policy.check(addr.ip())?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The client every attempt goes through: no redirects (a 3xx is the receiver's final answer),
/// no proxy from the environment (it would bypass the resolver's check), the per-request
/// `timeout` over connect, headers and body, and the guarded resolver.
pub fn build_client(
    policy: AddressPolicy,
    timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(user_agent)
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .build()
}

/// The address refusal somewhere in an error's source chain, if that is what it is.
pub fn refused_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a AddressRefused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<AddressRefused>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}

/// Reads at most [`MAX_RESPONSE_BODY`] bytes of a response body and drops the rest (and with it
/// the connection): a receiver cannot make a worker hold or wait for more. Returns the bytes
/// read.
pub async fn drain_bounded(mut response: reqwest::Response) -> Result<usize, reqwest::Error> {
    let mut read = 0usize;
    while read < MAX_RESPONSE_BODY {
        match response.chunk().await? {
            Some(chunk) => read = read.saturating_add(chunk.len()),
            None => break,
        }
    }
    Ok(read.min(MAX_RESPONSE_BODY))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn address_classes_are_table_driven() {
        use Forbidden::*;
        let cases: &[(&str, Option<Forbidden>)] = &[
            // IPv4 public
            ("1.1.1.1", None),
            ("8.8.8.8", None),
            ("93.184.215.14", None),
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("192.0.1.1", None),
            ("192.0.3.1", None),
            ("198.17.255.255", None),
            ("198.20.0.0", None),
            ("223.255.255.255", None),
            ("169.253.255.255", None),
            // IPv4 refused
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("100.64.0.1", Some(SharedAddressSpace)),
            ("100.127.255.255", Some(SharedAddressSpace)),
            ("169.254.169.254", Some(LinkLocal)),
            ("192.0.0.170", Some(Reserved)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("198.18.0.1", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.255", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("255.255.255.254", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            // IPv6 public
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:80b::200e", None),
            ("2001:db9::1", None),
            ("3fff:1000::1", None),
            ("64:ff9b::808:808", None),
            ("2002:808:808::1", None),
            ("::ffff:8.8.8.8", None),
            // IPv6 refused
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("fe80::1", Some(LinkLocal)),
            ("febf:ffff::1", Some(LinkLocal)),
            ("fc00::1", Some(UniqueLocal)),
            ("fd12:3456:789a::1", Some(UniqueLocal)),
            ("fec0::1", Some(UniqueLocal)),
            ("ff02::1", Some(Multicast)),
            ("ff05::2", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Some(Reserved)),
            ("100::1", Some(Reserved)),
            // IPv6 forms embedding a refused IPv4 address
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::127.0.0.1", Some(Loopback)),
            ("64:ff9b::a00:1", Some(Private)),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("2002:c0a8:101::1", Some(Private)),
            ("2002:7f00:1::", Some(Loopback)),
        ];
        for (addr, want) in cases {
            assert_eq!(classify(ip(addr)), *want, "{addr}");
        }
    }

    #[test]
    fn allowing_private_networks_allows_every_address() {
        let open = AddressPolicy {
            allow_private_networks: true,
        };
        let closed = AddressPolicy {
            allow_private_networks: false,
        };
        for addr in ["127.0.0.1", "10.0.0.1", "::1", "fd00::1", "169.254.169.254"] {
            assert_eq!(open.check(ip(addr)), Ok(()), "{addr}");
            assert!(closed.check(ip(addr)).is_err(), "{addr}");
        }
        assert_eq!(closed.check(ip("1.1.1.1")), Ok(()));
    }

    #[test]
    fn ip_literal_hosts_are_checked_as_the_url_parser_normalises_them() {
        let closed = AddressPolicy {
            allow_private_networks: false,
        };
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://0x7f.1/hook",
            "http://2130706433/hook",
            "http://[::1]/hook",
            "http://[::ffff:7f00:1]/hook",
            "https://10.0.0.1/",
            "http://0/",
        ] {
            let url = Url::parse(url).unwrap();
            assert!(closed.check_host(&url).is_err(), "{url}");
        }
        for url in ["https://example.com/hook", "https://1.1.1.1/hook"] {
            let url = Url::parse(url).unwrap();
            assert_eq!(closed.check_host(&url), Ok(()), "{url}");
        }
    }

    #[test]
    fn a_refusal_names_the_address_and_the_class_but_no_url() {
        let e = AddressRefused {
            ip: ip("10.0.0.1"),
            class: Forbidden::Private,
        };
        assert_eq!(
            e.to_string(),
            "address 10.0.0.1 refused: private network (set AUTHARA_WEBHOOK_ALLOW_PRIVATE_NETWORKS=true to allow)"
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_localhost_and_is_found_in_an_error_chain() {
        let resolver = GuardedResolver {
            policy: AddressPolicy {
                allow_private_networks: false,
            },
        };
        let name: Name = "localhost".parse().unwrap();
        let err = match resolver.resolve(name).await {
            Ok(_) => panic!("localhost resolved"),
            Err(e) => e,
        };
        let refused = refused_in(err.as_ref()).unwrap();
        assert_eq!(refused.class, Forbidden::Loopback);

        let allowing = GuardedResolver {
            policy: AddressPolicy {
                allow_private_networks: true,
            },
        };
        let name: Name = "localhost".parse().unwrap();
        let addrs: Vec<SocketAddr> = allowing.resolve(name).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
