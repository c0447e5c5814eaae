//! The addressing plan of the chain: interface names, MACs and addresses, one place for the
//! tests, the benchmark and the demo. Super nodes are numbered from 0 here and from 1 in
//! names and addresses (`e-s1` is the edge's link to super 0).

use hsn_core::MacAddr;

/// The UE's address (in no tenant prefix).
pub const UE_V4: &str = "100.64.0.10";
/// The UE's IPv6 address.
pub const UE_V6: &str = "fd00::10";
/// The UE subnet, routed back to the edge by every super node and the service.
pub const UE_NET_V4: &str = "100.64.0.0/24";
/// The UE's IPv6 subnet.
pub const UE_NET_V6: &str = "fd00::/64";
/// The edge's address on the UE link: the UE's default gateway.
pub const EDGE_UE_V4: &str = "100.64.0.1";
/// The edge's IPv6 address on the UE link.
pub const EDGE_UE_V6: &str = "fd00::1";
/// The edge node's own address (on its loopback), routed to it by every super node: the
/// tunnel's outer source, the address super nodes know the edge by.
pub const EDGE_V4: &str = "192.0.2.1";
/// The edge node's own IPv6 address.
pub const EDGE_V6: &str = "fd03::1";
/// What every super node routes to the service: service addresses must be in one of them.
pub const SERVICE_NETS: [&str; 3] = ["10.0.0.0/8", "198.51.100.0/24", "2001:db8::/32"];

/// The UE's interface.
pub const UE_IF: &str = "ue0";
/// The edge's UE-facing interface.
pub const EDGE_UE_IF: &str = "e-ue";

/// `02:48:53:4e:00:<last>`: locally administered, unicast, "HSN".
const fn mac(last: u8) -> MacAddr {
    MacAddr([0x02, 0x48, 0x53, 0x4e, 0x00, last])
}

/// The UE's MAC.
pub const UE_MAC: MacAddr = mac(0x01);
/// The MAC of the edge's UE-facing interface.
pub const EDGE_UE_MAC: MacAddr = mac(0x02);

/// Super node `i` as a one-based number, for names and addresses.
fn n(i: usize) -> usize {
    i + 1
}

/// One-based number of super node `i` as the last hex digit of MACs (at most 15 supers).
const fn nibble(i: usize) -> u8 {
    assert!(i < 15, "the MAC plan has room for 15 super nodes");
    ((i + 1) << 4) as u8
}

/// The MAC of the edge's end of its link to super `i`: the source MAC of what it redirects.
pub const fn edge_super_mac(i: usize) -> MacAddr {
    mac(nibble(i) | 0x1)
}

/// The MAC of super `i`'s end of its link to the edge: the next hop the edge writes.
pub const fn super_edge_mac(i: usize) -> MacAddr {
    mac(nibble(i) | 0x2)
}

/// The MAC of super `i`'s end of its link to the service.
pub const fn super_service_mac(i: usize) -> MacAddr {
    mac(nibble(i) | 0x3)
}

/// The MAC of the service's end of its link to super `i`.
pub const fn service_super_mac(i: usize) -> MacAddr {
    mac(nibble(i) | 0x4)
}

/// The edge's interface to super `i`: `e-s1` for super 0.
pub fn edge_super_if(i: usize) -> String {
    format!("e-s{}", n(i))
}

/// Super `i`'s interface to the edge: `s1-e`.
pub fn super_edge_if(i: usize) -> String {
    format!("s{}-e", n(i))
}

/// Super `i`'s interface to the service: `s1-svc`.
pub fn super_service_if(i: usize) -> String {
    format!("s{}-svc", n(i))
}

/// The service's interface to super `i`: `svc-s1`.
pub fn service_super_if(i: usize) -> String {
    format!("svc-s{}", n(i))
}

/// The edge's IPv4 address on its link to super `i`: `192.168.1.1`.
pub fn edge_super_v4(i: usize) -> String {
    format!("192.168.{}.1", n(i))
}

/// The edge's IPv6 address on its link to super `i`: `fd01:1::1`.
pub fn edge_super_v6(i: usize) -> String {
    format!("fd01:{}::1", n(i))
}

/// Super `i`'s IPv4 address on its link to the edge: `192.168.1.2`.
pub fn super_edge_v4(i: usize) -> String {
    format!("192.168.{}.2", n(i))
}

/// Super `i`'s IPv6 address on its link to the edge: `fd01:1::2`.
pub fn super_edge_v6(i: usize) -> String {
    format!("fd01:{}::2", n(i))
}

/// Super `i`'s IPv4 address on its link to the service: `192.168.11.1`.
pub fn super_service_v4(i: usize) -> String {
    format!("192.168.1{}.1", n(i))
}

/// Super `i`'s IPv6 address on its link to the service: `fd02:1::1`.
pub fn super_service_v6(i: usize) -> String {
    format!("fd02:{}::1", n(i))
}

/// The service's IPv4 address on its link to super `i`: `192.168.11.2`.
pub fn service_super_v4(i: usize) -> String {
    format!("192.168.1{}.2", n(i))
}

/// The service's IPv6 address on its link to super `i`: `fd02:1::2`.
pub fn service_super_v6(i: usize) -> String {
    format!("fd02:{}::2", n(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_macs_of_super_0_and_1() {
        assert_eq!(
            (edge_super_if(0), super_edge_if(1), service_super_if(1)),
            ("e-s1".into(), "s2-e".into(), "svc-s2".into())
        );
        assert_eq!(super_service_v4(1), "192.168.12.1");
        assert_eq!(edge_super_v6(1), "fd01:2::1");
        assert_eq!(edge_super_mac(0).to_string(), "02:48:53:4e:00:11");
        assert_eq!(super_edge_mac(1).to_string(), "02:48:53:4e:00:22");
        let all = [UE_MAC, EDGE_UE_MAC]
            .into_iter()
            .chain((0..15).flat_map(|i| {
                [
                    edge_super_mac(i),
                    super_edge_mac(i),
                    super_service_mac(i),
                    service_super_mac(i),
                ]
            }))
            .collect::<std::collections::BTreeSet<_>>();
        assert_eq!(all.len(), 2 + 15 * 4, "every MAC is distinct");
    }
}
