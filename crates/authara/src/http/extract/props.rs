//! Property test of [`super::client::client_ip`]: the walk over `X-Forwarded-For` against a
//! model (kept apart from `client.rs`, whose entry parsing may grow).

use super::client::client_ip;
use crate::network::Cidr;
use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use std::net::IpAddr;

#[derive(Debug, Clone)]
enum Entry {
    Trusted(IpAddr),
    Untrusted(IpAddr),
    Garbage(&'static str),
}

impl Entry {
    fn text(&self) -> String {
        match self {
            Self::Trusted(ip) | Self::Untrusted(ip) => ip.to_string(),
            Self::Garbage(g) => (*g).to_owned(),
        }
    }
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        (any::<u16>()).prop_map(|n| Entry::Trusted(IpAddr::from([10, 0, (n >> 8) as u8, n as u8]))),
        (1u8..=9, any::<u8>()).prop_map(|(a, b)| Entry::Untrusted(IpAddr::from([203, a, 113, b]))),
        any::<u16>()
            .prop_map(|n| Entry::Untrusted(IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, n]))),
        prop::sample::select(vec!["", "unknown", "x", "1.2.3", "999.1.1.1", "_hidden"])
            .prop_map(Entry::Garbage),
    ]
}

/// The documented walk: right to left, trusted hops skipped, the first untrusted address is
/// the client, garbage stops at the last trusted hop.
fn model(peer: IpAddr, peer_trusted: bool, entries: &[Entry]) -> IpAddr {
    if !peer_trusted {
        return peer;
    }
    let mut last = peer;
    for e in entries.iter().rev() {
        match e {
            Entry::Garbage(_) => return last,
            Entry::Untrusted(ip) => return *ip,
            Entry::Trusted(ip) => last = *ip,
        }
    }
    last
}

proptest! {
    #[test]
    fn client_ip_agrees_with_the_model_walk(
        entries in prop::collection::vec(entry(), 0..8),
        cut in any::<prop::sample::Index>(),
        peer_trusted in any::<bool>(),
    ) {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = if peer_trusted { [10, 9, 9, 9].into() } else { [198, 51, 100, 1].into() };
        // The entries in one or two headers.
        let at = cut.index(entries.len() + 1);
        let mut h = HeaderMap::new();
        for part in [&entries[..at], &entries[at..]] {
            if part.is_empty() {
                continue;
            }
            let joined = part.iter().map(Entry::text).collect::<Vec<_>>().join(", ");
            h.append("x-forwarded-for", HeaderValue::from_str(&joined).unwrap());
        }
        prop_assert_eq!(client_ip(Some(peer), &h, &trusted), Some(model(peer, peer_trusted, &entries)));
    }

    #[test]
    fn arbitrary_header_bytes_never_panic_and_answer_a_trusted_hop_or_an_entry(
        bytes in prop::collection::vec(any::<u8>(), 0..120),
    ) {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = [10, 0, 0, 1].into();
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&bytes) {
            h.append("x-forwarded-for", v);
        }
        let got = client_ip(Some(peer), &h, &trusted);
        prop_assert!(got.is_some());
    }
}
