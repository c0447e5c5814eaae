//! Super-node program fixtures: tenant uplink out of its edges' tunnels, metered per (edge
//! = outer source, tenant, direction) and decapsulated, its UEs learned; tenant downlink
//! to a learned UE metered under that edge and tunnelled back along the edge's way back;
//! what is passed untouched and never metered (plain uplink, unknown UEs, edges without a
//! way back). Malformed tunnels: `tunnel_malformed`; MTU: `tunnel_mtu`.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::super_case::{
    Case, decap, encap, no_route, non_ip, non_tenant, parse_error, run_cases, super_with,
    uncounted, unknown_edge, unknown_ue,
};
use common::tunnel::{edge_node, tunnel_ends, way_back};
use common::*;
use hsn_core::Direction;
use hsn_ebpf::{EdgeNode, Error, SuperConfig, SuperDatapath};
use hsn_testkit::packet::*;

/// UEs behind the IPv6-addressed edge (those behind the IPv4 one are UE_V4 and UE_V6).
const UE2_V4: &str = "100.64.0.11";
const UE2_V6: &str = "fd00::11";
/// An edge the super node knows without a way back yet, and a UE behind it.
const LONE_EDGE: &str = "192.0.2.99";
const UE3_V4: &str = "100.64.0.12";

/// The fixture edges: IPv4 and IPv6 addressed, each with a way back of its family, and
/// one without a way back.
fn edges() -> Vec<EdgeNode> {
    vec![
        edge_node(EDGE_ADDR_V4, Some(way_back(false, 1500))),
        edge_node(EDGE_ADDR_V6, Some(way_back(true, 1500))),
        edge_node(LONE_EDGE, None),
    ]
}

/// The UEs (IPv4, IPv6) behind the edge of family `v6`.
fn ues(v6: bool) -> (&'static str, &'static str) {
    if v6 { (UE2_V4, UE2_V6) } else { (UE_V4, UE_V6) }
}

fn tagged(p: Packet, tags: usize) -> Packet {
    [ETH_P_8021AD, ETH_P_8021Q]
        .into_iter()
        .skip(2 - tags)
        .fold(p, Packet::vlan)
}

/// Every outer family x inner family x 0, 1 or 2 VLAN tags, tenant uplink of both tenants
/// and L4 kinds, each from the UEs behind that edge.
fn decap_matrix() -> Vec<Case> {
    let mut cases = Vec::new();
    for outer_v6 in [false, true] {
        let (edge, super_node) = tunnel_ends(outer_v6);
        let (ue4, ue6) = ues(outer_v6);
        for tags in 0..=2 {
            let outer = if outer_v6 { "v6" } else { "v4" };
            let v4 = tagged(Packet::v4(ue4, A_V4).tos(0x28).udp(40), tags);
            let v6 = tagged(Packet::v6(ue6, B_V6).tcp(100), tags);
            cases.push(decap(
                &format!("v4 in {outer}, {tags} tags"),
                v4,
                edge,
                super_node,
                TENANT_A,
                Direction::Uplink,
            ));
            cases.push(decap(
                &format!("v6 in {outer}, {tags} tags"),
                v6,
                edge,
                super_node,
                TENANT_B,
                Direction::Uplink,
            ));
        }
    }
    cases
}

/// Well-formed tunnel packets of rarer shapes, from the IPv4 edge.
fn decap_shapes() -> Vec<Case> {
    let up = |name: &str, p: Packet, t| {
        decap(name, p, EDGE_ADDR_V4, SUPER_ADDR_V4, t, Direction::Uplink)
    };
    vec![
        up(
            "inner IPv6 extension headers",
            Packet::v6(UE_V6, A_V6)
                .ext(IPPROTO_HOPOPTS, 0)
                .ext(IPPROTO_DSTOPTS, 1)
                .icmp(8),
            TENANT_A,
        ),
        up(
            "inner first fragment",
            Packet::v4(UE_V4, A_V4).fragment(0, true).udp(600),
            TENANT_A,
        ),
        up(
            "inner non-first fragment",
            Packet::v4(UE_V4, A_V4)
                .fragment(75, false)
                .udp(9)
                .without_l4_header(),
            TENANT_A,
        ),
        up(
            "inner IPv4 options",
            Packet::v4(UE_V4, B_V4).ip_options(12).tcp(1),
            TENANT_B,
        ),
        up(
            "9000-byte jumbo frame (multi-buffer)",
            Packet::v6(UE_V6, B_V6).tcp(0).frame_len(9000 - 20),
            TENANT_B,
        ),
        up(
            "minimal inner packet, Ethernet padding behind the tunnel",
            Packet::v4(UE_V4, A_V4).raw_l4(59, vec![]).pad_to(60),
            TENANT_A,
        ),
        // The inner packet's direction is what is counted.
        decap(
            "tenant-to-UE packet in an edge's tunnel",
            Packet::v4(A_V4, UE_V4).udp(5),
            EDGE_ADDR_V4,
            SUPER_ADDR_V4,
            TENANT_A,
            Direction::Downlink,
        ),
    ]
}

/// Outer headers with options or extension headers: the whole outer header goes.
fn outer_shapes() -> Vec<Case> {
    let inner = Packet::v4(UE_V4, A_V4).udp(20);
    let mut with_options = decap(
        "outer IPv4 options",
        inner.clone(),
        EDGE_ADDR_V4,
        SUPER_ADDR_V4,
        TENANT_A,
        Direction::Uplink,
    );
    with_options.frame = inner
        .clone()
        .tunnel(EDGE_ADDR_V4, SUPER_ADDR_V4)
        .outer_options(8)
        .build();
    // Linux's ip6tnl writes a destination options header (tunnel encapsulation limit).
    let inner = Packet::v4(UE2_V4, A_V4).udp(20);
    let mut with_ext = decap(
        "outer IPv6 destination options",
        inner.clone(),
        EDGE_ADDR_V6,
        SUPER_ADDR_V6,
        TENANT_A,
        Direction::Uplink,
    );
    with_ext.frame = inner
        .tunnel(EDGE_ADDR_V6, SUPER_ADDR_V6)
        .outer_ext(IPPROTO_DSTOPTS, 0)
        .build();
    vec![with_options, with_ext]
}

/// Each (UE, edge) the decap cases teach the program.
fn learned() -> BTreeMap<IpAddr, IpAddr> {
    [
        (UE_V4, EDGE_ADDR_V4),
        (UE_V6, EDGE_ADDR_V4),
        (UE2_V4, EDGE_ADDR_V6),
        (UE2_V6, EDGE_ADDR_V6),
    ]
    .into_iter()
    .map(|(ue, edge)| (ue.parse().unwrap(), edge.parse().unwrap()))
    .collect()
}

#[test]
fn uplink_from_known_edges_is_metered_per_edge_and_decapsulated() -> anyhow::Result<()> {
    require_root!();
    let dp = super_with(&SuperConfig::default(), &edges())?;
    run_cases(&dp, &decap_matrix())?.assert_none();
    assert_eq!(
        dp.ue_edges()?,
        learned(),
        "each UE is learned behind its edge"
    );
    run_cases(&dp, &decap_shapes())?.assert_none();
    run_cases(&dp, &outer_shapes())?.assert_none();
    assert_eq!(
        dp.ue_edges()?,
        learned(),
        "downlink in a tunnel teaches nothing"
    );
    Ok(())
}

/// Downlink to each learned UE (both families, through both edges, tagged or not), and
/// what is left to the kernel unmetered.
fn downlink_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for outer_v6 in [false, true] {
        let (ue4, ue6) = ues(outer_v6);
        let back = way_back(outer_v6, 1500);
        for tags in 0..=2 {
            let outer = if outer_v6 { "v6" } else { "v4" };
            cases.push(encap(
                &format!("v4 to a UE behind the {outer} edge, {tags} tags"),
                tagged(Packet::v4(A_V4, ue4).tos(0xb8).tcp(60), tags),
                TENANT_A,
                &back,
            ));
            cases.push(encap(
                &format!("v6 to a UE behind the {outer} edge, {tags} tags"),
                tagged(Packet::v6(B_V6, ue6).tos(0x04).udp(7), tags),
                TENANT_B,
                &back,
            ));
        }
    }
    cases.extend([
        encap(
            "downlink with Ethernet padding",
            Packet::v4(B_V4, UE_V4).udp(2).pad_to(60),
            TENANT_B,
            &way_back(false, 1500),
        ),
        uncounted(
            "downlink to a UE no edge's uplink came from",
            Packet::v4(A_V4, "100.64.0.99").udp(5).build(),
            unknown_ue,
        ),
        uncounted(
            "v6 downlink to an unknown UE",
            Packet::v6(A_V6, "fd00::99").udp(5).build(),
            unknown_ue,
        ),
        uncounted(
            "downlink to a UE behind an edge without a way back",
            Packet::v4(A_V4, UE3_V4).vlan(ETH_P_8021Q).udp(5).build(),
            no_route,
        ),
        uncounted(
            "plain tenant uplink (no edge's tunnel)",
            Packet::v4(UE_V4, A_V4).udp(5).build(),
            unknown_edge,
        ),
        uncounted(
            "plain non-tenant",
            Packet::v4(UE_V4, "203.0.113.1").udp(1).build(),
            non_tenant,
        ),
        uncounted(
            "non-tenant packet in a known edge's tunnel (stays in it)",
            Packet::v4(UE_V4, "203.0.113.1")
                .udp(1)
                .tunnel(EDGE_ADDR_V4, SUPER_ADDR_V4)
                .build(),
            non_tenant,
        ),
        uncounted("arp", arp_frame(), non_ip),
        uncounted(
            "truncated plain downlink TCP",
            Packet::v4(A_V4, UE_V4).tcp(0).build()[..14 + 20 + 10].to_vec(),
            parse_error,
        ),
    ]);
    cases
}

#[test]
fn downlink_to_learned_ues_is_tunnelled_back_to_their_edge() -> anyhow::Result<()> {
    require_root!();
    let dp = super_with(&SuperConfig::default(), &edges())?;
    // Learn the UEs: one uplink packet each, through their edges.
    run_cases(&dp, &decap_matrix()[..4])?.assert_none();
    run_cases(&dp, &decap_matrix()[6..10])?.assert_none();
    // The edge without a way back is still counted and still teaches its UE.
    let lone = decap(
        "uplink from the edge without a way back",
        Packet::v4(UE3_V4, A_V4).udp(3),
        LONE_EDGE,
        SUPER_ADDR_V4,
        TENANT_A,
        Direction::Uplink,
    );
    run_cases(&dp, &[lone])?.assert_none();
    let mut want = learned();
    want.insert(UE3_V4.parse()?, LONE_EDGE.parse()?);
    assert_eq!(dp.ue_edges()?, want);
    run_cases(&dp, &downlink_cases())?.assert_none();
    Ok(())
}

/// A UE re-homed to another edge: its downlink follows the tunnel its latest uplink came
/// through.
#[test]
fn a_ue_follows_the_edge_its_latest_uplink_came_from() -> anyhow::Result<()> {
    require_root!();
    let dp = super_with(&SuperConfig::default(), &edges())?;
    let up = Packet::v4(UE_V4, A_V4).udp(3);
    let down = Packet::v4(A_V4, UE_V4).udp(3);
    for (edge, v6) in [
        (EDGE_ADDR_V4, false),
        (EDGE_ADDR_V6, true),
        (EDGE_ADDR_V4, false),
    ] {
        let (_, super_node) = tunnel_ends(v6);
        let cases = [
            decap(
                &format!("uplink via {edge}"),
                up.clone(),
                edge,
                super_node,
                TENANT_A,
                Direction::Uplink,
            ),
            encap(
                &format!("downlink after uplink via {edge}"),
                down.clone(),
                TENANT_A,
                &way_back(v6, 1500),
            ),
        ];
        run_cases(&dp, &cases)?.assert_none();
    }
    Ok(())
}

#[test]
fn per_edge_totals_add_up() -> anyhow::Result<()> {
    require_root!();
    let dp = super_with(&SuperConfig::default(), &edges())?;
    let inner = Packet::v4(UE_V4, A_V4).udp(10);
    let a = inner.clone().tunnel(EDGE_ADDR_V4, SUPER_ADDR_V4);
    let b = inner.clone().tunnel(EDGE_ADDR_V6, SUPER_ADDR_V6);
    for _ in 0..3 {
        dp.run_packet(&a.build())?;
    }
    dp.run_packet(&b.build())?;
    let got: Vec<_> = dp
        .counters()?
        .iter()
        .map(|c| {
            (
                c.edge.to_string(),
                c.tenant,
                c.direction,
                c.packets,
                c.bytes,
            )
        })
        .collect();
    let l3 = inner.l3_len();
    assert_eq!(
        got,
        [
            (
                EDGE_ADDR_V4.to_owned(),
                TENANT_A,
                Direction::Uplink,
                3,
                3 * l3
            ),
            (EDGE_ADDR_V6.to_owned(), TENANT_A, Direction::Uplink, 1, l3),
        ],
        "the inner length, under the outer source"
    );
    Ok(())
}

#[test]
fn set_edges_replaces_the_set() -> anyhow::Result<()> {
    require_root!();
    let mut dp = super_with(&SuperConfig::default(), &edges())?;
    // UE2_V4 is learned behind the IPv6 edge.
    run_cases(&dp, &decap_matrix()[6..7])?.assert_none();
    // The IPv6 edge is gone, a new IPv4 edge appears.
    let new_edge = "192.0.2.77";
    dp.set_edges(&[
        edge_node(EDGE_ADDR_V4, Some(way_back(false, 1500))),
        edge_node(new_edge, None),
    ])?;
    let inner = Packet::v4(UE_V4, A_V4).udp(1);
    let cases = [
        decap(
            "the new edge",
            inner.clone(),
            new_edge,
            SUPER_ADDR_V4,
            TENANT_A,
            Direction::Uplink,
        ),
        uncounted(
            "the removed edge is unknown",
            inner.clone().tunnel(EDGE_ADDR_V6, SUPER_ADDR_V6).build(),
            unknown_edge,
        ),
        uncounted(
            "downlink to a UE learned behind the removed edge",
            Packet::v4(A_V4, UE2_V4).udp(1).build(),
            no_route,
        ),
        decap(
            "the edge that stays",
            inner.clone(),
            EDGE_ADDR_V4,
            SUPER_ADDR_V4,
            TENANT_A,
            Direction::Uplink,
        ),
    ];
    run_cases(&dp, &cases)?.assert_none();

    // A way back must lead to its edge.
    let err = dp
        .set_edges(&[edge_node(EDGE_ADDR_V6, Some(way_back(false, 1500)))])
        .unwrap_err();
    assert!(matches!(err, Error::EdgeRouteMismatch { .. }), "{err}");
    dp.set_edges(&[])?;
    let cases = [uncounted(
        "no edges at all",
        inner.tunnel(EDGE_ADDR_V4, SUPER_ADDR_V4).build(),
        unknown_edge,
    )];
    run_cases(&dp, &cases)?.assert_none();
    Ok(())
}

/// The datapath a test without edges starts from.
#[test]
fn without_edges_nothing_is_metered() -> anyhow::Result<()> {
    require_root!();
    let dp = SuperDatapath::load(&SuperConfig::default())?;
    let cases = [uncounted(
        "tunnel before any set_tenants or set_edges",
        Packet::v4(UE_V4, A_V4)
            .udp(1)
            .tunnel(EDGE_ADDR_V4, SUPER_ADDR_V4)
            .build(),
        unknown_edge,
    )];
    run_cases(&dp, &cases)?.assert_none();
    assert!(dp.counters()?.is_empty() && dp.ue_edges()?.is_empty());
    Ok(())
}
