//! Shared test helpers: a fake datapath, routes tables, root check.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use hsn_agent::datapath::{CounterKey, Datapath, Totals};
use hsn_agent::spool::{Spool, SpoolHeader};
use hsn_api::network::{Prefix, Tenant};
use hsn_api::routes::{EdgeRoute, ROUTES_VERSION, RoutesTable, SuperRoute};
use hsn_core::{Direction, Role, TenantId};
use hsn_ebpf::{AttachMode, Error, NextHop, TenantPrefixes};
use hsn_testkit::ledger::EPOCH_SECONDS;

/// Tenant acme (7), in the routes tables and spools of these tests.
pub const ACME: TenantId = TenantId::new(7).unwrap();

/// What the fake datapath was told, shared with the test.
#[derive(Debug, Default)]
pub struct FakeState {
    pub tenants: Vec<TenantPrefixes>,
    pub hop: Option<NextHop>,
    pub supers: Vec<std::net::IpAddr>,
    pub edges: Vec<hsn_ebpf::EdgeNode>,
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
    fn set_supers(&mut self, supers: &[std::net::IpAddr]) -> Result<(), Error> {
        self.state().supers = supers.to_vec();
        Ok(())
    }
    fn set_edges(&mut self, edges: &[hsn_ebpf::EdgeNode]) -> Result<(), Error> {
        self.state().edges = edges.to_vec();
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
    fn detach(&mut self, _: &str) -> Result<(), Error> {
        Ok(())
    }
}

/// A table with supers `a/super-0` (10.0.0.160) and `a/super-1` (10.0.0.161), edge `n1` on `super_id`, tenant acme (7).
pub fn table(super_id: &str) -> RoutesTable {
    RoutesTable {
        version: ROUTES_VERSION,
        network: "metro".into(),
        cluster: String::new(),
        epoch_seconds: 60,
        supers: [("a/super-0", "10.0.0.160"), ("a/super-1", "10.0.0.161")]
            .iter()
            .map(|(id, address)| SuperRoute {
                id: id.parse().expect("a super id"),
                address: Some(address.parse().expect("an address")),
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

/// The spool header of agent `agent` (`role`) of `network`, with public key `public_key`.
pub fn spool_header(network: &str, role: Role, agent: &str, public_key: String) -> SpoolHeader {
    SpoolHeader {
        network: network.into(),
        role: role.as_str().into(),
        agent: agent.into(),
        public_key,
    }
}

/// The spool header of the edge on `n1` in network `metro`.
pub fn edge_n1_header() -> SpoolHeader {
    spool_header("metro", Role::Edge, "edge-n1", "ab".repeat(32))
}

/// Two ended epochs (three and two epochs ago), by the wall clock the ledger uses.
pub fn past_epochs() -> [u64; 2] {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let current = now / u64::from(EPOCH_SECONDS);
    [current - 3, current - 2]
}

/// Closes `epochs` into `dir` through the agent's spool: acme's (uplink, downlink) bytes
/// grow by `step` per epoch, a packet per 500 bytes; a super node's counters are of `edge`.
pub fn write_spool(
    dir: &Path,
    header: &SpoolHeader,
    edge: Option<IpAddr>,
    epochs: &[u64],
    step: (u64, u64),
) {
    let names = BTreeMap::from([(ACME, "acme".to_owned())]);
    let mut spool = Spool::open(dir).unwrap();
    for (n, &epoch) in (1..).zip(epochs) {
        let counter = |direction, bytes: u64| {
            let key = CounterKey {
                tenant: ACME,
                direction,
                edge,
            };
            let totals = Totals {
                packets: n * bytes / 500,
                bytes: n * bytes,
            };
            (key, totals)
        };
        let now = [
            counter(Direction::Uplink, step.0),
            counter(Direction::Downlink, step.1),
        ];
        let pending = spool
            .prepare(header, epoch, EPOCH_SECONDS, &now, &names)
            .unwrap();
        spool.commit(pending).unwrap();
    }
}

/// UDP payload of [`udp`]'s frames.
pub const UDP_PAYLOAD: usize = 100;
/// IPv4 total length of [`udp`]'s frames: 20 + 8 + payload.
pub const UDP_L3: u64 = 28 + UDP_PAYLOAD as u64;

/// An Ethernet + IPv4 + UDP frame from `src` to `dst`.
pub fn udp(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let total = u16::try_from(UDP_L3).unwrap();
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0];
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let sum = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !u16::try_from((sum & 0xffff) + (sum >> 16)).unwrap();
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    f.extend_from_slice(&ip);
    let udp_len = u16::try_from(8 + UDP_PAYLOAD).unwrap();
    f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35]);
    f.extend_from_slice(&udp_len.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend(std::iter::repeat_n(0xab, UDP_PAYLOAD));
    f
}
