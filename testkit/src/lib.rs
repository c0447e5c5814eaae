//! HSN's one test toolkit, used by every crate's tests and the benchmarks.
//!
//! * Real Kubernetes control planes ([`cluster`], re-exported here): [`ControlPlane`]
//!   (etcd + kube-apiserver, seconds to start) and [`KwokCluster`] (a full control plane
//!   with kwok's fake nodes), from the binaries `make tools` builds into `bin/`.
//! * Real nodes ([`node`]): containerd + kubelet in namespaces of their own, registered to
//!   a [`KwokCluster`] next to kwok's fake nodes, running images built without a registry.
//! * CometBFT validator networks on loopback ([`comet`]).
//! * Network-namespace topologies ([`netns`]): namespaces, veth pairs, captures, processes
//!   and threads inside a namespace.
//! * The datapath's namespace chain ([`topology`]: `ue ↔ edge ↔ super ↔ service` with one
//!   addressing plan), traffic across it and what of it crossed the UE's link ([`traffic`]),
//!   frames for packet fixtures ([`packet`]), and what BPF tests need ([`bpf`]: skipping
//!   without root, a private bpffs, the XDP program on an interface).
//! * Container images built without a daemon, read back and checked against their
//!   Dockerfiles ([`images`]).
//! * `promtool check metrics` over a component's `/metrics` ([`promtool`]).
//! * Waiting on conditions with a deadline ([`wait_for`], [`wait_for_ok`]): tests never
//!   sleep for a fixed time.
//! * With feature `operator`, the operator's harness (`operator`): a hub and MEC clusters,
//!   the operator as a process, a member's objects as the operator writes them.
//! * Ledger test data (`ledger_fixtures`, feature `ledger-fixtures`): deterministic keys,
//!   signed records and observations, a ledger's key files; and a ledger server in the test
//!   process (`ledger`, feature `ledger`), the `hsn-ledger` binary as processes, alone or
//!   replicated beside CometBFT validators (`ledger_net`, feature `ledger`).
//!
//! Everything a test starts is cleaned up when dropped, also when the test panics, and the
//! control planes also when the test process is killed outright (`PR_SET_PDEATHSIG` plus a
//! watchdog process).

#![warn(missing_docs)]

pub mod bpf;
pub mod cluster;
pub mod comet;
pub mod images;
#[cfg(feature = "ledger")]
pub mod ledger;
#[cfg(feature = "ledger-fixtures")]
pub mod ledger_fixtures;
#[cfg(feature = "ledger")]
pub mod ledger_net;
pub mod netns;
pub mod node;
#[cfg(feature = "operator")]
pub mod operator;
pub mod packet;
pub mod promtool;
mod spawn;
pub mod topology;
pub mod traffic;
mod wait;

pub use cluster::error::Error;
pub use cluster::ports::free_ports;
pub use cluster::{
    ALL_BINARIES, ControlPlane, FakeNode, KWOK_NODE_ANNOTATION, KwokCluster, NODE_BINARIES, bin,
    bin_dir, install_crds, process_alive, require_binaries,
};
pub use wait::{POLL_INTERVAL, wait_for, wait_for_ok};

/// A binary of this workspace as cargo built it for the running test or bench (release
/// under `cargo bench`): cargo names it in `CARGO_BIN_EXE_<name>` while running that
/// package's tests and benches; otherwise the one in the running executable's profile
/// directory (the parent of its `deps/`), which `cargo test --workspace` fills.
pub fn cargo_bin(name: &str) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context as _;
    if let Some(path) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return Ok(path.into());
    }
    let exe = std::env::current_exe().context("finding the running executable")?;
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .map(|profile| profile.join(name))
        .context("the running executable has no profile directory")?;
    anyhow::ensure!(
        path.exists(),
        "{} does not exist: build it first (`cargo build -p {name}`; `cargo test --workspace` does)",
        path.display()
    );
    Ok(path)
}

/// The machine as a bench's report names it: kernel, CPUs and the load average (1, 5 and
/// 15 minutes) at the moment of the call, which every benchmark prints at its start and end
/// so that a figure comes with the load it was measured under.
pub fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let load = read("/proc/loadavg");
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "kernel {}, {cpus} CPUs, load average {}",
        read("/proc/sys/kernel/osrelease").trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}
