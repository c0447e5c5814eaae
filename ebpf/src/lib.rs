//! HSN datapath: XDP programs in C (`src/*.bpf.c`, `include/*.h`), built by `build.rs`, and
//! typed wrappers over aya to load, attach, configure and read them.
//!
//! - [`EdgeDatapath`]: meters tenant traffic per (tenant, direction) and redirects tenant
//!   uplink to the assigned super node ([`NextHop`]).
//! - [`SuperDatapath`]: meters tenant traffic per (edge, tenant, direction), the independent
//!   observation used to attest edge claims.
//!
//! Counters are monotonic and pinned per network ([`PinDir`]) so they survive restarts;
//! callers compute deltas. With a pin directory the maps the programs read and the XDP
//! links are pinned too: the program keeps running while its agent restarts, and the next
//! load replaces it atomically. Loading needs root (CAP_BPF + CAP_NET_ADMIN).

mod abi;
mod bpffs;
mod datapath;
mod edge;
mod error;
mod generation;
mod layout;
mod prefixes;
mod replace;
mod slots;
mod stats;
mod super_node;
mod tenants;
mod types;
mod xdp;

use aya::maps::MapError;

pub use bpffs::{DEFAULT_BPFFS, PinDir, ReplacedPin, ensure_bpffs};
pub use datapath::Datapath;
pub use edge::{EdgeConfig, EdgeDatapath, EdgeMaps, NextHop};
pub use error::Error;
pub use prefixes::TenantPrefixes;
pub use stats::{EdgeStats, SuperStats};
pub use super_node::{SuperConfig, SuperDatapath, SuperMaps};
pub use types::{EdgeNode, EdgeTenantCounter, TenantCounter};
pub use xdp::{AttachMode, PacketRun, XdpAction};

/// Deleting an absent key is not a failure when the goal is "absent".
fn is_not_found(error: &MapError) -> bool {
    match error {
        MapError::KeyNotFound => true,
        MapError::SyscallError(e) => e.io_error.raw_os_error() == Some(nix::libc::ENOENT),
        _ => false,
    }
}
