//! IP networks: [`Cidr`], as `AUTHARA_TRUSTED_PROXIES` lists them and the client-address logic
//! matches peers against them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Longest part of an input echoed in a parse error.
const MAX_SHOWN: usize = 80;

/// The input quoted for an error message: escaped (so the message stays one line) and shortened.
/// The same form the configuration's messages use.
fn quoted(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_SHOWN).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

/// An IPv4 or IPv6 network, e.g. `10.0.0.0/8` or `fd00::/8`; a bare address is a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

fn mask_v4(addr: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(u32::from(addr) & mask)
}

fn mask_v6(addr: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(u128::from(addr) & mask)
}

impl Cidr {
    /// The network of `addr` with `prefix` bits (host bits are cleared); `None` when the prefix
    /// is longer than the address. An IPv4-mapped IPv6 network (`::ffff:a.b.c.d/96+n`) becomes
    /// the IPv4 network `a.b.c.d/n`.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        match addr {
            IpAddr::V4(a) if prefix <= 32 => Some(Self {
                network: IpAddr::V4(mask_v4(a, prefix)),
                prefix,
            }),
            IpAddr::V6(a) if prefix <= 128 => match a.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => Self::new(IpAddr::V4(v4), prefix - 96),
                _ => Some(Self {
                    network: IpAddr::V6(mask_v6(a, prefix)),
                    prefix,
                }),
            },
            _ => None,
        }
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address (as a dual-stack socket
    /// reports an IPv4 peer) is treated as the IPv4 address it carries, so `10.0.0.0/8`
    /// contains `::ffff:10.1.2.3`, and an IPv6 network contains the IPv4 addresses whose mapped
    /// form it covers.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => mask_v4(a, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V6(a)) => mask_v6(a, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V4(a)) => mask_v6(a.to_ipv6_mapped(), self.prefix) == net,
            (IpAddr::V4(_), IpAddr::V6(_)) => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    /// Parses `ADDR/PREFIX` or a bare `ADDR`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{} is not an IP address or CIDR", quoted(s));
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let prefix = match prefix {
            None if addr.is_ipv4() => 32,
            None => 128,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        Self::new(addr, prefix).ok_or_else(bad)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parsing() {
        for (input, display) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("192.168.1.7", "192.168.1.7/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("fd00::/8", "fd00::/8"),
            ("2001:db8::1", "2001:db8::1/128"),
            ("2001:db8:abcd::/32", "2001:db8::/32"),
            ("::/0", "::/0"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("::ffff:0:0/96", "0.0.0.0/0"),
            ("::ffff:1.2.3.4", "1.2.3.4/32"),
            ("::ffff:0:0/80", "::/80"),
        ] {
            let c: Cidr = input.parse().unwrap();
            assert_eq!(c.to_string(), display, "{input}");
        }
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/0008",
            "10.0.0/8",
            "10.0.0.0/8/8",
            "host.example",
            "fe80::1%eth0",
            " 10.0.0.0/8",
            "10.0.0.0 /8",
            "[::1]",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} was accepted");
        }
        assert_eq!(Cidr::new("10.0.0.0".parse().unwrap(), 33), None);
        let c = Cidr::new("10.9.8.7".parse().unwrap(), 16).unwrap();
        assert_eq!((c.network(), c.prefix()), ("10.9.0.0".parse().unwrap(), 16));
    }

    #[test]
    fn cidr_contains() {
        for (cidr, ip, expected) in [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("10.0.0.0/8", "::ffff:11.1.2.3", false),
            ("10.0.0.0/8", "::a01:203", false),
            ("10.0.0.0/8", "fd00::1", false),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("172.16.0.0/12", "172.31.255.255", true),
            ("172.16.0.0/12", "172.32.0.0", false),
            ("0.0.0.0/0", "1.2.3.4", true),
            ("0.0.0.0/0", "::1", false),
            ("fd00::/8", "fd12:3456::1", true),
            ("fd00::/8", "fe80::1", false),
            ("fd00::/8", "10.0.0.1", false),
            ("::1", "::1", true),
            ("::1", "::2", false),
            ("::1", "127.0.0.1", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::", false),
            ("::/0", "2001:db8::1", true),
            ("::/0", "1.2.3.4", true),
            ("::ffff:10.0.0.0/104", "10.9.9.9", true),
            ("::ffff:10.0.0.0/104", "::ffff:10.9.9.9", true),
            ("::ffff:10.0.0.0/104", "11.0.0.0", false),
            ("::ffff:0:0/80", "8.8.8.8", true),
        ] {
            let c: Cidr = cidr.parse().unwrap();
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(c.contains(ip), expected, "{cidr} contains {ip}");
        }
    }
}
