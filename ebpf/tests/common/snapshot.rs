//! Every counter an end-to-end test compares (`netns_e2e`, `routed_e2e`, `tc_e2e`), read at
//! one moment, and the super nodes' changes between two such moments.

use anyhow::ensure;
use hsn_core::{Direction, TenantId};
use hsn_ebpf::{
    EdgeDatapath, EdgeStats, EdgeTenantCounter, SuperDatapath, SuperStats, TenantCounter,
};

use super::{Deltas, super_deltas};

/// (packets, bytes) per (tenant, direction).
pub type PerTenant = Deltas<(TenantId, Direction)>;

/// The edge's and both super nodes' counters and outcome stats.
#[derive(Debug)]
pub struct Snapshot {
    pub edge: Vec<TenantCounter>,
    pub edge_stats: EdgeStats,
    pub supers: [Vec<EdgeTenantCounter>; 2],
    pub super_stats: [SuperStats; 2],
}

impl Snapshot {
    pub fn take(edge: &EdgeDatapath, supers: &[SuperDatapath; 2]) -> anyhow::Result<Self> {
        Ok(Self {
            edge: edge.counters()?,
            edge_stats: edge.stats()?,
            supers: [supers[0].counters()?, supers[1].counters()?],
            super_stats: [supers[0].stats()?, supers[1].stats()?],
        })
    }

    /// Per super node, its (tenant, direction) changes since `before`; every one must be
    /// under `edge` (the edge's counter key: its tunnel address).
    pub fn super_deltas(&self, before: &Self, edge: &str) -> anyhow::Result<[PerTenant; 2]> {
        let one = |i: usize| -> anyhow::Result<PerTenant> {
            let mut out = PerTenant::new();
            for ((key, tenant, dir), d) in super_deltas(&before.supers[i], &self.supers[i]) {
                ensure!(key == edge, "super node {i} counted edge {key}, not {edge}");
                out.insert((tenant, dir), d);
            }
            Ok(out)
        };
        Ok([one(0)?, one(1)?])
    }

    /// Both super nodes' changes since `before`, summed (see [`Self::super_deltas`]).
    pub fn super_sum(&self, before: &Self, edge: &str) -> anyhow::Result<PerTenant> {
        let mut out = PerTenant::new();
        for per_super in self.super_deltas(before, edge)? {
            for (k, (p, b)) in per_super {
                let e = out.entry(k).or_default();
                *e = (e.0 + p, e.1 + b);
            }
        }
        Ok(out)
    }
}
