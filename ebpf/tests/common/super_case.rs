//! One row of a super-node fixture table and the runner that checks it.

use hsn_core::{Direction, TenantId};
use hsn_ebpf::{EdgeNode, NextHop, SuperConfig, SuperDatapath, SuperStats, XdpAction};
use hsn_testkit::packet::Packet;

use super::tunnel::{decapsulated, encapsulated};
use super::{Mismatches, super_deltas, tenants};

/// (name, input frame, expected verdict, expected counter delta, expected stats delta,
/// expected frame after the program, Ethernet header included).
pub struct Case {
    pub name: String,
    pub frame: Vec<u8>,
    pub verdict: XdpAction,
    /// (edge address as printed, tenant, direction, bytes)
    pub counted: Option<(String, TenantId, Direction, u64)>,
    pub stats: SuperStats,
    pub out: Vec<u8>,
}

/// Tenant traffic tunnelled by the edge at `edge` to the super node at `to`, `inner`
/// inside (with the frame's MACs and VLAN tags): metered under the edge, the tenant and
/// the inner packet's direction (its IP length), the outer header removed (Ethernet header
/// and tags kept, the EtherType the inner packet's), passed to the kernel.
pub fn decap(
    name: &str,
    inner: Packet,
    edge: &str,
    to: &str,
    tenant: TenantId,
    dir: Direction,
) -> Case {
    let tunnelled = inner.clone().tunnel(edge, to);
    Case {
        name: name.to_owned(),
        verdict: XdpAction::Pass,
        counted: Some((edge.to_owned(), tenant, dir, inner.l3_len())),
        stats: SuperStats {
            packets: 1,
            tenant: 1,
            decapsulated: 1,
            ..SuperStats::default()
        },
        out: decapsulated(&inner, &tunnelled),
        frame: tunnelled.build(),
    }
}

/// Plain tenant downlink to a UE learned behind the edge `way_back` leads to: metered
/// under that edge (its IP length), VLAN tags popped, encapsulated along `way_back`,
/// redirected.
pub fn encap(name: &str, p: Packet, tenant: TenantId, way_back: &NextHop) -> Case {
    Case {
        name: name.to_owned(),
        verdict: XdpAction::Redirect,
        counted: Some((
            way_back.remote.to_string(),
            tenant,
            Direction::Downlink,
            p.l3_len(),
        )),
        stats: SuperStats {
            packets: 1,
            tenant: 1,
            encapsulated: 1,
            ..SuperStats::default()
        },
        out: encapsulated(&p, way_back),
        frame: p.build(),
    }
}

/// Passed unchanged and never metered; `reason` sets the stat that explains why.
pub fn uncounted(name: &str, frame: Vec<u8>, reason: fn(&mut SuperStats)) -> Case {
    let mut stats = SuperStats {
        packets: 1,
        ..SuperStats::default()
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

/// Tenant downlink the way back cannot carry: dropped, not metered, counted as too big.
pub fn too_big(name: &str, frame: Vec<u8>) -> Case {
    Case {
        name: name.to_owned(),
        verdict: XdpAction::Drop,
        counted: None,
        stats: SuperStats {
            packets: 1,
            too_big: 1,
            ..SuperStats::default()
        },
        out: frame.clone(),
        frame,
    }
}

pub fn parse_error(s: &mut SuperStats) {
    s.parse_errors = 1;
}
pub fn non_ip(s: &mut SuperStats) {
    s.non_ip = 1;
}
pub fn non_tenant(s: &mut SuperStats) {
    s.non_tenant = 1;
}
pub fn unknown_edge(s: &mut SuperStats) {
    s.unknown_edge = 1;
}
pub fn unknown_ue(s: &mut SuperStats) {
    s.unknown_ue = 1;
}
pub fn no_route(s: &mut SuperStats) {
    s.no_route = 1;
}

/// A super-node datapath with the fixture tenants and `edges`.
pub fn super_with(config: &SuperConfig, edges: &[EdgeNode]) -> anyhow::Result<SuperDatapath> {
    let mut dp = SuperDatapath::load(config)?;
    dp.set_tenants(&tenants())?;
    dp.set_edges(edges)?;
    Ok(dp)
}

/// Runs every case against `dp` and returns what did not match.
pub fn run_cases(dp: &SuperDatapath, cases: &[Case]) -> anyhow::Result<Mismatches> {
    let mut failures = Mismatches::default();
    for case in cases {
        let (counters, stats) = (dp.counters()?, dp.stats()?);
        let run = dp.run_packet(&case.frame)?;
        let deltas = super_deltas(&counters, &dp.counters()?);
        let stats_delta = dp.stats()?.since(&stats);
        let name = &case.name;
        failures.check(name, "verdict", &run.action, &case.verdict);
        let want: Vec<_> = case
            .counted
            .iter()
            .map(|(edge, t, d, bytes)| ((edge.clone(), *t, *d), (1, *bytes)))
            .collect();
        let got: Vec<_> = deltas.into_iter().collect();
        failures.check(name, "counter deltas", &got, &want);
        failures.check(name, "stats delta", &stats_delta, &case.stats);
        failures.check_frame(name, &run.packet, &case.out);
    }
    Ok(failures)
}
