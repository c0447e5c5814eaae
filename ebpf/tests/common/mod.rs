//! Shared fixture helpers: tenant set-up, counter deltas; root checks, frames and topology
//! come from hsn-testkit.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different subset"
)]

pub mod edge_case;
pub mod topology;

use std::collections::BTreeMap;
use std::fmt::Debug;

use hsn_core::{Direction, MacAddr, TenantId};
use hsn_ebpf::{EdgeTenantCounter, TenantCounter, TenantPrefixes};
pub use hsn_testkit::require_root;
/// User equipment, in no tenant prefix.
pub use hsn_testkit::topology::{UE_V4, UE_V6};

pub const TENANT_A: TenantId = TenantId::new(7).unwrap();
pub const TENANT_B: TenantId = TenantId::new(9).unwrap();
/// Tenant A's IPv4 prefix; tenant B owns a /24 inside it (longest prefix wins).
pub const A_V4: &str = "10.7.0.10";
pub const B_V4: &str = "10.7.9.5";
pub const A_V6: &str = "2001:db8:7::10";
pub const B_V6: &str = "2001:db8:9::5";

pub fn tenants() -> Vec<TenantPrefixes> {
    vec![
        TenantPrefixes {
            tenant: TENANT_A,
            prefixes: vec![
                "10.7.0.0/16".parse().unwrap(),
                "2001:db8:7::/48".parse().unwrap(),
            ],
        },
        TenantPrefixes {
            tenant: TENANT_B,
            prefixes: vec![
                "10.7.9.0/24".parse().unwrap(),
                "2001:db8:9::/64".parse().unwrap(),
            ],
        },
    ]
}

pub const SUPER_MAC: MacAddr = MacAddr([0x02, 0x53, 0x55, 0x50, 0x45, 0x52]);
pub const EDGE_OUT_MAC: MacAddr = MacAddr([0x02, 0x45, 0x44, 0x47, 0x45, 0x01]);

/// (packets, bytes) per key.
pub type Deltas<K> = BTreeMap<K, (u64, u64)>;

/// Per (tenant, direction) change between two edge counter snapshots.
pub fn edge_deltas(
    before: &[TenantCounter],
    after: &[TenantCounter],
) -> Deltas<(TenantId, Direction)> {
    let old: BTreeMap<_, _> = before
        .iter()
        .map(|c| ((c.tenant, c.direction), (c.packets, c.bytes)))
        .collect();
    after
        .iter()
        .filter_map(|c| {
            let (p, b) = old
                .get(&(c.tenant, c.direction))
                .copied()
                .unwrap_or_default();
            let d = (c.packets - p, c.bytes - b);
            (d != (0, 0)).then_some(((c.tenant, c.direction), d))
        })
        .collect()
}

/// Per (edge, tenant, direction) change between two super-node counter snapshots.
pub fn super_deltas(
    before: &[EdgeTenantCounter],
    after: &[EdgeTenantCounter],
) -> Deltas<(String, TenantId, Direction)> {
    let key = |c: &EdgeTenantCounter| (c.edge.to_string(), c.tenant, c.direction);
    let old: BTreeMap<_, _> = before
        .iter()
        .map(|c| (key(c), (c.packets, c.bytes)))
        .collect();
    after
        .iter()
        .filter_map(|c| {
            let (p, b) = old.get(&key(c)).copied().unwrap_or_default();
            let d = (c.packets - p, c.bytes - b);
            (d != (0, 0)).then_some((key(c), d))
        })
        .collect()
}

/// What a fixture table run got wrong, one line per mismatch.
#[derive(Debug, Default)]
pub struct Mismatches(Vec<String>);

impl Mismatches {
    /// Notes `name: what got, want want` unless they are equal.
    pub fn check<T: PartialEq + Debug>(&mut self, name: &str, what: &str, got: &T, want: &T) {
        if got != want {
            self.0
                .push(format!("{name}: {what} {got:?}, want {want:?}"));
        }
    }

    /// Notes a mismatch described by the caller.
    pub fn push(&mut self, line: String) {
        self.0.push(line);
    }

    /// Fails listing every mismatch.
    #[track_caller]
    pub fn assert_none(&self) {
        assert!(
            self.0.is_empty(),
            "{} mismatch(es):\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}
