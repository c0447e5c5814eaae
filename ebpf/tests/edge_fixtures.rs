//! Edge program fixtures through BPF_PROG_TEST_RUN: well-formed plain traffic of every
//! family, VLAN encapsulation and L4 protocol; tenant direction; fragments; frame sizes;
//! next-hop changes. Tenant uplink leaves in the IPv4 tunnel of the fixture next hop (the
//! tunnel's own cases: `tunnel_fixtures`, `tunnel_malformed`, `tunnel_mtu`).

mod common;

use common::edge_case::{
    Case, decap, edge_with_next_hop, fixture_hop, no_reason, non_ip, non_tenant, pass_counted,
    pass_uncounted, redirect, run_cases,
};
use common::tunnel::encapsulated;
use common::*;
use hsn_core::{Direction, MacAddr, TenantId};
use hsn_ebpf::{EdgeConfig, EdgeDatapath, EdgeStats, Error, NextHop, XdpAction};
use hsn_testkit::packet::*;

fn well_formed_cases() -> Vec<Case> {
    let down = Direction::Downlink;
    vec![
        // IPv4, each L4 protocol, both directions.
        redirect("v4 udp uplink", Packet::v4(UE_V4, A_V4).udp(32), TENANT_A),
        redirect("v4 tcp uplink", Packet::v4(UE_V4, A_V4).tcp(100), TENANT_A),
        redirect(
            "v4 tcp with options uplink",
            Packet::v4(UE_V4, A_V4).tcp_doff(15, 10),
            TENANT_A,
        ),
        redirect("v4 icmp uplink", Packet::v4(UE_V4, A_V4).icmp(56), TENANT_A),
        pass_counted(
            "v4 tcp downlink",
            Packet::v4(A_V4, UE_V4).tcp(64),
            TENANT_A,
            down,
            no_reason,
        ),
        pass_counted(
            "v4 udp downlink",
            Packet::v4(B_V4, UE_V4).udp(8),
            TENANT_B,
            down,
            no_reason,
        ),
        pass_uncounted(
            "v4 non-tenant",
            Packet::v4(UE_V4, "198.51.100.1").udp(20).build(),
            non_tenant,
        ),
        redirect(
            "v4 longest prefix wins",
            Packet::v4(UE_V4, B_V4).udp(1),
            TENANT_B,
        ),
        redirect(
            "v4 tenant to tenant: destination wins",
            Packet::v4(B_V4, A_V4).udp(1),
            TENANT_A,
        ),
        redirect(
            "v4 with 40 bytes of options",
            Packet::v4(UE_V4, A_V4).ip_options(40).tcp(5),
            TENANT_A,
        ),
        // IPv6.
        redirect("v6 udp uplink", Packet::v6(UE_V6, A_V6).udp(32), TENANT_A),
        redirect(
            "v6 icmpv6 uplink",
            Packet::v6(UE_V6, A_V6).icmp(56),
            TENANT_A,
        ),
        pass_counted(
            "v6 tcp downlink",
            Packet::v6(A_V6, UE_V6).tcp(10),
            TENANT_A,
            down,
            no_reason,
        ),
        pass_uncounted(
            "v6 non-tenant",
            Packet::v6(UE_V6, "2001:db8:ffff::1").tcp(1).build(),
            non_tenant,
        ),
        redirect(
            "v6 longest prefix wins",
            Packet::v6(UE_V6, B_V6).tcp(0),
            TENANT_B,
        ),
        redirect(
            "v6 hop-by-hop + routing + dest opts + AH",
            Packet::v6(UE_V6, A_V6)
                .ext(IPPROTO_HOPOPTS, 0)
                .ext(IPPROTO_ROUTING, 2)
                .ext(IPPROTO_DSTOPTS, 1)
                .ext(IPPROTO_AH, 4)
                .tcp(20),
            TENANT_A,
        ),
        // VLAN: tags are popped on redirect (the tunnel leaves untagged), kept on pass.
        redirect(
            "v4 802.1Q",
            Packet::v4(UE_V4, A_V4).vlan(ETH_P_8021Q).udp(10),
            TENANT_A,
        ),
        redirect(
            "v4 QinQ (802.1ad + 802.1Q)",
            Packet::v4(UE_V4, A_V4)
                .vlan(ETH_P_8021AD)
                .vlan(ETH_P_8021Q)
                .tcp(10),
            TENANT_A,
        ),
        redirect(
            "v6 QinQ (802.1Q + 802.1Q)",
            Packet::v6(UE_V6, A_V6)
                .vlan(ETH_P_8021Q)
                .vlan(ETH_P_8021Q)
                .icmp(8),
            TENANT_A,
        ),
        pass_counted(
            "v6 802.1Q downlink keeps its tag",
            Packet::v6(B_V6, UE_V6).vlan(ETH_P_8021Q).udp(3),
            TENANT_B,
            down,
            no_reason,
        ),
        pass_uncounted(
            "v4 QinQ non-tenant",
            Packet::v4(UE_V4, UE_V4)
                .vlan(ETH_P_8021AD)
                .vlan(ETH_P_8021Q)
                .udp(3)
                .build(),
            non_tenant,
        ),
        // Fragments: the first carries L4, later ones do not; all are the tenant's bytes.
        redirect(
            "v4 first fragment",
            Packet::v4(UE_V4, A_V4).fragment(0, true).udp(1000),
            TENANT_A,
        ),
        redirect(
            "v4 non-first fragment without L4 header",
            Packet::v4(UE_V4, A_V4)
                .fragment(125, false)
                .udp(3)
                .without_l4_header(),
            TENANT_A,
        ),
        redirect(
            "v4 non-first fragment whose payload looks like a short TCP header",
            Packet::v4(UE_V4, A_V4)
                .fragment(1, true)
                .raw_l4(IPPROTO_TCP, vec![0; 3]),
            TENANT_A,
        ),
        redirect(
            "v6 first fragment",
            Packet::v6(UE_V6, A_V6).fragment(0, true).tcp(100),
            TENANT_A,
        ),
        redirect(
            "v6 non-first fragment without L4 header",
            Packet::v6(UE_V6, A_V6)
                .ext(IPPROTO_HOPOPTS, 0)
                .fragment(200, false)
                .udp(7)
                .without_l4_header(),
            TENANT_A,
        ),
        // Frame sizes: padding is not metered (IP length is) and stays behind the tunnelled
        // packet; jumbo frames are multi-buffer.
        redirect(
            "v4 60-byte minimum frame",
            Packet::v4(UE_V4, A_V4).udp(4).pad_to(60),
            TENANT_A,
        ),
        pass_counted(
            "v6 60-byte-padded downlink",
            Packet::v6(A_V6, UE_V6)
                .vlan(ETH_P_8021Q)
                .raw_l4(59, vec![])
                .pad_to(64),
            TENANT_A,
            down,
            no_reason,
        ),
        // The largest the 1500-byte IPv4 tunnel carries (jumbo uplink: `tunnel_mtu`).
        redirect(
            "v4 1494-byte frame",
            Packet::v4(UE_V4, A_V4).tcp(0).frame_len(14 + 1480),
            TENANT_A,
        ),
        redirect(
            "v6 802.1Q 1498-byte frame",
            Packet::v6(UE_V6, A_V6)
                .vlan(ETH_P_8021Q)
                .udp(0)
                .frame_len(18 + 1480),
            TENANT_A,
        ),
        pass_counted(
            "v4 9000-byte jumbo downlink",
            Packet::v4(A_V4, UE_V4)
                .vlan(ETH_P_8021Q)
                .udp(0)
                .frame_len(9000),
            TENANT_A,
            down,
            no_reason,
        ),
        // Not IP at all.
        pass_uncounted("arp", arp_frame(), non_ip),
        pass_counted(
            "v4 downlink to a non-UE address",
            Packet::v4(A_V4, "198.51.100.7").udp(1),
            TENANT_A,
            down,
            no_reason,
        ),
    ]
}

#[test]
fn edge_fixture_table() -> anyhow::Result<()> {
    require_root!();
    let edge = edge_with_next_hop(&EdgeConfig::default())?;
    run_cases(&edge, &well_formed_cases())?.assert_none();
    Ok(())
}

#[test]
fn counters_are_monotonic_and_per_tenant_direction() -> anyhow::Result<()> {
    require_root!();
    let edge = edge_with_next_hop(&EdgeConfig::default())?;
    let up = Packet::v4(UE_V4, A_V4).udp(10);
    let down = Packet::v6(B_V6, UE_V6).tcp(0);
    for _ in 0..3 {
        edge.run_packet(&up.build())?;
    }
    edge.run_packet(&down.build())?;
    let got: Vec<_> = edge
        .counters()?
        .iter()
        .map(|c| (c.tenant, c.direction, c.packets, c.bytes))
        .collect();
    assert_eq!(
        got,
        [
            (TENANT_A, Direction::Uplink, 3, 3 * up.l3_len()),
            (TENANT_B, Direction::Downlink, 1, down.l3_len()),
        ]
    );
    Ok(())
}

#[test]
fn switching_and_clearing_the_next_hop_needs_no_reload() -> anyhow::Result<()> {
    require_root!();
    let mut edge = edge_with_next_hop(&EdgeConfig::default())?;
    let frame = Packet::v4(UE_V4, A_V4).udp(10).build();

    // Another super node, over IPv6, another path MTU.
    let hop = NextHop {
        ifindex: 1,
        dst_mac: MacAddr([0x02, 0, 0, 0, 0x5e, 0x02]),
        src_mac: MacAddr([0x02, 0, 0, 0, 0xed, 0x02]),
        local: EDGE_ADDR_V6.parse()?,
        remote: "2001:db8:5::77".parse()?,
        mtu: 1400,
    };
    edge.set_next_hop(hop)?;
    assert_eq!(edge.next_hop()?, Some(hop));
    let run = edge.run_packet(&frame)?;
    assert_eq!(run.action, XdpAction::Redirect);
    assert_eq!(
        run.packet,
        encapsulated(&Packet::v4(UE_V4, A_V4).udp(10), &hop),
        "tunnelled to the new super node"
    );
    edge.set_next_hop(fixture_hop())?;
    let run = edge.run_packet(&frame)?;
    assert_eq!(run.packet[14..34], fixture_tunnel_header(), "and back");

    edge.clear_next_hop()?;
    edge.clear_next_hop()?; // idempotent
    assert_eq!(edge.next_hop()?, None);
    let before = edge.stats()?;
    let run = edge.run_packet(&frame)?;
    assert_eq!(run.action, XdpAction::Pass);
    assert_eq!(run.packet, frame, "passed frames are left untouched");
    let delta = edge.stats()?.since(&before);
    assert_eq!(
        delta,
        EdgeStats {
            packets: 1,
            tenant: 1,
            no_next_hop: 1,
            passed: 1,
            ..EdgeStats::default()
        }
    );
    Ok(())
}

/// The outer header [`fixture_hop`] writes around `Packet::v4(UE_V4, A_V4).udp(10)`.
fn fixture_tunnel_header() -> Vec<u8> {
    Packet::v4(UE_V4, A_V4)
        .udp(10)
        .tunnel(EDGE_ADDR_V4, SUPER_ADDR_V4)
        .build()[14..34]
        .to_vec()
}

#[test]
fn next_hop_on_a_missing_device_is_refused() -> anyhow::Result<()> {
    require_root!();
    let mut edge = EdgeDatapath::load(&EdgeConfig::default())?;
    let err = edge
        .set_next_hop(NextHop {
            ifindex: 0x7fff_fff0,
            ..fixture_hop()
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::AddTxPort {
                ifindex: 0x7fff_fff0,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.label(), "write_next_hop");
    assert_eq!(
        edge.next_hop()?,
        None,
        "no next hop is written for an unusable device"
    );
    Ok(())
}

#[test]
fn meter_only_mode_passes_tenant_uplink() -> anyhow::Result<()> {
    require_root!();
    let config = EdgeConfig {
        redirect_uplink: false,
        ..EdgeConfig::default()
    };
    let edge = edge_with_next_hop(&config)?;
    let cases = [
        pass_counted(
            "uplink in meter-only mode",
            Packet::v4(UE_V4, A_V4).vlan(ETH_P_8021Q).tcp(10),
            TENANT_A,
            Direction::Uplink,
            no_reason,
        ),
        decap(
            "tunnelled downlink in meter-only mode",
            Packet::v6(A_V6, UE_V6).vlan(ETH_P_8021Q).udp(10),
            SUPER_ADDR_V4,
            EDGE_ADDR_V4,
            TENANT_A,
        ),
    ];
    run_cases(&edge, &cases)?.assert_none();
    Ok(())
}

#[test]
fn set_tenants_replaces_the_whole_set() -> anyhow::Result<()> {
    require_root!();
    let mut edge = edge_with_next_hop(&EdgeConfig::default())?;
    let to_a = Packet::v4(UE_V4, A_V4).udp(1).build();
    let to_b = Packet::v6(UE_V6, B_V6).udp(1).build();

    // Tenant A disappears; B's IPv6 prefix moves to tenant 42.
    edge.set_tenants(&[hsn_ebpf::TenantPrefixes {
        tenant: TenantId::new(42).unwrap(),
        prefixes: vec!["2001:db8:9::/64".parse()?],
    }])?;
    let before = edge.counters()?;
    assert_eq!(edge.run_packet(&to_a)?.action, XdpAction::Pass);
    assert_eq!(edge.run_packet(&to_b)?.action, XdpAction::Redirect);
    let deltas = edge_deltas(&before, &edge.counters()?);
    assert_eq!(
        deltas
            .keys()
            .map(|(t, d)| (t.get(), *d))
            .collect::<Vec<_>>(),
        [(42, Direction::Uplink)]
    );

    edge.set_tenants(&[])?;
    assert_eq!(edge.run_packet(&to_b)?.action, XdpAction::Pass);
    Ok(())
}

#[test]
fn timed_runs_count_every_repetition() -> anyhow::Result<()> {
    require_root!();
    let edge = edge_with_next_hop(&EdgeConfig::default())?;
    // Downlink: the program leaves the frame as it is, so every repetition sees it anew.
    let p = Packet::v4(A_V4, UE_V4).udp(32);
    let (counters, stats) = (edge.counters()?, edge.stats()?);
    // The duration is the kernel's and is not checked: tests never depend on wall-clock time.
    edge.time_packet(&p.build(), 1000)?;
    let deltas = edge_deltas(&counters, &edge.counters()?);
    assert_eq!(
        deltas.into_iter().collect::<Vec<_>>(),
        [((TENANT_A, Direction::Downlink), (1000, 1000 * p.l3_len()))]
    );
    let delta = edge.stats()?.since(&stats);
    assert_eq!(
        (delta.packets, delta.tenant, delta.passed),
        (1000, 1000, 1000)
    );
    Ok(())
}

/// BPF_PROG_TEST_RUN repeats the program on one buffer without restoring it: a frame the
/// program encapsulates is tunnelled once, and every later repetition sees the tunnel
/// packet (from the edge's own address, no super node: an unknown peer). Timing the
/// uplink path with `time_packet` therefore times the unknown-peer path after the first
/// run (a benchmark's caveat, written down here).
#[test]
fn timed_uplink_runs_see_the_frame_the_first_run_encapsulated() -> anyhow::Result<()> {
    require_root!();
    let edge = edge_with_next_hop(&EdgeConfig::default())?;
    let p = Packet::v4(UE_V4, A_V4).udp(32);
    let (counters, stats) = (edge.counters()?, edge.stats()?);
    edge.time_packet(&p.build(), 100)?;
    let deltas = edge_deltas(&counters, &edge.counters()?);
    assert_eq!(
        deltas.into_iter().collect::<Vec<_>>(),
        [((TENANT_A, Direction::Uplink), (1, p.l3_len()))]
    );
    let delta = edge.stats()?.since(&stats);
    assert_eq!(
        (delta.packets, delta.redirected, delta.unknown_peer),
        (100, 1, 99)
    );
    Ok(())
}

/// Every branch of the program's lookup (`include/hsn_tenant.h`) against the kernel: IPv4
/// short prefixes expanded into blocks, a block's few longer prefixes (compared), more than
/// it holds (probed); IPv6 short prefixes probed outside any block, a block inheriting one, a /32
/// owning its block, longer prefixes probed.
#[test]
fn every_lookup_branch_finds_the_longest_prefix() -> anyhow::Result<()> {
    require_root!();
    let mut edge = EdgeDatapath::load(&EdgeConfig::default())?;
    let tenant = |tenant: u32, prefixes: &[&str]| hsn_ebpf::TenantPrefixes {
        tenant: TenantId::new(tenant).unwrap(),
        prefixes: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
    };
    edge.set_tenants(&[
        tenant(50, &["20.0.0.0/8", "fc00::/8"]),
        tenant(51, &["20.1.0.0/24", "fc00:1::/48"]),
        tenant(
            52,
            &["20.2.0.0/24", "20.2.0.128/25", "20.2.9.9/32", "fc00:2::/32"],
        ),
        tenant(53, &["fc00:2:3::/64"]),
        // Five longer prefixes, one more than a block holds: probed.
        tenant(
            54,
            &[
                "20.3.0.0/20",
                "20.3.0.0/22",
                "20.3.0.0/24",
                "20.3.0.0/26",
                "20.3.0.0/28",
            ],
        ),
        tenant(55, &["20.3.0.64/26"]),
    ])?;
    // UE_V6 (fd00::10) is in none of these.
    let cases = [
        ("20.1.0.7", Some(51)),     // the block's only longer prefix
        ("20.1.1.7", Some(50)),     // same block, outside it: the covering /8
        ("20.2.0.200", Some(52)),   // three in the block: the /25 compared first
        ("20.2.9.9", Some(52)),     // the /32
        ("20.2.9.8", Some(50)),     // compared, no hit: the covering /8
        ("20.3.0.9", Some(54)),     // six in the block: the /28 probed first
        ("20.3.0.70", Some(55)),    // the other tenant's /26
        ("20.3.0.130", Some(54)),   // the /24
        ("20.3.15.1", Some(54)),    // the /20
        ("20.3.16.1", Some(50)),    // probed, no hit: the covering /8
        ("20.77.0.1", Some(50)),    // a block only the /8 covers
        ("21.0.0.1", None),         // no block
        ("fc00:1::9", Some(51)),    // /48 probed in block fc00:1
        ("fc00:1:ff::9", Some(50)), // block fc00:1 inherits the /8
        ("fc00:2:3::9", Some(53)),  // /64 inside a /32 that owns its block
        ("fc00:2:4::9", Some(52)),  // the /32 itself
        ("fc77::1", Some(50)),      // in no block: the short /8 probed
        ("fe80::1", None),
    ];
    for (addr, want) in cases {
        let packet = if addr.contains(':') {
            Packet::v6(UE_V6, addr)
        } else {
            Packet::v4(UE_V4, addr)
        };
        let before = edge.counters()?;
        edge.run_packet(&packet.udp(4).build())?;
        let got: Vec<u32> = edge_deltas(&before, &edge.counters()?)
            .keys()
            .map(|(tenant, _)| tenant.get())
            .collect();
        assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{addr}");
    }
    Ok(())
}
