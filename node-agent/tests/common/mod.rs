//! Shared test helpers: a fake datapath, routes tables, root check.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::sync::{Arc, Mutex};

use hsn_agent::datapath::{CounterKey, Datapath, Totals};
use hsn_api::network::{Prefix, Tenant};
use hsn_api::routes::{EdgeRoute, ROUTES_VERSION, RoutesTable, SuperRoute};
use hsn_ebpf::{AttachMode, Error, NextHop, TenantPrefixes};

/// What the fake datapath was told, shared with the test.
#[derive(Debug, Default)]
pub struct FakeState {
    pub tenants: Vec<TenantPrefixes>,
    pub hop: Option<NextHop>,
    pub writes: usize,
}

/// A datapath that records writes; counters are whatever the test puts in.
#[derive(Debug, Clone, Default)]
pub struct FakeDatapath(pub Arc<Mutex<FakeState>>);

impl FakeDatapath {
    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().unwrap()
    }
}

impl Datapath for FakeDatapath {
    fn set_tenants(&mut self, tenants: &[TenantPrefixes]) -> Result<(), Error> {
        let mut s = self.state();
        s.tenants = tenants.to_vec();
        s.writes += 1;
        Ok(())
    }
    fn set_next_hop(&mut self, hop: Option<NextHop>) -> Result<(), Error> {
        self.state().hop = hop;
        Ok(())
    }
    fn counters(&self) -> Result<Vec<(CounterKey, Totals)>, Error> {
        Ok(Vec::new())
    }
    fn parse_errors(&self) -> Result<u64, Error> {
        Ok(0)
    }
    fn attach(&mut self, _ifname: &str) -> Result<AttachMode, Error> {
        Ok(AttachMode::Generic)
    }
}

/// A table with supers `a/super-0` and `a/super-1`, edge `n1` on `super_id`, tenant acme (7).
pub fn table(super_id: &str) -> RoutesTable {
    RoutesTable {
        version: ROUTES_VERSION,
        network: "metro".into(),
        cluster: String::new(),
        epoch_seconds: 60,
        supers: ["a/super-0", "a/super-1"]
            .iter()
            .map(|id| SuperRoute {
                id: id.parse().expect("a super id"),
                address: None,
            })
            .collect(),
        edges: vec![EdgeRoute::new("n1", super_id.parse().expect("a super id"))],
        tenants: vec![Tenant {
            name: "acme".into(),
            id: 7,
            prefixes: vec![Prefix("10.7.0.0/16".into())],
        }],
    }
}

/// True when the test may use BPF; otherwise says why it is skipped.
#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub use hsn_testkit::bpf::can_bpf;

/// bpffs mounted on a temporary directory by this process, so agents it starts (`ip netns
/// exec` children get a copy of our mounts) share it across restarts; unmounted on drop.
pub struct Bpffs(pub hsn_testkit::bpf::Bpffs);

impl Bpffs {
    pub fn mount() -> anyhow::Result<Self> {
        let dir = hsn_testkit::bpf::Bpffs::new()?;
        hsn_ebpf::ensure_bpffs(dir.path())?;
        Ok(Self(dir))
    }
}
