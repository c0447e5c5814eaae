//! Malformed, truncated and foreign tunnel packets on both sides of the tunnel: every one
//! is passed untouched and never metered. The edge sees downlink from a known super node,
//! the super node uplink from a known edge, so a parser that let one through would show up
//! as a counter delta. Outer headers are cut at every byte, inner packets cut at every byte
//! under a consistent outer header, lengths disagree, versions and header lengths are
//! wrong, the outer packet is a fragment, or the outer source is no known peer.

mod common;

use std::collections::BTreeSet;

use common::tunnel::{edge_node, tunnel_ends, way_back};
use common::{edge_case, super_case, *};
use hsn_ebpf::{EdgeConfig, EdgeDatapath, SuperConfig, SuperDatapath};
use hsn_testkit::packet::*;

/// Why a frame is passed unmetered.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    ParseError,
    /// Not a tunnel packet whose inner packet can be read (an outer fragment), and the
    /// outer addresses are no tenant's.
    NonTenant,
    /// A tunnel packet from no known peer (UNKNOWN_PEER on the edge, UNKNOWN_EDGE on the
    /// super node).
    Unknown,
}

/// The side of the tunnel a frame is sent to.
#[derive(Clone, Copy, Debug)]
enum Side {
    Edge,
    Super,
}

impl Side {
    /// (outer source, outer destination) of a tunnel packet this side takes.
    fn ends(self, outer_v6: bool) -> (&'static str, &'static str) {
        let (edge, super_node) = tunnel_ends(outer_v6);
        match self {
            Side::Edge => (super_node, edge),
            Side::Super => (edge, super_node),
        }
    }

    /// A tenant packet of the direction this side takes out of the tunnel.
    fn inner(self, v6: bool) -> Packet {
        match (self, v6) {
            (Side::Edge, false) => Packet::v4(A_V4, UE_V4),
            (Side::Edge, true) => Packet::v6(A_V6, UE_V6),
            (Side::Super, false) => Packet::v4(UE_V4, A_V4),
            (Side::Super, true) => Packet::v6(UE_V6, A_V6),
        }
    }

    /// `inner` in this side's tunnel of family `outer_v6`.
    fn tunnel(self, inner: Packet, outer_v6: bool) -> Packet {
        let (src, dst) = self.ends(outer_v6);
        inner.tunnel(src, dst)
    }
}

type Row = (String, Vec<u8>, Outcome);

fn edge_cases(rows: &[Row]) -> Vec<edge_case::Case> {
    rows.iter()
        .map(|(name, frame, outcome)| {
            let reason: fn(&mut hsn_ebpf::EdgeStats) = match outcome {
                Outcome::ParseError => edge_case::parse_error,
                Outcome::NonTenant => edge_case::non_tenant,
                Outcome::Unknown => edge_case::unknown_peer,
            };
            edge_case::pass_uncounted(name, frame.clone(), reason)
        })
        .collect()
}

fn super_cases(rows: &[Row]) -> Vec<super_case::Case> {
    rows.iter()
        .map(|(name, frame, outcome)| {
            let reason: fn(&mut hsn_ebpf::SuperStats) = match outcome {
                Outcome::ParseError => super_case::parse_error,
                Outcome::NonTenant => super_case::non_tenant,
                Outcome::Unknown => super_case::unknown_edge,
            };
            super_case::uncounted(name, frame.clone(), reason)
        })
        .collect()
}

fn edge() -> anyhow::Result<EdgeDatapath> {
    edge_case::edge_with_next_hop(&EdgeConfig::default())
}

fn super_node() -> anyhow::Result<SuperDatapath> {
    super_case::super_with(
        &SuperConfig::default(),
        &[
            edge_node(EDGE_ADDR_V4, Some(way_back(false, 1500))),
            edge_node(EDGE_ADDR_V6, Some(way_back(true, 1500))),
        ],
    )
}

/// Runs `rows(side)` on a fresh edge and a fresh super node.
fn run_both(rows: fn(Side) -> Vec<Row>) -> anyhow::Result<()> {
    let edge = edge()?;
    edge_case::run_cases(&edge, &edge_cases(&rows(Side::Edge)))?.assert_none();
    let dp = super_node()?;
    super_case::run_cases(&dp, &super_cases(&rows(Side::Super)))?.assert_none();
    Ok(())
}

/// Well-formed tunnel packets of this side, each cut below.
fn bases(side: Side) -> Vec<(&'static str, Packet)> {
    vec![
        (
            "v4 in v4, 802.1Q, inner options + TCP options",
            side.tunnel(
                side.inner(false)
                    .vlan(ETH_P_8021Q)
                    .ip_options(8)
                    .tcp_doff(7, 4),
                false,
            ),
        ),
        (
            "v6 in v6, QinQ, inner hop-by-hop + fragment + UDP",
            side.tunnel(
                side.inner(true)
                    .vlan(ETH_P_8021AD)
                    .vlan(ETH_P_8021Q)
                    .ext(IPPROTO_HOPOPTS, 0)
                    .fragment(0, true)
                    .udp(4),
                true,
            ),
        ),
        (
            "v6 in v4 with outer options, ICMPv6",
            side.tunnel(side.inner(true).icmp(4), false)
                .outer_options(8),
        ),
        (
            "v4 in v6 with outer destination options, UDP",
            side.tunnel(side.inner(false).udp(4), true)
                .outer_ext(IPPROTO_DSTOPTS, 0),
        ),
    ]
}

/// Every base frame cut at every byte from the end of the Ethernet header on: the outer
/// length then always claims more than the frame holds.
fn truncations(side: Side) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut crossed = BTreeSet::new();
    for (name, packet) in bases(side) {
        let (frame, layers) = packet.build_layers();
        // Below 14 bytes the kernel refuses the run itself (see `edge_malformed`).
        for cut in 14..frame.len() {
            let layer = layers[cut];
            crossed.insert(format!("{layer:?}"));
            let case = format!(
                "{side:?} {name}: cut at {cut}/{} (in {layer:?})",
                frame.len()
            );
            rows.push((case, frame[..cut].to_vec(), Outcome::ParseError));
        }
    }
    for layer in [
        "Vlan",
        "Tunnel",
        "IpHeader",
        "IpOptions",
        "Ipv6Ext",
        "L4Header",
    ] {
        assert!(crossed.contains(layer), "no truncation inside {layer}");
    }
    rows
}

#[test]
fn a_tunnel_frame_cut_at_any_byte_is_a_parse_error() -> anyhow::Result<()> {
    require_root!();
    run_both(truncations)
}

/// Every base's inner packet carried only up to each of its bytes, the outer length
/// consistent with what is carried: the inner packet claims more than the outer payload.
fn inner_cuts(side: Side) -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, packet) in bases(side) {
        let inner_len = packet.l3_len() as usize;
        for cut in 0..inner_len {
            let p = packet.clone().inner_cut(cut);
            let case = format!("{side:?} {name}: inner cut at {cut}/{inner_len}");
            rows.push((case, p.build(), Outcome::ParseError));
        }
    }
    rows
}

#[test]
fn an_inner_packet_cut_at_any_byte_is_a_parse_error() -> anyhow::Result<()> {
    require_root!();
    run_both(inner_cuts)
}

/// `p`'s frame with bytes overwritten at offsets relative to the outer IP header.
fn poke(p: &Packet, edits: &[(usize, &[u8])]) -> Vec<u8> {
    let mut frame = p.build();
    for (at, value) in edits {
        let at = p.l3_offset() + at;
        frame[at..at + value.len()].copy_from_slice(value);
    }
    frame
}

/// Outer headers that disagree with the frame or with the inner packet.
fn bogus_outer(side: Side) -> Vec<Row> {
    use Outcome::ParseError;
    let v4 = || side.tunnel(side.inner(false).tcp(8), false); // outer 20 + 48
    let v6 = || side.tunnel(side.inner(true).udp(8), true); // outer 40 + 56
    let outer_total = 20 + v4().l3_len() as i32;
    let row = |name: &str, frame: Vec<u8>| (format!("{side:?} {name}"), frame, ParseError);
    vec![
        row(
            "v4 outer length beyond the frame",
            v4().outer_len_delta(1).build(),
        ),
        row(
            "v4 outer length 65535",
            v4().outer_len_delta(65535 - outer_total).build(),
        ),
        row(
            "v4 outer length short of the inner packet",
            v4().outer_len_delta(-1).build(),
        ),
        row(
            "v4 outer length below IHL",
            v4().outer_len_delta(19 - outer_total).build(),
        ),
        row(
            "v4 outer length = IHL (empty payload)",
            v4().outer_len_delta(-(outer_total - 20)).build(),
        ),
        row(
            "v6 outer length beyond the frame",
            v6().outer_len_delta(1).build(),
        ),
        row(
            "v6 outer length short of the inner packet",
            v6().outer_len_delta(-1).build(),
        ),
        row(
            "v6 outer length 0 (empty payload)",
            v6().outer_len_delta(-56).build(),
        ),
        row(
            "v4 inner packet shorter than the outer payload",
            v4().inner_trailer(1).build(),
        ),
        row(
            "v6 inner packet shorter than the outer payload",
            v6().inner_trailer(8).build(),
        ),
        row("v4 outer version 6", v4().outer_version(6).build()),
        row("v4 outer version 0", v4().outer_version(0).build()),
        row("v6 outer version 4", v6().outer_version(4).build()),
        row("v4 outer IHL 4", v4().outer_ihl(4).build()),
        row("v4 outer IHL 0", v4().outer_ihl(0).build()),
        row(
            "v4 outer IHL 6 (into the inner header)",
            v4().outer_ihl(6).build(),
        ),
        row(
            "v4 outer IHL 15 (into the inner payload)",
            v4().outer_ihl(15).build(),
        ),
        row(
            "v4 outer protocol 41 around IPv4",
            poke(&v4(), &[(9, &[IPPROTO_IPV6])]),
        ),
        row(
            "v6 outer next header 4 around IPv6",
            poke(&v6(), &[(6, &[IPPROTO_IPIP])]),
        ),
        row("inner IPv4 with IHL 4", poke(&v4(), &[(20, &[0x44])])),
        row(
            "inner TCP doff 15 beyond the segment",
            poke(&v4(), &[(20 + 20 + 12, &[0xf0])]),
        ),
        row(
            "three VLAN tags on the outer frame",
            v4().vlan(ETH_P_8021Q)
                .vlan(ETH_P_8021Q)
                .vlan(ETH_P_8021Q)
                .build(),
        ),
    ]
}

#[test]
fn inconsistent_outer_headers_are_parse_errors() -> anyhow::Result<()> {
    require_root!();
    run_both(bogus_outer)
}

/// Outer fragments: the programs do not reassemble, and a fragment of an outer packet is
/// no tunnel packet (its inner packet is whole only after reassembly): an ordinary packet,
/// of no tenant, whether it is a later fragment or the first.
fn outer_fragments(side: Side) -> Vec<Row> {
    let inner = |v6| side.inner(v6).udp(200);
    let row = |name: &str, p: Packet, outcome| (format!("{side:?} {name}"), p.build(), outcome);
    vec![
        row(
            "v4 outer later fragment, more to come",
            side.tunnel(inner(false), false).outer_fragment(37, true),
            Outcome::NonTenant,
        ),
        row(
            "v4 outer last fragment",
            side.tunnel(inner(true), false).outer_fragment(37, false),
            Outcome::NonTenant,
        ),
        row(
            "v6 outer later fragment",
            side.tunnel(inner(false), true).outer_fragment(37, false),
            Outcome::NonTenant,
        ),
        row(
            "v4 outer first fragment",
            side.tunnel(inner(false), false)
                .outer_fragment(0, true)
                .inner_cut(144),
            Outcome::NonTenant,
        ),
        row(
            "v6 outer first fragment",
            side.tunnel(inner(true), true)
                .outer_fragment(0, true)
                .inner_cut(144),
            Outcome::NonTenant,
        ),
    ]
}

#[test]
fn outer_fragments_are_never_metered() -> anyhow::Result<()> {
    require_root!();
    run_both(outer_fragments)
}

/// Tunnel packets whose outer source is no known peer of this side: passed untouched,
/// metered for no one, however well-formed (or not) the inner packet.
fn foreign(side: Side) -> Vec<Row> {
    let (peer_v4, peer_v6) = (side.ends(false).0, side.ends(true).0);
    let (me_v4, me_v6) = (side.ends(false).1, side.ends(true).1);
    let row = |name: &str, p: Packet| (format!("{side:?} {name}"), p.build(), Outcome::Unknown);
    let inner = |v6| side.inner(v6).udp(10);
    vec![
        row(
            "v4 from an unknown address",
            inner(false).tunnel("203.0.113.9", me_v4),
        ),
        row(
            "v6 in v6 from an unknown address",
            inner(true).tunnel("2001:db8:ff::9", me_v6),
        ),
        row(
            "from this node's own address",
            inner(false).tunnel(me_v4, peer_v4),
        ),
        row(
            "inner packet cut, unknown address",
            inner(false).tunnel("203.0.113.9", me_v4).inner_cut(10),
        ),
        // A UE's own IP-in-IP to a tenant address (or a tenant's to a UE) is a tunnel of
        // no known peer as well: passed to the kernel, metered for no one.
        row(
            "a UE's IP in IP to a tenant address",
            inner(false).tunnel(UE_V4, A_V4),
        ),
        row(
            "a tenant's IP in IP to a UE",
            inner(true).tunnel(A_V6, UE_V6),
        ),
        row(
            "802.1Q, from an address next to the v6 peer's",
            inner(false)
                .vlan(ETH_P_8021Q)
                .tunnel(&peer_v6.replace("::", ":ff::"), me_v6),
        ),
    ]
}

#[test]
fn tunnels_of_unknown_peers_are_metered_for_no_one() -> anyhow::Result<()> {
    require_root!();
    run_both(foreign)
}

/// Frames that must be passed untouched and metered for no one, whatever the stat that
/// says why: (name, frame) per side.
fn assert_unmetered(rows: fn(Side) -> Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
    let mut failures = Mismatches::default();
    let edge = edge()?;
    for (name, frame) in rows(Side::Edge) {
        let (counters, stats) = (edge.counters()?, edge.stats()?);
        let run = edge.run_packet(&frame)?;
        let metered = edge_deltas(&counters, &edge.counters()?);
        let delta = edge.stats()?.since(&stats);
        failures.check(&name, "verdict", &run.action, &hsn_ebpf::XdpAction::Pass);
        failures.check(&name, "metered", &metered.len(), &0);
        failures.check(&name, "decapsulated", &delta.decapsulated, &0);
        failures.check_frame(&name, &run.packet, &frame);
    }
    let dp = super_node()?;
    for (name, frame) in rows(Side::Super) {
        let (counters, stats) = (dp.counters()?, dp.stats()?);
        let run = dp.run_packet(&frame)?;
        let metered = super_deltas(&counters, &dp.counters()?);
        let delta = dp.stats()?.since(&stats);
        failures.check(&name, "verdict", &run.action, &hsn_ebpf::XdpAction::Pass);
        failures.check(&name, "metered", &metered.len(), &0);
        failures.check(&name, "decapsulated", &delta.decapsulated, &0);
        failures.check_frame(&name, &run.packet, &frame);
    }
    failures.assert_none();
    Ok(())
}

/// An
/// outer *first* fragment (IPv4: MF set at offset 0; IPv6: a fragment header at offset 0
/// with M set) whose payload holds a whole inner packet: the reassembled outer payload
/// would be longer than that inner packet, so the inner packet is not whole and is never
/// metered (`hsn_tunnel_proto` refuses outer fragments). (An IPv6 atomic fragment, offset 0
/// without M, is a whole packet, RFC 6946: not here.)
#[test]
fn outer_first_fragments_holding_a_whole_inner_packet_are_not_metered() -> anyhow::Result<()> {
    require_root!();
    assert_unmetered(|side| {
        [false, true]
            .into_iter()
            .map(|outer_v6| {
                let p = side
                    .tunnel(side.inner(false).udp(20), outer_v6)
                    .outer_fragment(0, true);
                let family = if outer_v6 { "v6" } else { "v4" };
                let name = format!("{side:?} {family} outer first fragment");
                (name, p.build())
            })
            .collect()
    })
}

/// An IPv6 outer header whose source is the IPv4-mapped form of a known peer's IPv4
/// address (::ffff:a.b.c.d) is no peer's, though the peer maps key IPv4 addresses in that
/// form: Linux drops IPv6 packets with a mapped source (ip6_rcv_core), and so does the
/// tunnel check.
#[test]
fn a_v4_mapped_ipv6_outer_source_is_no_peer() -> anyhow::Result<()> {
    require_root!();
    assert_unmetered(|side| {
        let (peer, me) = (side.ends(false).0, side.ends(true).1);
        let p = side
            .inner(false)
            .udp(3)
            .tunnel(&format!("::ffff:{peer}"), me);
        vec![(format!("{side:?} v6 from ::ffff:{peer}"), p.build())]
    })
}
