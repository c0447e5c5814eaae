//! The crate's error type: one variant per failing step.

use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

use aya::maps::MapError;
use aya::maps::xdp::XdpMapError;
use aya::programs::ProgramError;
use ipnet::IpNet;

use hsn_core::TenantId;

/// Why a datapath operation failed. aya's errors are boxed: they are large (verifier logs)
/// and would make every `Result` of this crate large.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The crate was built with `HSN_EBPF_SKIP_BPF_BUILD=1`, so there is no object to load.
    #[error("eBPF object {program} is an empty stub (built with HSN_EBPF_SKIP_BPF_BUILD=1)")]
    ObjectNotBuilt { program: &'static str },
    /// A network name that cannot be a single bpffs path component.
    #[error("network name {name:?} cannot name a pin directory: {reason}")]
    InvalidNetworkName { name: String, reason: &'static str },
    /// statfs on the bpffs mount point failed.
    #[error("checking for bpffs at {path}: {source}")]
    Statfs {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    /// bpffs was not mounted and mounting it failed.
    #[error("bpffs is not mounted at {path} and mounting it failed: {source}")]
    MountBpffs {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    /// Creating the bpffs mount point or the per-network pin directory failed.
    #[error("creating {path}: {source}")]
    CreatePinDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Removing the per-network pin directory failed.
    #[error("removing pinned maps under {path}: {source}")]
    RemovePinDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Removing one stale pin (an incompatible state map, a defunct link) failed.
    #[error("removing stale pin {path}: {source}")]
    RemovePin {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Pinning a new XDP or tcx link, or taking over, releasing or removing a pinned one,
    /// failed.
    #[error("{step} pinned link {path} of {ifname}: {source}")]
    PinnedLink {
        ifname: String,
        path: PathBuf,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    /// A pin exists but could not be opened as a map.
    #[error("opening pinned map {path}: {source}")]
    OpenPinnedMap {
        path: PathBuf,
        #[source]
        source: MapError,
    },
    /// A pinned map was created by an incompatible program version.
    #[error(
        "pinned map {path} has {field} {pinned}, this program needs {expected}; \
         remove the pin (losing its counters) to start over"
    )]
    PinnedMapMismatch {
        path: PathBuf,
        field: &'static str,
        pinned: u32,
        expected: u32,
    },
    /// Parsing the object, creating or reusing its maps failed.
    #[error("loading eBPF object {program}: {source}")]
    LoadObject {
        program: &'static str,
        #[source]
        source: Box<aya::EbpfError>,
    },
    /// The object lacks a program or map this crate expects (a build mismatch).
    #[error("{name} is missing from eBPF object {program}")]
    MissingItem {
        program: &'static str,
        name: &'static str,
    },
    /// A map in the object has an unexpected type.
    #[error("map {name} in eBPF object {program}: {source}")]
    WrongMapType {
        program: &'static str,
        name: &'static str,
        #[source]
        source: MapError,
    },
    /// The program in the object is not of the kind its hook needs (XDP, or TC).
    #[error("program {program} in its eBPF object: {source}")]
    WrongProgramType {
        program: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    /// The verifier rejected the program.
    #[error("loading program {program} into the kernel: {source}")]
    LoadProgram {
        program: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    /// Neither native nor generic XDP could be attached.
    #[error("attaching {program} to {ifname}: native XDP: {native}; generic XDP: {generic}")]
    Attach {
        program: &'static str,
        ifname: String,
        native: Box<ProgramError>,
        #[source]
        generic: Box<ProgramError>,
    },
    /// A TC program could not be attached at the interface's tcx ingress (tcx needs Linux
    /// 6.6).
    #[error("attaching {program} to the tcx ingress of {ifname}: {source}")]
    AttachTc {
        program: &'static str,
        ifname: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// The program is already attached to this interface by this datapath.
    #[error("{program} is already attached to {ifname}")]
    AlreadyAttached {
        program: &'static str,
        ifname: String,
    },
    /// `detach` named an interface this datapath is not attached to.
    #[error("{program} is not attached to {ifname}")]
    NotAttached {
        program: &'static str,
        ifname: String,
    },
    /// Detaching failed.
    #[error("detaching {program} from {ifname}: {source}")]
    Detach {
        program: &'static str,
        ifname: String,
        #[source]
        source: Box<ProgramError>,
    },
    /// Two tenants claim the same prefix.
    #[error("prefix {prefix} is claimed by tenants {first} and {second}")]
    ConflictingPrefix {
        prefix: IpNet,
        first: TenantId,
        second: TenantId,
    },
    /// More prefixes of one family than one table generation holds.
    #[error("{count} {family} tenant prefixes exceed the map capacity of {max}")]
    TooManyPrefixes {
        family: &'static str,
        count: usize,
        max: u32,
    },
    /// Writing the unused generation of a tenant table map failed; packets still read the
    /// previous table, whole.
    #[error("writing tenant table map {map} (the previous table stays in use): {source}")]
    WriteTenants {
        map: &'static str,
        #[source]
        source: MapError,
    },
    /// Every edge counter slot is taken: this tenant cannot be counted.
    #[error(
        "tenant {tenant} needs a counter slot, but all {max} are taken by other tenants \
         (slots are never reused while the network's pinned counters exist)"
    )]
    TenantSlotsFull { tenant: u32, max: u32 },
    /// Reading an interface's index or MAC address failed.
    #[error("reading interface {ifname}: {source}")]
    Interface {
        ifname: String,
        #[source]
        source: io::Error,
    },
    /// Adding the next hop's egress device to the devmap failed.
    #[error("adding egress device {ifindex} to tx_ports: {source}")]
    AddTxPort {
        ifindex: u32,
        #[source]
        source: XdpMapError,
    },
    /// Writing or clearing the next-hop entry failed.
    #[error("updating the next hop: {source}")]
    WriteNextHop {
        #[source]
        source: MapError,
    },
    /// A tunnel whose two ends are not of one address family.
    #[error("tunnel from {local} to {remote}: both ends must be IPv4 or both IPv6")]
    TunnelFamilies { local: IpAddr, remote: IpAddr },
    /// A tunnel MTU too small to carry a minimal packet.
    #[error("tunnel MTU {mtu} of {ifname:?} is below {min}")]
    TunnelMtu { ifname: String, mtu: u32, min: u32 },
    /// An edge's way back that does not lead to the edge.
    #[error("edge {edge}: its way back tunnels to {remote}")]
    EdgeRouteMismatch { edge: IpAddr, remote: IpAddr },
    /// More tunnel peers (edges of a super node, super nodes of an edge) than the map holds.
    #[error("{count} tunnel peers exceed the map capacity of {max}")]
    TooManyPeers { count: usize, max: u32 },
    /// Writing or removing a tunnel peer (an edge of a super node, a super node of an edge)
    /// failed.
    #[error("updating tunnel peer {addr}: {source}")]
    WritePeer {
        addr: IpAddr,
        #[source]
        source: MapError,
    },
    /// Reading (listing or looking up) a map failed.
    #[error("reading map {map}: {source}")]
    ReadMap {
        map: &'static str,
        #[source]
        source: MapError,
    },
    /// Something only one hook's program can do was asked of the other's.
    #[error("{what} is not for {program} at {hook}")]
    NotForHook {
        program: &'static str,
        hook: crate::Hook,
        what: &'static str,
    },
    /// BPF_PROG_TEST_RUN failed.
    #[error("test-running {program}: {source}")]
    TestRun {
        program: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
}

impl Error {
    /// Every label [`Error::label`] returns, for metrics created at zero.
    pub const LABELS: &[&'static str] = &[
        "object_not_built",
        "invalid_network_name",
        "bpffs",
        "pin_dir",
        "pinned_link",
        "pinned_map",
        "load",
        "verifier",
        "attach",
        "detach",
        "invalid_tenants",
        "write_tenants",
        "interface",
        "write_next_hop",
        "invalid_tunnel",
        "write_peers",
        "read_map",
        "test_run",
    ];

    /// Whether an XDP attach failed because the interface runs another XDP program: one of
    /// the two modes answered EBUSY (a program in that mode) or EEXIST (one in the other
    /// mode); the other may just not be supported (loopback has no native XDP). A program
    /// that is not this datapath's, e.g. that of an agent still draining there.
    pub fn is_busy(&self) -> bool {
        let Self::Attach {
            native, generic, ..
        } = self
        else {
            return false;
        };
        let busy = |e: &ProgramError| {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
            while let Some(e) = source {
                if let Some(io) = e.downcast_ref::<std::io::Error>() {
                    return matches!(
                        io.raw_os_error(),
                        Some(nix::libc::EBUSY) | Some(nix::libc::EEXIST)
                    );
                }
                source = e.source();
            }
            false
        };
        busy(native) || busy(generic)
    }

    /// A short, stable label for metrics and events.
    pub fn label(&self) -> &'static str {
        match self {
            Self::ObjectNotBuilt { .. } => "object_not_built",
            Self::InvalidNetworkName { .. } => "invalid_network_name",
            Self::Statfs { .. } | Self::MountBpffs { .. } => "bpffs",
            Self::CreatePinDir { .. } | Self::RemovePinDir { .. } | Self::RemovePin { .. } => {
                "pin_dir"
            }
            Self::PinnedLink { .. } => "pinned_link",
            Self::OpenPinnedMap { .. } | Self::PinnedMapMismatch { .. } => "pinned_map",
            Self::LoadObject { .. }
            | Self::MissingItem { .. }
            | Self::WrongMapType { .. }
            | Self::WrongProgramType { .. } => "load",
            Self::LoadProgram { .. } => "verifier",
            Self::Attach { .. } | Self::AttachTc { .. } | Self::AlreadyAttached { .. } => "attach",
            Self::NotAttached { .. } | Self::Detach { .. } => "detach",
            Self::ConflictingPrefix { .. }
            | Self::TooManyPrefixes { .. }
            | Self::TenantSlotsFull { .. } => "invalid_tenants",
            Self::WriteTenants { .. } => "write_tenants",
            Self::Interface { .. } => "interface",
            Self::AddTxPort { .. } | Self::WriteNextHop { .. } => "write_next_hop",
            Self::TunnelFamilies { .. }
            | Self::TunnelMtu { .. }
            | Self::EdgeRouteMismatch { .. }
            | Self::TooManyPeers { .. } => "invalid_tunnel",
            Self::WritePeer { .. } => "write_peers",
            Self::ReadMap { .. } => "read_map",
            Self::TestRun { .. } | Self::NotForHook { .. } => "test_run",
        }
    }
}
