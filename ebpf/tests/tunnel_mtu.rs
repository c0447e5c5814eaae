//! What does not fit the tunnel: no packet is ever fragmented. Tenant uplink whose inner
//! length plus the outer header exceeds the next hop's MTU is dropped unmetered (TOO_BIG),
//! downlink the same on the super node's way back; exactly fitting is forwarded, jumbo
//! frames (multi-buffer) included. TCP never sends such packets: the edge lowers the MSS of
//! every SYN it tunnels and of every SYN-ACK it takes out of a tunnel (MSS_CLAMPED), fixing
//! the TCP checksum, which these fixtures recompute from scratch.

mod common;

use common::edge_case::{
    Case, decap, edge_with_next_hop, mss_clamped, pass_counted, redirect_via, run_cases, too_big,
};
use common::tunnel::{decapsulated, edge_hop, edge_node, tcp_checksum_ok, way_back};
use common::{super_case, *};
use hsn_core::Direction;
use hsn_ebpf::{EdgeConfig, NextHop, SuperConfig};
use hsn_testkit::packet::*;

/// `p` with a payload making its (inner) IP packet exactly `len` bytes.
fn sized(p: Packet, len: usize) -> Packet {
    let l2 = p.l3_offset();
    p.frame_len(l2 + len)
}

/// Tenant uplink of `len` IP bytes of each family through `hop`: forwarded when it fits.
fn fit_cases(hop: &NextHop, len: usize, fits: bool) -> Vec<Case> {
    let what = format!("{len} bytes through MTU {}", hop.mtu);
    [
        ("v4", sized(Packet::v4(UE_V4, A_V4).udp(0), len), TENANT_A),
        (
            "v6 QinQ",
            sized(
                Packet::v6(UE_V6, B_V6)
                    .vlan(ETH_P_8021AD)
                    .vlan(ETH_P_8021Q)
                    .tcp(0),
                len,
            ),
            TENANT_B,
        ),
    ]
    .into_iter()
    .map(|(family, p, tenant)| {
        let name = format!("{family} {what}");
        if fits {
            redirect_via(&name, p, tenant, hop)
        } else {
            too_big(&name, p.build())
        }
    })
    .collect()
}

#[test]
fn uplink_too_big_for_the_tunnel_is_dropped_unmetered() -> anyhow::Result<()> {
    require_root!();
    let mut edge = edge_with_next_hop(&EdgeConfig::default())?;
    // (outer family, MTU, largest inner packet that fits); 1320 is the smallest MTU a
    // NextHop accepts, 9000 needs multi-buffer frames.
    for (outer_v6, mtu, fits) in [
        (false, 1320, 1300),
        (true, 1320, 1280),
        (false, 1500, 1480),
        (true, 1500, 1460),
        (false, 9000, 8980),
        (true, 9000, 8960),
    ] {
        let hop = edge_hop(outer_v6, mtu);
        edge.set_next_hop(hop)?;
        let mut cases = fit_cases(&hop, fits, true);
        cases.extend(fit_cases(&hop, fits + 1, false));
        run_cases(&edge, &cases)?.assert_none();
    }
    // Downlink is not the edge's to tunnel: a big one is metered and passed.
    edge.set_next_hop(edge_hop(false, 1320))?;
    let cases = [pass_counted(
        "1500-byte plain downlink",
        sized(Packet::v4(A_V4, UE_V4).udp(0), 1500),
        TENANT_A,
        Direction::Downlink,
        |_| {},
    )];
    run_cases(&edge, &cases)?.assert_none();
    Ok(())
}

#[test]
fn downlink_too_big_for_the_way_back_is_dropped_unmetered() -> anyhow::Result<()> {
    require_root!();
    let small = way_back(false, 1320);
    let jumbo = way_back(true, 9000);
    let dp = super_case::super_with(
        &SuperConfig::default(),
        &[
            edge_node(EDGE_ADDR_V4, Some(small)),
            edge_node(EDGE_ADDR_V6, Some(jumbo)),
        ],
    )?;
    // Learn UE_V4 behind the IPv4 edge, UE_V6 behind the IPv6 one.
    dp.run_packet(
        &Packet::v4(UE_V4, A_V4)
            .udp(1)
            .tunnel(EDGE_ADDR_V4, SUPER_ADDR_V4)
            .build(),
    )?;
    dp.run_packet(
        &Packet::v6(UE_V6, A_V6)
            .udp(1)
            .tunnel(EDGE_ADDR_V6, SUPER_ADDR_V6)
            .build(),
    )?;
    let v4 = |len| sized(Packet::v4(A_V4, UE_V4).vlan(ETH_P_8021Q).udp(0), len);
    let v6 = |len| sized(Packet::v6(A_V6, UE_V6).tcp(0), len);
    let cases = [
        super_case::encap("1300 bytes through MTU 1320", v4(1300), TENANT_A, &small),
        super_case::too_big("1301 bytes through MTU 1320", v4(1301).build()),
        super_case::encap(
            "8960 bytes through MTU 9000 (v6)",
            v6(8960),
            TENANT_A,
            &jumbo,
        ),
        super_case::too_big("8961 bytes through MTU 9000 (v6)", v6(8961).build()),
    ];
    super_case::run_cases(&dp, &cases)?.assert_none();
    Ok(())
}

/// A Linux-like SYN option list with the MSS last: NOP NOP timestamps, SACK permitted,
/// NOP window scale, MSS.
fn options_mss_last(mss: u16) -> Vec<u8> {
    let mut o = vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 4, 2, 1, 3, 3, 7];
    o.extend_from_slice(&mss_option(mss));
    o
}

/// The uplink segment `build(mss)` through `hop`: expected to leave as `build(want)`
/// checksummed from scratch (the program fixes the checksum incrementally).
fn syn_case(name: &str, build: &dyn Fn(u16) -> Packet, mss: u16, want: u16, hop: &NextHop) -> Case {
    let mut case = redirect_via(name, build(want).checksums(), TENANT_A, hop);
    case.frame = build(mss).checksums().build();
    if want != mss {
        mss_clamped(&mut case.stats);
    }
    case
}

/// Uplink SYNs through `hop`, whose MSS limit is `v4_mss` / `v6_mss` by inner family.
fn uplink_syn_cases(hop: &NextHop, v4_mss: u16, v6_mss: u16) -> Vec<Case> {
    type Build = fn(u16) -> Packet;
    let table: [(&str, Build, u16); 9] = [
        ("v4 SYN", |m| Packet::v4(UE_V4, A_V4).tcp_syn(m), 1460),
        ("v6 SYN", |m| Packet::v6(UE_V6, A_V6).tcp_syn(m), 1460),
        (
            "802.1Q v4 SYN",
            |m| Packet::v4(UE_V4, A_V4).vlan(ETH_P_8021Q).tcp_syn(m),
            9000,
        ),
        (
            "v6 SYN, MSS last",
            |m| {
                let p = Packet::v6(UE_V6, A_V6).tcp_options(&options_mss_last(m));
                p.tcp_flags(TCP_SYN)
            },
            1460,
        ),
        (
            "v4 SYN-ACK from a UE",
            |m| {
                Packet::v4(UE_V4, A_V4)
                    .tcp_syn(m)
                    .tcp_flags(TCP_SYN | TCP_ACK)
            },
            1460,
        ),
        (
            "v4 SYN with IP options",
            |m| Packet::v4(UE_V4, A_V4).ip_options(8).tcp_syn(m),
            1460,
        ),
        (
            "v6 SYN behind hop-by-hop",
            |m| Packet::v6(UE_V6, A_V6).ext(IPPROTO_HOPOPTS, 0).tcp_syn(m),
            1460,
        ),
        (
            "v4 SYN at the limit",
            |m| Packet::v4(UE_V4, A_V4).tcp_syn(m),
            v4_mss,
        ),
        (
            "v6 SYN below the limit",
            |m| Packet::v6(UE_V6, A_V6).tcp_syn(m),
            536,
        ),
    ];
    table
        .into_iter()
        .map(|(name, build, mss)| {
            // The inner family is the name's first word.
            let limit = if name.starts_with("v6") {
                v6_mss
            } else {
                v4_mss
            };
            let name = format!("{name} {mss}, MTU {}", hop.mtu);
            syn_case(&name, &build, mss, mss.min(limit), hop)
        })
        .collect()
}

#[test]
fn uplink_syn_mss_is_clamped_to_the_tunnel() -> anyhow::Result<()> {
    require_root!();
    let mut edge = edge_with_next_hop(&EdgeConfig::default())?;
    // MTU - outer header - inner IP header - 20 (TCP).
    for (hop, v4_mss, v6_mss) in [
        (edge_hop(false, 1500), 1440, 1420),
        (edge_hop(true, 1500), 1420, 1400),
        (edge_hop(false, 1320), 1260, 1240),
    ] {
        edge.set_next_hop(hop)?;
        run_cases(&edge, &uplink_syn_cases(&hop, v4_mss, v6_mss))?.assert_none();
    }
    Ok(())
}

/// The clamped segment's checksum, checked by reading what the program wrote (the tables
/// compare with a segment checksummed from scratch; this says the same without the
/// builder).
#[test]
fn a_clamped_syn_keeps_a_valid_checksum() -> anyhow::Result<()> {
    require_root!();
    let edge = edge_with_next_hop(&EdgeConfig::default())?;
    for (p, mss) in [
        (Packet::v4(UE_V4, A_V4).tcp_syn(1460), 1440u16),
        (Packet::v6(UE_V6, A_V6).tcp_syn(65535), 1420),
        (Packet::v4(UE_V4, B_V4).tcp_syn(1441), 1440),
    ]
    .into_iter()
    // Many announced MSS values, so that the checksums before and after take many values.
    .chain(
        (1441..=65535)
            .step_by(211)
            .map(|m| (Packet::v4(UE_V4, A_V4).tcp_syn(m), 1440)),
    )
    .chain(
        (1421..=65535)
            .step_by(307)
            .map(|m| (Packet::v6(UE_V6, A_V6).tcp_syn(m), 1420)),
    ) {
        let run = edge.run_packet(&p.clone().checksums().build())?;
        let inner = &run.packet[14 + 20..];
        let tcp = &inner[if inner[0] >> 4 == 4 { 20 } else { 40 }..];
        assert_eq!(&tcp[20..24], &mss_option(mss));
        assert!(tcp_checksum_ok(inner), "{p:?}: checksum no longer valid");
    }
    Ok(())
}

/// SYNs the edge leaves as they are: not a SYN, a malformed option list, downlink that did
/// not come through a tunnel.
#[test]
fn other_segments_are_not_clamped() -> anyhow::Result<()> {
    require_root!();
    let edge = edge_with_next_hop(&EdgeConfig::default())?;
    let hop = edge_hop(false, 1500);
    let up = |o: &[u8], flags| {
        Packet::v4(UE_V4, A_V4)
            .tcp_options(o)
            .tcp_flags(flags)
            .checksums()
    };
    let cases = [
        redirect_via(
            "ACK carrying an MSS option",
            up(&mss_option(1460), TCP_ACK),
            TENANT_A,
            &hop,
        ),
        redirect_via(
            "MSS option of length 3",
            up(&[2, 3, 5, 0xb4], TCP_SYN),
            TENANT_A,
            &hop,
        ),
        redirect_via(
            "option of length 0 before the MSS",
            up(&[3, 0, 1, 1, 2, 4, 5, 0xb4], TCP_SYN),
            TENANT_A,
            &hop,
        ),
        redirect_via(
            "end of options before the MSS",
            up(&[0, 0, 0, 0, 2, 4, 5, 0xb4], TCP_SYN),
            TENANT_A,
            &hop,
        ),
        pass_counted(
            "plain downlink SYN-ACK",
            Packet::v4(A_V4, UE_V4)
                .tcp_syn(1460)
                .tcp_flags(TCP_SYN | TCP_ACK),
            TENANT_A,
            Direction::Downlink,
            |_| {},
        ),
    ];
    run_cases(&edge, &cases)?.assert_none();
    Ok(())
}

/// Downlink SYN-ACK `build(1460)` in the tunnel of `from`, leaving announcing `want`.
fn syn_ack_case(
    name: &str,
    inner: &dyn Fn(u16) -> Packet,
    from: &str,
    to: &str,
    want: u16,
) -> Case {
    let mut case = decap(name, inner(1460).checksums(), from, to, TENANT_A);
    let clamped = inner(want).checksums();
    case.out = decapsulated(&clamped, &clamped.clone().tunnel(from, to));
    if want != 1460 {
        mss_clamped(&mut case.stats);
    }
    case
}

#[test]
fn downlink_syn_ack_from_a_super_node_is_clamped() -> anyhow::Result<()> {
    require_root!();
    let mut edge = edge_with_next_hop(&EdgeConfig::default())?;
    let v4 = |m| {
        Packet::v4(A_V4, UE_V4)
            .tcp_syn(m)
            .tcp_flags(TCP_SYN | TCP_ACK)
    };
    let v6 = |m| {
        Packet::v6(A_V6, UE_V6)
            .vlan(ETH_P_8021Q)
            .tcp_syn(m)
            .tcp_flags(TCP_SYN | TCP_ACK)
    };
    // The edge's own next hop (IPv4, MTU 1500) sets the limit, whichever tunnel the
    // SYN-ACK came in.
    let cases = [
        syn_ack_case("v4 SYN-ACK in v4", &v4, SUPER_ADDR_V4, EDGE_ADDR_V4, 1440),
        syn_ack_case("v6 SYN-ACK in v4", &v6, SUPER_ADDR_V4, EDGE_ADDR_V4, 1420),
        syn_ack_case("v4 SYN-ACK in v6", &v4, SUPER_ADDR_V6, EDGE_ADDR_V6, 1440),
        syn_ack_case("v6 SYN-ACK in v6", &v6, SUPER_ADDR_V6, EDGE_ADDR_V6, 1420),
    ];
    run_cases(&edge, &cases)?.assert_none();
    // Without a next hop there is no tunnel to fit: decapsulated, left as it is.
    edge.clear_next_hop()?;
    let cases = [syn_ack_case(
        "v4 SYN-ACK, no next hop",
        &v4,
        SUPER_ADDR_V4,
        EDGE_ADDR_V4,
        1460,
    )];
    run_cases(&edge, &cases)?.assert_none();
    Ok(())
}

/// The super node leaves MSS to the edge: a SYN out of an edge's tunnel (clamped by that
/// edge already) and a SYN-ACK into one (clamped by the edge on the way out) are relayed as
/// they are.
#[test]
fn the_super_node_does_not_clamp() -> anyhow::Result<()> {
    require_root!();
    let back = way_back(false, 1500);
    let dp = super_case::super_with(
        &SuperConfig::default(),
        &[edge_node(EDGE_ADDR_V4, Some(back))],
    )?;
    let syn = Packet::v4(UE_V4, A_V4).tcp_syn(1460).checksums();
    let syn_ack = Packet::v4(A_V4, UE_V4)
        .tcp_syn(1460)
        .tcp_flags(TCP_SYN | TCP_ACK)
        .checksums();
    let cases = [
        super_case::decap(
            "SYN from the edge",
            syn,
            EDGE_ADDR_V4,
            SUPER_ADDR_V4,
            TENANT_A,
            Direction::Uplink,
        ),
        super_case::encap("SYN-ACK to the edge", syn_ack, TENANT_A, &back),
    ];
    super_case::run_cases(&dp, &cases)?.assert_none();
    Ok(())
}
