//! One row of an edge fixture table and the runner that checks it.

use hsn_core::{Direction, TenantId};
use hsn_ebpf::{EdgeConfig, EdgeDatapath, EdgeStats, NextHop, XdpAction};

use super::{EDGE_OUT_MAC, Mismatches, SUPER_MAC, edge_deltas, tenants};
use hsn_testkit::packet::{ETH_P_IP, ETH_P_IPV6, Packet};

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

/// Tenant uplink: redirected, metered, VLAN tags popped, Ethernet header rewritten to
/// SUPER_MAC <- EDGE_OUT_MAC. BPF_PROG_TEST_RUN (without live frames) returns the program's
/// own verdict, XDP_REDIRECT (4), transmits nothing, and hands back the rewritten frame.
pub fn redirect(name: &str, p: Packet, tenant: TenantId) -> Case {
    let frame = p.build();
    let l3 = p.l3_offset();
    let ethertype = u16::from_be_bytes([frame[l3 - 2], frame[l3 - 1]]);
    assert!(
        ethertype == ETH_P_IP || ethertype == ETH_P_IPV6,
        "{name}: not IP"
    );
    let mut out = Vec::new();
    out.extend_from_slice(&SUPER_MAC.0);
    out.extend_from_slice(&EDGE_OUT_MAC.0);
    out.extend_from_slice(&ethertype.to_be_bytes());
    out.extend_from_slice(&frame[l3..]);
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
        out,
        frame,
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

pub fn parse_error(s: &mut EdgeStats) {
    s.parse_errors = 1;
}
pub fn non_ip(s: &mut EdgeStats) {
    s.non_ip = 1;
}
pub fn non_tenant(s: &mut EdgeStats) {
    s.non_tenant = 1;
}
pub fn no_reason(_: &mut EdgeStats) {}

/// An edge datapath with the fixture tenants and a next hop out of `lo` (ifindex 1, present
/// in every network namespace), which is enough for bpf_redirect_map to succeed.
pub fn edge_with_next_hop(config: &EdgeConfig) -> anyhow::Result<EdgeDatapath> {
    let mut edge = EdgeDatapath::load(config)?;
    edge.set_tenants(&tenants())?;
    edge.set_next_hop(NextHop {
        ifindex: 1,
        dst_mac: SUPER_MAC,
        src_mac: EDGE_OUT_MAC,
    })?;
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
        if run.packet != case.out {
            let head = |b: &[u8]| {
                b.iter()
                    .take(22)
                    .map(|x| format!("{x:02x}"))
                    .collect::<String>()
            };
            failures.push(format!(
                "{name}: output frame ({} bytes, starts {}) differs from expected ({} bytes, starts {})",
                run.packet.len(),
                head(&run.packet),
                case.out.len(),
                head(&case.out)
            ));
        }
    }
    Ok(failures)
}
