//! Malformed and truncated frames: every one is passed untouched, counted as a parse error,
//! and never metered as tenant traffic. Every frame is addressed to a tenant, so a parser
//! that let one through would show up as a counter delta.

mod common;

use common::edge_case::{Case, edge_with_next_hop, parse_error, pass_uncounted, run_cases};
use common::*;
use hsn_ebpf::{EdgeConfig, Error};
use hsn_testkit::packet::*;

/// Frames that are complete and valid; each is cut at every byte below.
fn truncation_bases() -> Vec<(&'static str, Packet)> {
    vec![
        (
            "v4 802.1Q + options + TCP options",
            Packet::v4(UE_V4, A_V4)
                .vlan(ETH_P_8021Q)
                .ip_options(8)
                .tcp_doff(8, 4),
        ),
        (
            "v4 QinQ + UDP",
            Packet::v4(UE_V4, A_V4)
                .vlan(ETH_P_8021AD)
                .vlan(ETH_P_8021Q)
                .udp(4),
        ),
        ("v4 ICMP", Packet::v4(UE_V4, A_V4).icmp(4)),
        (
            "v4 first fragment UDP",
            Packet::v4(UE_V4, A_V4).fragment(0, true).udp(4),
        ),
        (
            "v6 QinQ + hop-by-hop + routing + fragment + dest opts + TCP",
            Packet::v6(UE_V6, A_V6)
                .vlan(ETH_P_8021AD)
                .vlan(ETH_P_8021Q)
                .ext(IPPROTO_HOPOPTS, 0)
                .ext(IPPROTO_ROUTING, 1)
                .fragment(0, true)
                .ext(IPPROTO_DSTOPTS, 0)
                .tcp(4),
        ),
        (
            "v6 AH + ICMPv6",
            Packet::v6(UE_V6, A_V6).ext(IPPROTO_AH, 1).icmp(4),
        ),
        ("v6 downlink UDP", Packet::v6(A_V6, UE_V6).udp(4)),
    ]
}

#[test]
fn truncation_at_every_byte_is_a_parse_error() -> anyhow::Result<()> {
    require_root!();
    let edge = edge_with_next_hop(&EdgeConfig::default())?;
    let mut cases = Vec::new();
    for (name, packet) in truncation_bases() {
        let (frame, layers) = packet.build_layers();
        // Below 14 bytes the kernel refuses the run itself (see the next test).
        for cut in 14..frame.len() {
            let layer = layers[cut];
            let case = format!("{name}: cut at {cut}/{} (in {layer:?})", frame.len());
            cases.push(pass_uncounted(&case, frame[..cut].to_vec(), parse_error));
        }
    }
    // Make sure every boundary kind was crossed by some base frame.
    let crossed: std::collections::BTreeSet<String> = cases
        .iter()
        .map(|c| {
            c.name
                .rsplit("(in ")
                .next()
                .unwrap()
                .trim_end_matches(')')
                .to_owned()
        })
        .collect();
    for layer in [
        "Vlan",
        "IpHeader",
        "IpOptions",
        "Ipv6Ext",
        "L4Header",
        "Payload",
    ] {
        assert!(crossed.contains(layer), "no truncation inside {layer}");
    }
    run_cases(&edge, &cases)?.assert_none();
    Ok(())
}

#[test]
fn frames_shorter_than_ethernet_are_refused_by_the_kernel() -> anyhow::Result<()> {
    require_root!();
    let edge = edge_with_next_hop(&EdgeConfig::default())?;
    let frame = Packet::v4(UE_V4, A_V4).udp(4).build();
    for cut in [0, 1, 13] {
        let err = edge.run_packet(&frame[..cut]).unwrap_err();
        assert!(matches!(err, Error::TestRun { .. }), "cut {cut}: {err}");
    }
    Ok(())
}

/// `p`'s frame with bytes overwritten at offsets relative to the IP header.
fn poke(p: &Packet, edits: &[(usize, &[u8])]) -> Vec<u8> {
    let mut frame = p.build();
    for (at, value) in edits {
        let at = p.l3_offset() + at;
        frame[at..at + value.len()].copy_from_slice(value);
    }
    frame
}

fn bogus_field_cases() -> Vec<Case> {
    let v4 = Packet::v4(UE_V4, A_V4).tcp(8); // IP 20 + TCP 20 + 8 = 48 bytes
    let v4_len = v4.l3_len() as u16;
    let v6 = Packet::v6(UE_V6, A_V6).udp(8); // IP 40 + UDP 8 + 8
    let v6_payload = (v6.l3_len() - 40) as u16;
    let case = |name: &str, frame: Vec<u8>| pass_uncounted(name, frame, parse_error);
    let seven_ext = (0..7)
        .fold(Packet::v6(UE_V6, A_V6), |p, _| p.ext(IPPROTO_DSTOPTS, 0))
        .udp(1);
    let long_chain = Packet::v6(UE_V6, A_V6)
        .ext(IPPROTO_HOPOPTS, 40)
        .ext(IPPROTO_DSTOPTS, 40)
        .udp(1);
    vec![
        case("v4 IHL 4 (< 5)", poke(&v4, &[(0, &[0x44])])),
        case("v4 IHL 0", poke(&v4, &[(0, &[0x40])])),
        case(
            "v4 IHL 15 beyond the 48-byte packet",
            poke(&v4, &[(0, &[0x4f])]),
        ),
        case(
            "v4 IHL 15 with total length 60",
            poke(&v4, &[(0, &[0x4f]), (2, &60u16.to_be_bytes())]),
        ),
        case(
            "v4 total length beyond the frame",
            poke(&v4, &[(2, &(v4_len + 1).to_be_bytes())]),
        ),
        case(
            "v4 total length 65535",
            poke(&v4, &[(2, &u16::MAX.to_be_bytes())]),
        ),
        case(
            "v4 total length below IHL",
            poke(&v4, &[(2, &19u16.to_be_bytes())]),
        ),
        case(
            "v4 total length cutting the TCP header",
            poke(&v4, &[(2, &39u16.to_be_bytes())]),
        ),
        case("v4 ethertype with version 6", poke(&v4, &[(0, &[0x65])])),
        case("v4 TCP doff 4", poke(&v4, &[(20 + 12, &[0x40])])),
        case(
            "v4 TCP doff 15 beyond the segment",
            poke(&v4, &[(20 + 12, &[0xf0])]),
        ),
        case(
            "v4 UDP header cut by total length",
            poke(
                &Packet::v4(UE_V4, A_V4).udp(0),
                &[(2, &27u16.to_be_bytes())],
            ),
        ),
        case(
            "v4 ICMP shorter than 8 bytes",
            Packet::v4(UE_V4, A_V4)
                .raw_l4(IPPROTO_ICMP, vec![8, 0, 0, 0])
                .build(),
        ),
        case(
            "v4 first fragment with a short UDP header",
            Packet::v4(UE_V4, A_V4)
                .fragment(0, true)
                .raw_l4(IPPROTO_UDP, vec![0; 4])
                .build(),
        ),
        case(
            "v6 payload length beyond the frame",
            poke(&v6, &[(4, &(v6_payload + 1).to_be_bytes())]),
        ),
        case(
            "v6 payload length cutting the UDP header",
            poke(&v6, &[(4, &7u16.to_be_bytes())]),
        ),
        case("v6 version 4", poke(&v6, &[(0, &[0x40])])),
        case(
            "v6 ICMPv6 shorter than 8 bytes",
            Packet::v6(UE_V6, A_V6)
                .raw_l4(IPPROTO_ICMPV6, vec![128, 0, 0, 0])
                .build(),
        ),
        case(
            "v6 seven extension headers (bound is six)",
            seven_ext.build(),
        ),
        case(
            "v6 extension chain longer than 512 bytes",
            long_chain.build(),
        ),
        case(
            "v6 extension header length beyond the payload",
            poke(
                &Packet::v6(UE_V6, A_V6).ext(IPPROTO_HOPOPTS, 0).udp(0),
                &[(41, &[200])],
            ),
        ),
        case(
            "v6 first fragment with a short TCP header",
            Packet::v6(UE_V6, A_V6)
                .fragment(0, true)
                .raw_l4(IPPROTO_TCP, vec![0; 12])
                .build(),
        ),
        case(
            "three VLAN tags",
            Packet::v4(UE_V4, A_V4)
                .vlan(ETH_P_8021Q)
                .vlan(ETH_P_8021Q)
                .vlan(ETH_P_8021Q)
                .udp(1)
                .build(),
        ),
    ]
}

#[test]
fn bogus_header_fields_are_parse_errors() -> anyhow::Result<()> {
    require_root!();
    let edge = edge_with_next_hop(&EdgeConfig::default())?;
    let cases = bogus_field_cases();
    run_cases(&edge, &cases)?.assert_none();
    Ok(())
}
