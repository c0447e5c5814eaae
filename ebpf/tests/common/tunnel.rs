//! The tunnel's ends in the fixtures and the frames the programs should write: an edge's
//! next hop and a super node's way back, in both families, out of `lo` (ifindex 1, in every
//! network namespace, which is enough for bpf_redirect_map to succeed).

use std::net::IpAddr;

use hsn_ebpf::{EdgeNode, NextHop};
use hsn_testkit::packet::{IPPROTO_TCP, Packet, l4_checksum};

use super::{EDGE_ADDR_V4, EDGE_ADDR_V6, EDGE_OUT_MAC, SUPER_ADDR_V4, SUPER_ADDR_V6, SUPER_MAC};

/// The addresses of one tunnel: (edge, super node).
pub fn tunnel_ends(v6: bool) -> (&'static str, &'static str) {
    if v6 {
        (EDGE_ADDR_V6, SUPER_ADDR_V6)
    } else {
        (EDGE_ADDR_V4, SUPER_ADDR_V4)
    }
}

/// The edge's next hop: to [`SUPER_MAC`] from [`EDGE_OUT_MAC`], tunnelling from the edge's
/// address to the super node's (IPv6 when `v6`), carrying outer packets of `mtu` bytes.
pub fn edge_hop(v6: bool, mtu: u32) -> NextHop {
    let (edge, super_node) = tunnel_ends(v6);
    NextHop {
        ifindex: 1,
        dst_mac: SUPER_MAC,
        src_mac: EDGE_OUT_MAC,
        local: edge.parse().unwrap(),
        remote: super_node.parse().unwrap(),
        mtu,
    }
}

/// A super node's way back to the fixture edge (IPv6 when `v6`): the edge's next hop
/// turned around.
pub fn way_back(v6: bool, mtu: u32) -> NextHop {
    let hop = edge_hop(v6, mtu);
    NextHop {
        dst_mac: hop.src_mac,
        src_mac: hop.dst_mac,
        local: hop.remote,
        remote: hop.local,
        ..hop
    }
}

/// The edge at `addr` with `route` as its way back.
pub fn edge_node(addr: &str, route: Option<NextHop>) -> EdgeNode {
    EdgeNode {
        addr: addr.parse().unwrap(),
        route,
    }
}

/// What a program writes when it tunnels `p` through `hop`: the hop's Ethernet header
/// (any VLAN tags popped), the outer header (from the hop's local to its remote address,
/// TOS copied, DF, TTL 64, checksummed), then `p`'s IP packet and whatever Ethernet
/// padding followed it.
pub fn encapsulated(p: &Packet, hop: &NextHop) -> Vec<u8> {
    let frame = p.build();
    let headers = p
        .clone()
        .untagged()
        .dst_mac(hop.dst_mac.0)
        .src_mac(hop.src_mac.0)
        .tunnel(&hop.local.to_string(), &hop.remote.to_string())
        .build();
    let len = 14 + hop.overhead() as usize;
    [&headers[..len], &frame[p.l3_offset()..]].concat()
}

/// Whether the TCP segment of the IP packet at the start of `ip` (IPv4, or IPv6 without
/// extension headers) has a correct checksum: read here, by the test, from what the program
/// wrote.
pub fn tcp_checksum_ok(ip: &[u8]) -> bool {
    let (src, dst, proto, segment): (IpAddr, IpAddr, u8, &[u8]) = match ip[0] >> 4 {
        4 => {
            let hlen = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let src: [u8; 4] = ip[12..16].try_into().unwrap();
            let dst: [u8; 4] = ip[16..20].try_into().unwrap();
            (src.into(), dst.into(), ip[9], &ip[hlen..total])
        }
        6 => {
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let src: [u8; 16] = ip[8..24].try_into().unwrap();
            let dst: [u8; 16] = ip[24..40].try_into().unwrap();
            (src.into(), dst.into(), ip[6], &ip[40..40 + payload])
        }
        v => panic!("IP version {v}"),
    };
    proto == IPPROTO_TCP && l4_checksum(src, dst, proto, segment) == 0
}

/// What a program leaves of `tunnelled` (`inner` put in a tunnel) when it removes the outer
/// header: `inner`'s Ethernet header and VLAN tags (the inner EtherType), then everything
/// after the outer header, Ethernet padding included.
pub fn decapsulated(inner: &Packet, tunnelled: &Packet) -> Vec<u8> {
    let l2 = inner.build();
    let frame = tunnelled.build();
    [&l2[..inner.l3_offset()], &frame[tunnelled.inner_offset()..]].concat()
}
