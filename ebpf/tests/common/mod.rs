//! Shared fixture helpers: tenant set-up, counter deltas; root checks, frames and topology
//! come from hsn-testkit.

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different subset"
)]

pub mod edge_case;
pub mod routed;
pub mod snapshot;
pub mod super_case;
pub mod tc;
pub mod topology;
pub mod tunnel;

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

/// How a hook's programs attach to the tests' veths.
pub fn attach_mode(hook: hsn_ebpf::Hook) -> hsn_ebpf::AttachMode {
    match hook {
        hsn_ebpf::Hook::Xdp => hsn_ebpf::AttachMode::Native,
        hsn_ebpf::Hook::Tc => hsn_ebpf::AttachMode::Tcx,
    }
}

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
/// The tunnel's ends in the fixtures: the edge and its super node, both families.
pub const EDGE_ADDR_V4: &str = "192.0.2.1";
pub const SUPER_ADDR_V4: &str = "198.51.100.2";
pub const EDGE_ADDR_V6: &str = "2001:db8:e::1";
pub const SUPER_ADDR_V6: &str = "2001:db8:5::2";

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

    /// Notes where the frame a program left differs from the expected one, if it does.
    pub fn check_frame(&mut self, name: &str, got: &[u8], want: &[u8]) {
        if got == want {
            return;
        }
        let at = got
            .iter()
            .zip(want)
            .position(|(g, w)| g != w)
            .unwrap_or(got.len().min(want.len()));
        let window = |b: &[u8]| {
            b.iter()
                .skip(at.saturating_sub(4))
                .take(16)
                .map(|x| format!("{x:02x}"))
                .collect::<String>()
        };
        self.0.push(format!(
            "{name}: output frame ({} bytes) differs from expected ({} bytes) at byte {at}: \
             got ..{}.., want ..{}.. (from byte {})",
            got.len(),
            want.len(),
            window(got),
            window(want),
            at.saturating_sub(4)
        ));
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
