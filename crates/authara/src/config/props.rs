//! Property tests of the configuration parsers that see operator input: CIDRs and durations.

use super::duration::{human, parse_duration};
use crate::network::Cidr;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

fn v4_cidr() -> impl Strategy<Value = (u32, u8)> {
    (any::<u32>(), 0u8..=32)
}

fn v6_cidr() -> impl Strategy<Value = (u128, u8)> {
    (any::<u128>(), 0u8..=128)
}

/// The first `prefix` bits of `a` and `b` agree.
fn same_prefix_v4(a: u32, b: u32, prefix: u8) -> bool {
    prefix == 0 || (a ^ b) >> (32 - u32::from(prefix)) == 0
}

fn same_prefix_v6(a: u128, b: u128, prefix: u8) -> bool {
    prefix == 0 || (a ^ b) >> (128 - u32::from(prefix)) == 0
}

proptest! {
    #[test]
    fn cidr_display_reads_back((addr, prefix) in v4_cidr()) {
        let c = Cidr::new(IpAddr::V4(Ipv4Addr::from(addr)), prefix).unwrap();
        prop_assert_eq!(c.to_string().parse::<Cidr>(), Ok(c));
        // The written form of the network is the canonical one.
        prop_assert_eq!(format!("{}/{}", c.network(), c.prefix()), c.to_string());
    }

    #[test]
    fn cidr_v6_display_reads_back((addr, prefix) in v6_cidr()) {
        let c = Cidr::new(IpAddr::V6(Ipv6Addr::from(addr)), prefix).unwrap();
        prop_assert_eq!(c.to_string().parse::<Cidr>(), Ok(c));
    }

    #[test]
    fn v4_contains_is_the_bit_mask((net, prefix) in v4_cidr(), ip in any::<u32>(), near in any::<bool>()) {
        // Half the time an address inside the network, so both outcomes are exercised.
        let ip = if near && prefix > 0 {
            let keep = u32::MAX << (32 - u32::from(prefix));
            (net & keep) | (ip & !keep)
        } else {
            ip
        };
        let c = Cidr::new(IpAddr::V4(Ipv4Addr::from(net)), prefix).unwrap();
        let want = same_prefix_v4(net, ip, prefix);
        prop_assert_eq!(c.contains(IpAddr::V4(Ipv4Addr::from(ip))), want);
        // The IPv4-mapped IPv6 form of the address is the same address.
        prop_assert_eq!(c.contains(IpAddr::V6(Ipv4Addr::from(ip).to_ipv6_mapped())), want);
    }

    #[test]
    fn v6_contains_is_the_bit_mask((net, prefix) in v6_cidr(), ip in any::<u128>(), near in any::<bool>()) {
        // Not an IPv4-mapped network (those become IPv4 networks).
        prop_assume!(Ipv6Addr::from(net).to_ipv4_mapped().is_none());
        let ip = if near && prefix > 0 {
            let keep = u128::MAX << (128 - u32::from(prefix));
            (net & keep) | (ip & !keep)
        } else {
            ip
        };
        prop_assume!(Ipv6Addr::from(ip).to_ipv4_mapped().is_none());
        let c = Cidr::new(IpAddr::V6(Ipv6Addr::from(net)), prefix).unwrap();
        prop_assert_eq!(c.contains(IpAddr::V6(Ipv6Addr::from(ip))), same_prefix_v6(net, ip, prefix));
    }

    #[test]
    fn cidr_parsing_arbitrary_text_never_panics(s in any::<String>()) {
        if let Ok(c) = s.parse::<Cidr>() {
            prop_assert_eq!(c.to_string().parse::<Cidr>(), Ok(c));
        }
    }

    #[test]
    fn human_durations_read_back(ms in 0u64..(1u64 << 50)) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&human(d)), Ok(d));
    }

    #[test]
    fn composed_durations_add_up(h in 0u64..10_000, m in 0u64..100_000, s in 0u64..100_000, ms in 0u64..100_000) {
        let text = format!("{h}h{m}m{s}s{ms}ms");
        let want = Duration::from_secs(h * 3600 + m * 60 + s) + Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&text), Ok(want));
    }

    #[test]
    fn parse_duration_of_arbitrary_text_never_panics(s in any::<String>()) {
        if let Ok(d) = parse_duration(&s) {
            // Whatever parsed has a canonical spelling that parses to the same (sub-ms aside).
            let ms = Duration::from_millis(d.as_millis().try_into().unwrap_or(u64::MAX));
            if ms == d {
                prop_assert_eq!(parse_duration(&human(d)), Ok(d));
            }
        }
    }
}
