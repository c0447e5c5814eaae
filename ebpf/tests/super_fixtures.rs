//! Super-node program fixtures: per (edge, tenant, direction) metering, edge identification by
//! MAC or by IP source, and the same parse discipline as the edge. It only observes: every
//! frame is passed untouched.

mod common;

use common::*;
use hsn_core::{Direction, MacAddr, TenantId};
use hsn_ebpf::{EdgeNode, SuperConfig, SuperDatapath, SuperStats, XdpAction};
use hsn_testkit::packet::*;

const EDGE_A_MAC: [u8; 6] = [0x02, 0xed, 0, 0, 0, 0x0a];
const EDGE_B_MAC: [u8; 6] = [0x02, 0xed, 0, 0, 0, 0x0b];
const EDGE_A: &str = "192.0.2.1";
const EDGE_B: &str = "2001:db8:e::b";
/// An unknown MAC: a router in front of edges that route instead of redirecting.
const ROUTER_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x01];

struct Case {
    name: &'static str,
    frame: Vec<u8>,
    /// (edge address as printed, tenant, direction, bytes)
    counted: Option<(&'static str, TenantId, Direction, u64)>,
    stats: SuperStats,
}

fn base() -> SuperStats {
    SuperStats {
        packets: 1,
        ..SuperStats::default()
    }
}

fn counted(
    name: &'static str,
    p: Packet,
    edge: &'static str,
    tenant: TenantId,
    dir: Direction,
) -> Case {
    let by_mac = p.src_mac == EDGE_A_MAC || p.src_mac == EDGE_B_MAC;
    Case {
        name,
        frame: p.build(),
        counted: Some((edge, tenant, dir, p.l3_len())),
        stats: SuperStats {
            tenant: 1,
            edge_by_mac: u64::from(by_mac),
            edge_by_addr: u64::from(!by_mac),
            ..base()
        },
    }
}

fn uncounted(name: &'static str, frame: Vec<u8>, reason: fn(&mut SuperStats)) -> Case {
    let mut stats = base();
    reason(&mut stats);
    Case {
        name,
        frame,
        counted: None,
        stats,
    }
}

fn cases() -> Vec<Case> {
    let up = Direction::Uplink;
    let down = Direction::Downlink;
    let from = |mac: [u8; 6], p: Packet| p.src_mac(mac);
    let mut truncated = from(EDGE_A_MAC, Packet::v4(UE_V4, A_V4).tcp(0)).build();
    truncated.truncate(14 + 20 + 10);
    vec![
        counted(
            "edge A v4 uplink",
            from(EDGE_A_MAC, Packet::v4(UE_V4, A_V4).udp(100)),
            EDGE_A,
            TENANT_A,
            up,
        ),
        counted(
            "edge A v6 uplink",
            from(EDGE_A_MAC, Packet::v6(UE_V6, A_V6).tcp(10)),
            EDGE_A,
            TENANT_A,
            up,
        ),
        counted(
            "edge A v4 downlink",
            from(EDGE_A_MAC, Packet::v4(B_V4, UE_V4).icmp(8)),
            EDGE_A,
            TENANT_B,
            down,
        ),
        counted(
            "edge B QinQ v6 uplink",
            from(
                EDGE_B_MAC,
                Packet::v6(UE_V6, B_V6)
                    .vlan(ETH_P_8021AD)
                    .vlan(ETH_P_8021Q)
                    .icmp(8),
            ),
            EDGE_B,
            TENANT_B,
            up,
        ),
        counted(
            "edge B jumbo v4 uplink",
            from(EDGE_B_MAC, Packet::v4(UE_V4, A_V4).tcp(0).frame_len(9000)),
            EDGE_B,
            TENANT_A,
            up,
        ),
        counted(
            "routed edge identified by IPv4 source",
            from(ROUTER_MAC, Packet::v4("198.51.100.5", A_V4).udp(1)),
            "198.51.100.5",
            TENANT_A,
            up,
        ),
        counted(
            "routed edge identified by IPv6 source",
            from(
                ROUTER_MAC,
                Packet::v6("2001:db8:e::99", B_V6).udp(1).pad_to(60),
            ),
            "2001:db8:e::99",
            TENANT_B,
            up,
        ),
        uncounted(
            "non-tenant from edge A",
            from(EDGE_A_MAC, Packet::v4(UE_V4, "203.0.113.1").udp(1)).build(),
            |s| s.non_tenant = 1,
        ),
        uncounted("arp", arp_frame(), |s| s.non_ip = 1),
        uncounted("truncated TCP from edge A", truncated, |s| {
            s.parse_errors = 1
        }),
        uncounted(
            "v6 with bogus payload length from edge B",
            {
                let p = from(EDGE_B_MAC, Packet::v6(UE_V6, A_V6).udp(4));
                let mut f = p.build();
                f[p.l3_offset() + 5] += 1;
                f
            },
            |s| s.parse_errors = 1,
        ),
    ]
}

fn super_with_edges(config: &SuperConfig) -> anyhow::Result<SuperDatapath> {
    let mut dp = SuperDatapath::load(config)?;
    dp.set_tenants(&tenants())?;
    dp.set_edges(&[
        EdgeNode {
            mac: MacAddr(EDGE_A_MAC),
            addr: EDGE_A.parse()?,
        },
        EdgeNode {
            mac: MacAddr(EDGE_B_MAC),
            addr: EDGE_B.parse()?,
        },
    ])?;
    Ok(dp)
}

fn run(dp: &SuperDatapath, cases: &[Case]) -> anyhow::Result<Mismatches> {
    let mut failures = Mismatches::default();
    for case in cases {
        let (counters, stats) = (dp.counters()?, dp.stats()?);
        let run = dp.run_packet(&case.frame)?;
        let deltas = super_deltas(&counters, &dp.counters()?);
        let stats_delta = dp.stats()?.since(&stats);
        let name = case.name;
        if run.action != XdpAction::Pass || run.packet != case.frame {
            failures.push(format!(
                "{name}: {:?} / frame changed; want Pass, untouched",
                run.action
            ));
        }
        let want: Vec<_> = case
            .counted
            .iter()
            .map(|&(edge, t, d, bytes)| ((edge.to_owned(), t, d), (1, bytes)))
            .collect();
        let got: Vec<_> = deltas.into_iter().collect();
        failures.check(name, "counter deltas", &got, &want);
        failures.check(name, "stats delta", &stats_delta, &case.stats);
    }
    Ok(failures)
}

#[test]
fn super_fixture_table() -> anyhow::Result<()> {
    require_root!();
    let dp = super_with_edges(&SuperConfig::default())?;
    run(&dp, &cases())?.assert_none();
    Ok(())
}

#[test]
fn per_edge_totals_add_up() -> anyhow::Result<()> {
    require_root!();
    let dp = super_with_edges(&SuperConfig::default())?;
    let a = Packet::v4(UE_V4, A_V4).udp(10).src_mac(EDGE_A_MAC);
    let b = Packet::v4(UE_V4, A_V4).udp(10).src_mac(EDGE_B_MAC);
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
    let l3 = a.l3_len();
    assert_eq!(
        got,
        [
            (EDGE_A.to_owned(), TENANT_A, Direction::Uplink, 3, 3 * l3),
            (EDGE_B.to_owned(), TENANT_A, Direction::Uplink, 1, l3),
        ]
    );
    Ok(())
}

#[test]
fn without_address_fallback_unknown_macs_are_not_metered() -> anyhow::Result<()> {
    require_root!();
    let config = SuperConfig {
        edge_by_addr: false,
        ..SuperConfig::default()
    };
    let dp = super_with_edges(&config)?;
    let cases = [
        uncounted(
            "unknown MAC, fallback off",
            Packet::v4("198.51.100.5", A_V4)
                .udp(1)
                .src_mac(ROUTER_MAC)
                .build(),
            |s| s.unknown_edge = 1,
        ),
        counted(
            "known MAC still counts",
            Packet::v4(UE_V4, A_V4).udp(1).src_mac(EDGE_A_MAC),
            EDGE_A,
            TENANT_A,
            Direction::Uplink,
        ),
    ];
    run(&dp, &cases)?.assert_none();
    Ok(())
}

#[test]
fn set_edges_replaces_the_set() -> anyhow::Result<()> {
    require_root!();
    let mut dp = super_with_edges(&SuperConfig::default())?;
    // Edge A's MAC now belongs to a new edge address; edge B is gone.
    dp.set_edges(&[EdgeNode {
        mac: MacAddr(EDGE_A_MAC),
        addr: "192.0.2.77".parse()?,
    }])?;
    let cases = [
        counted(
            "A's MAC, new address",
            Packet::v4(UE_V4, A_V4).udp(1).src_mac(EDGE_A_MAC),
            "192.0.2.77",
            TENANT_A,
            Direction::Uplink,
        ),
        counted(
            "B's MAC falls back to the IP source",
            Packet::v4(UE_V4, A_V4).udp(1).src_mac(EDGE_B_MAC),
            UE_V4,
            TENANT_A,
            Direction::Uplink,
        ),
    ];
    // `counted` decides by_mac from the two fixture MACs; B is no longer known.
    let mut cases = cases;
    cases[1].stats.edge_by_mac = 0;
    cases[1].stats.edge_by_addr = 1;
    run(&dp, &cases)?.assert_none();
    Ok(())
}
