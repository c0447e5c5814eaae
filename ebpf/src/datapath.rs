//! What the edge and super-node datapaths share: the object loaded with its pins, its XDP or
//! TC links and its tenant tables. Each role's own maps are the type parameter.

use std::fmt;

use crate::bpffs::{PinDir, ReplacedPin};
use crate::tenants::TenantMaps;
use crate::xdp::{Loaded, ObjectSpec};
use crate::{AttachMode, Error, Hook, PacketRun};

/// A loaded program of one role, for XDP or TC ([`Hook`]), [`EdgeDatapath`](crate::EdgeDatapath) or
/// [`SuperDatapath`](crate::SuperDatapath), and its maps. Without a pin directory dropping
/// it detaches the program; with one, program, links and maps stay for the next load.
pub struct Datapath<R> {
    pub(crate) loaded: Loaded,
    pub(crate) tenants: TenantMaps,
    /// The role's own maps.
    pub(crate) maps: R,
}

/// The maps only one role's object has, taken out of it at load.
pub(crate) trait Role: Sized {
    /// The datapath's name, for `Debug`.
    const NAME: &'static str;

    fn take(loaded: &mut Loaded) -> Result<Self, Error>;
}

// Manual: aya's per-CPU and devmap types have no Debug.
impl<R: Role> fmt::Debug for Datapath<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(R::NAME)
            .field("loaded", &self.loaded)
            .finish_non_exhaustive()
    }
}

/// Loads and verifies a role's object built for `hook`, reusing the maps pinned in `pin`.
pub(crate) fn load<R: Role>(
    spec: &ObjectSpec,
    hook: Hook,
    pin: Option<&PinDir>,
    globals: &[(&'static str, u8)],
) -> Result<Datapath<R>, Error> {
    let mut loaded = Loaded::load(spec, hook, pin, globals)?;
    Ok(Datapath {
        tenants: TenantMaps::take(&mut loaded, pin.is_none())?,
        maps: R::take(&mut loaded)?,
        loaded,
    })
}

impl<R> Datapath<R> {
    /// The hook the program was loaded for.
    pub fn hook(&self) -> Hook {
        self.loaded.hook()
    }

    /// Attaches to `ifname`: native XDP, or generic XDP when the driver has none; for
    /// [`Hook::Tc`], the tcx ingress. With a pin directory the link is pinned, and a link an
    /// earlier load for the same hook pinned on `ifname` is taken over: its program is
    /// replaced atomically, its mode kept. One the other hook pinned there is released
    /// first (a node that switched hooks; not atomic: a packet may meet neither program
    /// meanwhile, never both).
    pub fn attach(&mut self, ifname: &str) -> Result<AttachMode, Error> {
        self.loaded.attach(ifname)
    }

    /// Detaches from `ifname`, removing its pinned link.
    pub fn detach(&mut self, ifname: &str) -> Result<(), Error> {
        self.loaded.detach(ifname)
    }

    /// The mode of a program an earlier load for the same hook left attached to `ifname`
    /// through a pinned link (still running, on the same pinned maps); `attach` would take
    /// it over.
    pub fn pinned_attachment(&self, ifname: &str) -> Option<AttachMode> {
        self.loaded.pinned_attachment(ifname)
    }

    /// State-map pins of an incompatible build this load replaced with empty maps (to log).
    pub fn replaced_pins(&self) -> &[ReplacedPin] {
        self.loaded.replaced_pins()
    }

    /// Interfaces the program is attached to, with the mode each got.
    pub fn attachments(&self) -> Vec<(String, AttachMode)> {
        self.loaded.attachments()
    }

    /// Runs one frame through the program (BPF_PROG_TEST_RUN, on an skb for TC) against the
    /// live maps.
    pub fn run_packet(&self, frame: &[u8]) -> Result<PacketRun, Error> {
        self.loaded.run(frame)
    }

    /// [`Self::run_packet`] for a [`Hook::Tc`] program with `frame` a GSO packet of
    /// `gso_size`-byte segments, as GRO leaves one (counted as those segments). Refused for
    /// XDP, which never sees one.
    pub fn run_gso_packet(&self, frame: &[u8], gso_size: u16) -> Result<PacketRun, Error> {
        self.loaded.run_gso(frame, gso_size)
    }
}
