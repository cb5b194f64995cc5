//! Which addresses are not the public internet: a grant reaches them only with
//! `allow_private = true` (SSRF into the host's own network, or a DNS name rebound to one).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The range `ip` is in when it is not a public unicast address, named for messages
/// (`"loopback"`, `"private"`, …); `None` for a public address.
///
/// IPv6 addresses that carry an IPv4 address a gateway or the kernel would reach (IPv4-mapped,
/// IPv4-compatible, NAT64's well-known prefix, 6to4) are judged by that IPv4 address.
pub fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        _ if ip.is_unspecified() => "unspecified",
        (0, _, _) => "\"this network\" (0.0.0.0/8)",
        (127, _, _) => "loopback",
        (10, _, _) => "private",
        (172, 16..=31, _) => "private",
        (192, 168, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "CGNAT (shared address space, 100.64.0.0/10)",
        (192, 0, 0) => "IETF protocol assignment (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (240..=255, _, _) => "reserved (240.0.0.0/4)",
        _ => return None,
    };
    Some(range)
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible, deprecated), 64:ff9b::a.b.c.d (NAT64).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_range(v4);
    }
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] {
        return Some(v4_range(embedded).unwrap_or("IPv4-compatible (deprecated, ::/96)"));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_range(embedded);
    }
    // 6to4: 2002:AABB:CCDD::/48 reaches the IPv4 address AA.BB.CC.DD through a relay.
    if s[0] == 0x2002 {
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        if let Some(range) = v4_range(v4) {
            return Some(range);
        }
    }
    let range = match s[0] {
        0x0064 if s[1] == 0xff9b && s[2] == 1 => "NAT64 local use (64:ff9b:1::/48)",
        0x0100 if s[1..4] == [0; 3] => "discard-only (100::/64)",
        0x2001 if s[1] == 0x0db8 => "documentation",
        0xfc00..=0xfdff => "unique-local",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local (deprecated)",
        0xff00..=0xffff => "multicast",
        _ => return None,
    };
    Some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_non_public_range_is_named_and_public_addresses_pass() {
        let table: &[(&str, Option<&str>)] = &[
            // IPv4
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("\"this network\" (0.0.0.0/8)")),
            ("127.0.0.1", Some("loopback")),
            ("127.255.255.254", Some("loopback")),
            ("10.0.0.1", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            (
                "100.64.0.1",
                Some("CGNAT (shared address space, 100.64.0.0/10)"),
            ),
            (
                "100.127.255.255",
                Some("CGNAT (shared address space, 100.64.0.0/10)"),
            ),
            ("192.0.0.8", Some("IETF protocol assignment (192.0.0.0/24)")),
            ("192.0.2.1", Some("documentation")),
            ("198.18.0.1", Some("benchmarking (198.18.0.0/15)")),
            ("224.0.0.1", Some("multicast")),
            ("239.255.255.250", Some("multicast")),
            ("240.0.0.1", Some("reserved (240.0.0.0/4)")),
            ("255.255.255.255", Some("broadcast")),
            ("172.15.255.255", None),
            ("172.32.0.1", None),
            ("100.63.255.255", None),
            ("100.128.0.1", None),
            ("8.8.8.8", None),
            ("93.184.215.14", None),
            // IPv6
            ("::", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.1.2.3", Some("private")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("::127.0.0.1", Some("loopback")),
            ("::8.8.8.8", Some("IPv4-compatible (deprecated, ::/96)")),
            ("64:ff9b::10.0.0.1", Some("private")),
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b:1::1", Some("NAT64 local use (64:ff9b:1::/48)")),
            ("2002:7f00:1::1", Some("loopback")),
            ("2002:c0a8:101::1", Some("private")),
            ("100::1", Some("discard-only (100::/64)")),
            ("2001:db8::1", Some("documentation")),
            ("fc00::1", Some("unique-local")),
            ("fd12:3456::1", Some("unique-local")),
            ("fe80::1", Some("link-local")),
            ("febf::1", Some("link-local")),
            ("fec0::1", Some("site-local (deprecated)")),
            ("ff02::1", Some("multicast")),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:82a::200e", None),
            ("2002:808:808::1", None),
        ];
        for (text, expected) in table {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(non_public_range(ip), *expected, "{text}");
        }
    }
}
