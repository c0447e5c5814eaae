//! One row of an edge fixture table and the runner that checks it.

use hsn_core::{Direction, TenantId};
use hsn_ebpf::{EdgeConfig, EdgeDatapath, EdgeStats, NextHop, XdpAction};

use super::tunnel::{decapsulated, edge_hop, encapsulated};
use super::{Mismatches, SUPER_ADDR_V4, SUPER_ADDR_V6, edge_deltas, tenants};
use hsn_testkit::packet::Packet;

/// (name, input frame, expected verdict, expected counter delta, expected stats delta,
/// expected frame after the program, Ethernet header included).
pub struct Case {
    pub name: String,
    pub frame: Vec<u8>,
    pub verdict: XdpAction,
    pub counted: Option<(TenantId, Direction, u64)>,
    pub stats: EdgeStats,
    pub out: Vec<u8>,
}

/// Tenant uplink through [`fixture_hop`]: see [`redirect_via`].
pub fn redirect(name: &str, p: Packet, tenant: TenantId) -> Case {
    redirect_via(name, p, tenant, &fixture_hop())
}

/// Tenant uplink: metered (its IP length), VLAN tags popped, encapsulated toward `hop`
/// (the datapath's next hop) and redirected. BPF_PROG_TEST_RUN (without live frames)
/// returns the program's own verdict, XDP_REDIRECT (4), transmits nothing, and hands back
/// the rewritten frame.
pub fn redirect_via(name: &str, p: Packet, tenant: TenantId, hop: &NextHop) -> Case {
    Case {
        name: name.to_owned(),
        verdict: XdpAction::Redirect,
        counted: Some((tenant, Direction::Uplink, p.l3_len())),
        stats: EdgeStats {
            packets: 1,
            tenant: 1,
            redirected: 1,
            ..EdgeStats::default()
        },
        out: encapsulated(&p, hop),
        frame: p.build(),
    }
}

/// Tenant downlink tunnelled by the super node at `from` to the edge at `to`, `inner`
/// inside (with the frame's MACs and VLAN tags): metered under its tenant (the inner IP
/// length), the outer header removed (Ethernet header and tags kept, the EtherType the
/// inner packet's), passed to the kernel.
pub fn decap(name: &str, inner: Packet, from: &str, to: &str, tenant: TenantId) -> Case {
    let tunnelled = inner.clone().tunnel(from, to);
    Case {
        name: name.to_owned(),
        verdict: XdpAction::Pass,
        counted: Some((tenant, Direction::Downlink, inner.l3_len())),
        stats: EdgeStats {
            packets: 1,
            tenant: 1,
            decapsulated: 1,
            passed: 1,
            ..EdgeStats::default()
        },
        out: decapsulated(&inner, &tunnelled),
        frame: tunnelled.build(),
    }
}

/// Tenant traffic that is metered and passed unchanged (downlink, or uplink when the
/// program does not redirect); `extra` adds the reason stat.
pub fn pass_counted(
    name: &str,
    p: Packet,
    tenant: TenantId,
    dir: Direction,
    extra: fn(&mut EdgeStats),
) -> Case {
    let frame = p.build();
    let mut stats = EdgeStats {
        packets: 1,
        tenant: 1,
        passed: 1,
        ..EdgeStats::default()
    };
    extra(&mut stats);
    Case {
        name: name.to_owned(),
        verdict: XdpAction::Pass,
        counted: Some((tenant, dir, p.l3_len())),
        stats,
        out: frame.clone(),
        frame,
    }
}

/// Passed unchanged and never metered; `reason` sets the stat that explains why.
pub fn pass_uncounted(name: &str, frame: Vec<u8>, reason: fn(&mut EdgeStats)) -> Case {
    let mut stats = EdgeStats {
        packets: 1,
        passed: 1,
        ..EdgeStats::default()
    };
    reason(&mut stats);
    Case {
        name: name.to_owned(),
        verdict: XdpAction::Pass,
        counted: None,
        stats,
        out: frame.clone(),
        frame,
    }
}

/// Tenant uplink the tunnel cannot carry: dropped, not metered, counted as too big.
pub fn too_big(name: &str, frame: Vec<u8>) -> Case {
    Case {
        name: name.to_owned(),
        verdict: XdpAction::Drop,
        counted: None,
        stats: EdgeStats {
            packets: 1,
            too_big: 1,
            ..EdgeStats::default()
        },
        out: frame.clone(),
        frame,
    }
}

pub fn parse_error(s: &mut EdgeStats) {
    s.parse_errors = 1;
}
pub fn non_ip(s: &mut EdgeStats) {
    s.non_ip = 1;
}
pub fn non_tenant(s: &mut EdgeStats) {
    s.non_tenant = 1;
}
pub fn unknown_peer(s: &mut EdgeStats) {
    s.unknown_peer = 1;
}
pub fn mss_clamped(s: &mut EdgeStats) {
    s.mss_clamped = 1;
}
pub fn no_reason(_: &mut EdgeStats) {}

/// The fixtures' next hop: out of `lo` (ifindex 1, present in every network namespace,
/// which is enough for bpf_redirect_map to succeed), an IPv4 tunnel from
/// [`EDGE_ADDR_V4`](super::EDGE_ADDR_V4) to [`SUPER_ADDR_V4`], MTU 1500.
pub fn fixture_hop() -> NextHop {
    edge_hop(false, 1500)
}

/// An edge datapath with the fixture tenants, [`fixture_hop`], and both fixture super
/// node addresses ([`SUPER_ADDR_V4`], [`SUPER_ADDR_V6`]) as the network's super nodes.
pub fn edge_with_next_hop(config: &EdgeConfig) -> anyhow::Result<EdgeDatapath> {
    let mut edge = EdgeDatapath::load(config)?;
    edge.set_tenants(&tenants())?;
    edge.set_next_hop(fixture_hop())?;
    edge.set_supers(&[SUPER_ADDR_V4.parse()?, SUPER_ADDR_V6.parse()?])?;
    Ok(edge)
}

/// Runs every case against `edge` and returns what did not match.
pub fn run_cases(edge: &EdgeDatapath, cases: &[Case]) -> anyhow::Result<Mismatches> {
    let mut failures = Mismatches::default();
    for case in cases {
        let counters = edge.counters()?;
        let stats = edge.stats()?;
        let run = edge.run_packet(&case.frame)?;
        let deltas = edge_deltas(&counters, &edge.counters()?);
        let stats_delta = edge.stats()?.since(&stats);

        let name = &case.name;
        failures.check(name, "verdict", &run.action, &case.verdict);
        let want: Vec<_> = case
            .counted
            .iter()
            .map(|&(t, d, bytes)| ((t, d), (1, bytes)))
            .collect();
        let got: Vec<_> = deltas.into_iter().collect();
        failures.check(name, "counter deltas", &got, &want);
        failures.check(name, "stats delta", &stats_delta, &case.stats);
        failures.check_frame(name, &run.packet, &case.out);
    }
    Ok(failures)
}
