//! The edge's side of the edge ↔ super tunnel through BPF_PROG_TEST_RUN: tenant uplink
//! encapsulated toward the next hop (IPv4 or IPv6 outer around IPv4 or IPv6, access VLAN
//! tags popped), tenant downlink out of a known super node's tunnel decapsulated (VLAN
//! tags kept), each metered once by its inner IP length. The super node's side:
//! `super_fixtures`; malformed tunnels: `tunnel_malformed`; MTU and MSS: `tunnel_mtu`.

mod common;

use common::edge_case::{
    Case, decap, edge_with_next_hop, non_tenant, pass_uncounted, redirect_via, run_cases,
    unknown_peer,
};
use common::tunnel::{edge_hop, tunnel_ends};
use common::*;
use hsn_ebpf::{EdgeConfig, XdpAction};
use hsn_testkit::packet::*;

fn family(v6: bool) -> &'static str {
    if v6 { "v6" } else { "v4" }
}

/// `p` with `tags` access VLAN tags (802.1ad outside 802.1Q for two).
fn tagged(p: Packet, tags: usize) -> Packet {
    [ETH_P_8021AD, ETH_P_8021Q]
        .into_iter()
        .skip(2 - tags)
        .fold(p, Packet::vlan)
}

/// Tenant uplink of both families, 0 to 2 tags, through the next hop of family `outer_v6`.
fn encap_cases(outer_v6: bool) -> Vec<Case> {
    let hop = edge_hop(outer_v6, 1500);
    let outer = family(outer_v6);
    let mut cases = Vec::new();
    for tags in 0..=2 {
        let inner = [
            (
                "v4 udp",
                Packet::v4(UE_V4, A_V4).tos(0xb8).udp(100),
                TENANT_A,
            ),
            ("v4 tcp", Packet::v4(UE_V4, B_V4).tcp(20), TENANT_B),
            (
                "v6 tcp",
                Packet::v6(UE_V6, A_V6).tos(0x2c).tcp(40),
                TENANT_A,
            ),
            ("v6 icmpv6", Packet::v6(UE_V6, B_V6).icmp(56), TENANT_B),
        ];
        for (name, p, tenant) in inner {
            let name = format!("{name} in {outer}, {tags} tags");
            cases.push(redirect_via(&name, tagged(p, tags), tenant, &hop));
        }
    }
    cases.extend([
        redirect_via(
            &format!("v4 fragment in {outer}"),
            Packet::v4(UE_V4, A_V4).fragment(0, true).udp(300),
            TENANT_A,
            &hop,
        ),
        redirect_via(
            &format!("v6 extension headers in {outer}"),
            Packet::v6(UE_V6, A_V6)
                .vlan(ETH_P_8021Q)
                .ext(IPPROTO_HOPOPTS, 0)
                .ext(IPPROTO_ROUTING, 2)
                .tcp(3),
            TENANT_A,
            &hop,
        ),
        redirect_via(
            &format!("v4 options in {outer}"),
            Packet::v4(UE_V4, B_V4).ip_options(20).udp(1),
            TENANT_B,
            &hop,
        ),
        redirect_via(
            &format!("60-byte padded frame in {outer}"),
            Packet::v4(UE_V4, A_V4).udp(1).pad_to(60),
            TENANT_A,
            &hop,
        ),
    ]);
    cases
}

#[test]
fn uplink_is_encapsulated_in_either_family() -> anyhow::Result<()> {
    require_root!();
    let mut edge = edge_with_next_hop(&EdgeConfig::default())?;
    for outer_v6 in [false, true] {
        edge.set_next_hop(edge_hop(outer_v6, 1500))?;
        run_cases(&edge, &encap_cases(outer_v6))?.assert_none();
    }
    Ok(())
}

/// The outer header's fields, read from what the program wrote (not from the builder the
/// tables compare with): Ethernet toward the super node, then IPv4 (version 4, IHL 5, the
/// inner TOS, total length, identification 0, DF, TTL 64, protocol 4 or 41, a correct
/// checksum) or IPv6 (the inner traffic class, flow label 0, payload length, next header,
/// hop limit 64), from the edge's address to the super node's.
#[test]
fn the_outer_header_is_as_specified() -> anyhow::Result<()> {
    require_root!();
    let mut edge = edge_with_next_hop(&EdgeConfig::default())?;
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    for outer_v6 in [false, true] {
        edge.set_next_hop(edge_hop(outer_v6, 1500))?;
        let (local, remote) = tunnel_ends(outer_v6);
        let addr = |a: &str| match a.parse().unwrap() {
            std::net::IpAddr::V4(a) => a.octets().to_vec(),
            std::net::IpAddr::V6(a) => a.octets().to_vec(),
        };
        for (inner_v6, tos, p) in [
            (
                false,
                0xb9,
                Packet::v4(UE_V4, A_V4).vlan(ETH_P_8021Q).udp(33),
            ),
            (true, 0x4b, Packet::v6(UE_V6, A_V6).udp(33)),
        ] {
            let p = p.tos(tos);
            let proto = if inner_v6 { IPPROTO_IPV6 } else { IPPROTO_IPIP };
            let inner_len = p.l3_len() as usize;
            let run = edge.run_packet(&p.build())?;
            assert_eq!(run.action, XdpAction::Redirect);
            let f = &run.packet;
            let what = format!("{} in {}", family(inner_v6), family(outer_v6));
            assert_eq!(&f[0..6], &SUPER_MAC.0, "{what}");
            assert_eq!(&f[6..12], &EDGE_OUT_MAC.0, "{what}");
            let h = &f[14..];
            if outer_v6 {
                assert_eq!(be16(f, 12), ETH_P_IPV6, "{what}");
                let tc = (h[0] & 0x0f) << 4 | h[1] >> 4;
                let flow = u32::from_be_bytes([0, h[1] & 0x0f, h[2], h[3]]);
                assert_eq!(
                    (h[0] >> 4, tc, flow),
                    (6, tos, 0),
                    "{what}: version, class, flow"
                );
                assert_eq!(usize::from(be16(h, 4)), inner_len, "{what}: payload length");
                assert_eq!((h[6], h[7]), (proto, 64), "{what}: next header, hop limit");
                assert_eq!(
                    (&h[8..24], &h[24..40]),
                    (&addr(local)[..], &addr(remote)[..])
                );
            } else {
                assert_eq!(be16(f, 12), ETH_P_IP, "{what}");
                assert_eq!((h[0], h[1]), (0x45, tos), "{what}: version, IHL, TOS");
                assert_eq!(
                    usize::from(be16(h, 2)),
                    inner_len + 20,
                    "{what}: total length"
                );
                assert_eq!((be16(h, 4), be16(h, 6)), (0, 0x4000), "{what}: id, DF");
                assert_eq!((h[8], h[9]), (64, proto), "{what}: TTL, protocol");
                assert_eq!(internet_checksum(&h[..20]), 0, "{what}: header checksum");
                assert_eq!(
                    (&h[12..16], &h[16..20]),
                    (&addr(local)[..], &addr(remote)[..])
                );
            }
        }
    }
    Ok(())
}

/// Tenant downlink from both fixture super nodes (either outer family), both inner
/// families, 0 to 2 VLAN tags, and rarer inner and outer shapes.
fn decap_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for outer_v6 in [false, true] {
        let (edge, super_node) = tunnel_ends(outer_v6);
        let outer = family(outer_v6);
        for tags in 0..=2 {
            let inner = [
                (
                    "v4 udp",
                    Packet::v4(A_V4, UE_V4).tos(0x10).udp(64),
                    TENANT_A,
                ),
                ("v4 tcp", Packet::v4(B_V4, UE_V4).tcp(1), TENANT_B),
                ("v6 udp", Packet::v6(B_V6, UE_V6).udp(9), TENANT_B),
                ("v6 icmpv6", Packet::v6(A_V6, UE_V6).icmp(8), TENANT_A),
            ];
            for (name, p, tenant) in inner {
                let name = format!("{name} in {outer} from {super_node}, {tags} tags");
                cases.push(decap(&name, tagged(p, tags), super_node, edge, tenant));
            }
        }
    }
    let v4 = |name: &str, p: Packet, tenant| decap(name, p, SUPER_ADDR_V4, EDGE_ADDR_V4, tenant);
    cases.extend([
        v4(
            "inner non-first fragment",
            Packet::v4(A_V4, UE_V4)
                .fragment(100, false)
                .udp(30)
                .without_l4_header(),
            TENANT_A,
        ),
        v4(
            "inner v6 fragment and destination options",
            Packet::v6(A_V6, UE_V6)
                .fragment(0, true)
                .ext(IPPROTO_DSTOPTS, 0)
                .udp(30),
            TENANT_A,
        ),
        v4(
            "minimal inner packet, Ethernet padding behind the tunnel",
            Packet::v4(A_V4, UE_V4).raw_l4(59, vec![]).pad_to(60),
            TENANT_A,
        ),
        v4(
            "9000-byte jumbo frame (multi-buffer)",
            Packet::v6(A_V6, UE_V6).udp(0).frame_len(9000 - 20),
            TENANT_A,
        ),
        pass_uncounted(
            "non-tenant packet in a known super's tunnel",
            Packet::v4(UE_V4, "203.0.113.1")
                .udp(5)
                .tunnel(SUPER_ADDR_V4, EDGE_ADDR_V4)
                .build(),
            non_tenant,
        ),
        pass_uncounted(
            "tenant packet in the tunnel of no known super",
            Packet::v4(A_V4, UE_V4)
                .udp(5)
                .tunnel("198.51.100.200", EDGE_ADDR_V4)
                .build(),
            unknown_peer,
        ),
    ]);
    // Outer headers with options or extension headers: the whole outer header goes.
    let inner = Packet::v6(A_V6, UE_V6).vlan(ETH_P_8021Q).udp(11);
    for (name, tunnelled) in [
        (
            "outer IPv4 options",
            inner
                .clone()
                .tunnel(SUPER_ADDR_V4, EDGE_ADDR_V4)
                .outer_options(4),
        ),
        (
            "outer IPv6 destination options (ip6tnl's encapsulation limit)",
            inner
                .clone()
                .tunnel(SUPER_ADDR_V6, EDGE_ADDR_V6)
                .outer_ext(IPPROTO_DSTOPTS, 0),
        ),
    ] {
        let mut case = decap(name, inner.clone(), SUPER_ADDR_V4, EDGE_ADDR_V4, TENANT_A);
        case.frame = tunnelled.build();
        cases.push(case);
    }
    cases
}

#[test]
fn downlink_from_known_supers_is_decapsulated() -> anyhow::Result<()> {
    require_root!();
    let edge = edge_with_next_hop(&EdgeConfig::default())?;
    run_cases(&edge, &decap_cases())?.assert_none();
    Ok(())
}

#[test]
fn set_supers_replaces_the_set() -> anyhow::Result<()> {
    require_root!();
    let mut edge = edge_with_next_hop(&EdgeConfig::default())?;
    let inner = Packet::v4(A_V4, UE_V4).udp(5);
    edge.set_supers(&["198.51.100.200".parse()?])?;
    let cases = [
        decap(
            "the new super node",
            inner.clone(),
            "198.51.100.200",
            EDGE_ADDR_V4,
            TENANT_A,
        ),
        pass_uncounted(
            "a super node no longer in the set",
            inner.clone().tunnel(SUPER_ADDR_V4, EDGE_ADDR_V4).build(),
            unknown_peer,
        ),
    ];
    run_cases(&edge, &cases)?.assert_none();
    edge.set_supers(&[])?;
    let cases = [pass_uncounted(
        "no super nodes at all",
        inner.tunnel("198.51.100.200", EDGE_ADDR_V4).build(),
        unknown_peer,
    )];
    run_cases(&edge, &cases)?.assert_none();
    Ok(())
}
