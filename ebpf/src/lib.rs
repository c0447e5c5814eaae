//! HSN datapath: XDP programs in C (`src/*.bpf.c`, `include/*.h`), built by `build.rs` for
//! XDP and a second time for TC ingress ([`Hook`]), and typed wrappers over aya to load,
//! attach, configure and read them.
//!
//! - [`EdgeDatapath`]: meters tenant traffic per (tenant, direction), tunnels tenant uplink
//!   to the assigned super node ([`NextHop`], IP in IP) and takes tenant downlink out of
//!   the super nodes' tunnels.
//! - [`SuperDatapath`]: meters tenant traffic per (edge, tenant, direction), the independent
//!   observation used to attest edge claims: uplink as it leaves an edge's tunnel, downlink
//!   as it enters one ([`EdgeNode`]).
//!
//! Counters are monotonic and pinned per network ([`PinDir`]) so they survive restarts;
//! callers compute deltas. With a pin directory the maps the programs read and the XDP
//! or tcx links are pinned too: the program keeps running while its agent restarts, and the next
//! load replaces it atomically. Loading needs root (CAP_BPF + CAP_NET_ADMIN).

mod abi;
mod bpffs;
mod datapath;
mod edge;
mod error;
mod generation;
mod layout;
mod outer;
mod prefixes;
mod replace;
mod slots;
mod stats;
mod super_node;
mod tc;
mod tenants;
mod tunnel;
mod types;
mod xdp;

use aya::maps::MapError;

pub use bpffs::{DEFAULT_BPFFS, PinDir, ReplacedPin, ensure_bpffs};
pub use datapath::Datapath;
pub use edge::{EdgeConfig, EdgeDatapath, EdgeMaps};
pub use error::Error;
pub use prefixes::TenantPrefixes;
pub use stats::{EdgeStats, SuperStats};
pub use super_node::{SuperConfig, SuperDatapath, SuperMaps};
pub use tunnel::NextHop;
pub use types::{EdgeNode, EdgeTenantCounter, TenantCounter};
pub use xdp::{AttachMode, Hook, PacketRun, XdpAction};

/// Deleting an absent key is not a failure when the goal is "absent".
fn is_not_found(error: &MapError) -> bool {
    match error {
        MapError::KeyNotFound => true,
        MapError::SyscallError(e) => e.io_error.raw_os_error() == Some(nix::libc::ENOENT),
        _ => false,
    }
}
