//! The frames and tenant tables the benchmark uses.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use hsn_core::{MacAddr, TenantId};
use hsn_ebpf::{NextHop, TenantPrefixes};
use hsn_testkit::packet::{Packet, internet_checksum};
use hsn_testkit::topology::{EDGE_UE_MAC, EDGE_V4, edge_super_mac, super_edge_mac, super_edge_v4};
use ipnet::{IpNet, Ipv4Net};

/// The sender (user equipment), in no tenant prefix.
pub const UE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 10);
/// A destination in no tenant prefix: the miss.
pub const MISS: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// The hit: in `HIT_PREFIX`, owned by `HIT_TENANT` in every table.
pub const HIT: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 10);
pub const HIT_TENANT: u32 = 7;
pub const HIT_PREFIX: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::new(10, 7, 0, 0), 24);
/// The MACs of the chain the forwarding part runs on (hsn-testkit's `topology`).
pub use hsn_testkit::topology::UE_MAC;
/// The edge's UE-facing and super-facing interfaces.
pub const EDGE_IN_MAC: MacAddr = EDGE_UE_MAC;
pub const EDGE_OUT_MAC: MacAddr = edge_super_mac(0);
/// The super node's edge-facing interface: the edge's next hop.
pub const SUPER_MAC: MacAddr = super_edge_mac(0);
/// The MTU of the edge ↔ super link: a 1500 B frame (a 1486 B packet) plus the 20-byte outer
/// IPv4 header fits, as a deployment's underlay must carry the access network's packets.
pub const UNDERLAY_MTU: u32 = 1520;
/// Generated prefixes are spread over this many tenants.
const TENANTS: u32 = 1000;

/// Frame sizes measured (Ethernet header included, no FCS).
pub const SIZES: [usize; 2] = [64, 1500];

/// The edge's tunnel to super 0 for BPF_PROG_TEST_RUN: out of `lo` (ifindex 1 in every
/// namespace: all bpf_redirect_map needs to return XDP_REDIRECT there), from the edge's own
/// address to the super node's, over the underlay's MTU.
pub fn test_hop() -> NextHop {
    NextHop {
        ifindex: 1,
        dst_mac: SUPER_MAC,
        src_mac: EDGE_OUT_MAC,
        local: EDGE_V4.parse().expect("EDGE_V4 is an address"),
        remote: super_edge_v4(0)
            .parse()
            .expect("super_edge_v4 is an address"),
        mtu: UNDERLAY_MTU,
    }
}

/// An Ethernet + IPv4 + UDP frame of exactly `len` bytes with a valid IPv4 header checksum
/// (Linux forwarding drops frames without one; the XDP programs do not look at it).
pub fn udp_frame(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    len: usize,
    src_mac: MacAddr,
    dst_mac: MacAddr,
) -> Vec<u8> {
    let mut packet = Packet::v4(&src.to_string(), &dst.to_string())
        .src_mac(src_mac.0)
        .udp(0)
        .frame_len(len);
    packet.dst_mac = dst_mac.0;
    let mut frame = packet.build();
    let header = 14..34;
    frame[24..26].fill(0);
    let sum = internet_checksum(&frame[header]);
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
    frame
}

/// `n` distinct IPv4 prefixes: `HIT_PREFIX` for `HIT_TENANT`, then /20 to /28 prefixes
/// spread over the whole address space (a bijective scramble of a counter), none
/// overlapping `HIT_PREFIX` or covering `UE` or `MISS`, owned by tenants 1..=1000 in turn.
/// The first 10 of the 100,000 are the 10, so both tables share the hit's prefix.
pub fn tenant_table(n: usize) -> Vec<TenantPrefixes> {
    let mut seen = BTreeSet::from([HIT_PREFIX]);
    let mut per_tenant: Vec<Vec<IpNet>> = vec![Vec::new(); TENANTS as usize];
    let mut hit = vec![IpNet::V4(HIT_PREFIX)];
    let mut i: u32 = 0;
    while seen.len() < n {
        let scrambled = i.wrapping_mul(0x9e37_79b1) & 0x00ff_ffff;
        let addr = Ipv4Addr::from((scrambled << 8) | (i.wrapping_mul(37) & 0xff));
        let net = Ipv4Net::new_assert(addr, 20 + (i % 9) as u8).trunc();
        i += 1;
        let clashes = net.contains(&UE)
            || net.contains(&MISS)
            || net.contains(&HIT_PREFIX)
            || HIT_PREFIX.contains(&net);
        if clashes || !seen.insert(net) {
            continue;
        }
        let tenant = (seen.len() as u32) % TENANTS + 1;
        if tenant == HIT_TENANT {
            hit.push(IpNet::V4(net));
        } else {
            per_tenant[tenant as usize - 1].push(IpNet::V4(net));
        }
    }
    let id = |n: u32| TenantId::new(n).expect("tenant ids start at 1");
    let mut table = vec![TenantPrefixes {
        tenant: id(HIT_TENANT),
        prefixes: hit,
    }];
    table.extend(
        per_tenant
            .into_iter()
            .zip(1..)
            .filter(|(prefixes, _)| !prefixes.is_empty())
            .map(|(prefixes, tenant)| TenantPrefixes {
                tenant: id(tenant),
                prefixes,
            }),
    );
    table
}

/// Number of prefixes in a table.
pub fn prefix_count(table: &[TenantPrefixes]) -> usize {
    table.iter().map(|t| t.prefixes.len()).sum()
}
