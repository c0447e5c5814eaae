//! Loading an embedded object, attaching its program (XDP, or TC: [`Hook`], `tc.rs`), and
//! test-running packets (`run.rs`).

use std::fmt;
use std::io;
use std::path::PathBuf;

use aya::maps::{Map, MapError};
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::tc::SchedClassifierLinkId;
use aya::programs::xdp::{XdpLink, XdpLinkId, XdpMode};
use aya::programs::{ProgramError, SchedClassifier, Xdp};
use aya::{Ebpf, EbpfLoader};

use crate::Error;
use crate::bpffs::{PinDir, PinnedMap, ReplacedPin, check_pinned};
use crate::tc;

mod run;

pub use run::{PacketRun, XdpAction};

/// The kernel hook the programs run at, chosen at load: one C source is built for both
/// (`include/hsn_ctx.h`), with the same parse, tenant lookup, metering and tunnel. Both
/// count into the same maps, pinned under the same names, so a node that switches hooks
/// keeps its counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Hook {
    /// XDP, native or generic: the fastest, the default.
    #[default]
    Xdp,
    /// TC ingress through a tcx link (Linux 6.6+), for where XDP cannot serve: a device
    /// without native XDP, traffic that must meet the stack as an skb. It sees packets after
    /// GRO and counts a GSO packet as the packets it stands for, so its counts equal XDP's.
    Tc,
}

impl Hook {
    /// The modes a link of this hook is attached in.
    fn modes(self) -> &'static [AttachMode] {
        match self {
            Self::Xdp => &[AttachMode::Native, AttachMode::Generic],
            Self::Tc => &[AttachMode::Tcx],
        }
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Xdp => "xdp",
            Self::Tc => "tc",
        })
    }
}

/// How a program ended up attached to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachMode {
    /// Native (driver) XDP.
    Native,
    /// Generic (SKB) XDP: the driver has no XDP support; slower, same semantics.
    Generic,
    /// TC ingress, a tcx link ([`Hook::Tc`]).
    Tcx,
}

impl AttachMode {
    /// The hook a program attached in this mode runs at.
    pub fn hook(self) -> Hook {
        match self {
            Self::Native | Self::Generic => Hook::Xdp,
            Self::Tcx => Hook::Tc,
        }
    }
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Generic => "generic",
            Self::Tcx => "tcx",
        })
    }
}

/// One embedded object, built for both hooks: its program and the maps pinned per network.
#[derive(Debug)]
pub(crate) struct ObjectSpec {
    pub program: &'static str,
    /// The object built for XDP.
    pub bytes: &'static [u8],
    /// The same built for TC (`-DHSN_TC`): the same program and map names.
    pub tc_bytes: &'static [u8],
    pub pinned: &'static [PinnedMap],
    /// The tenant table maps (`tenant_pins!`), pinned like `pinned`.
    pub tenant_pins: &'static [PinnedMap],
}

#[derive(Debug)]
enum Link {
    /// Owned by the program (no pin directory): detached when the datapath is dropped.
    Owned(XdpLinkId),
    /// The same for a TC program.
    OwnedTc(SchedClassifierLinkId),
    /// Pinned: stays attached after the datapath (or the process) is gone, until `detach`
    /// or [`PinDir::remove`] removes the pin.
    Pinned { fd: FdLink, path: PathBuf },
}

#[derive(Debug)]
struct Attachment {
    ifname: String,
    mode: AttachMode,
    link: Link,
}

/// Times a program is offered to the verifier when it gives up with EAGAIN, which it does
/// when a signal reaches the loading thread while it works (the super program's
/// verification takes seconds); libbpf tries five times too.
const LOAD_ATTEMPTS: usize = 5;

/// Whether a load failed only because the verifier was interrupted (EAGAIN).
fn interrupted(e: &aya::programs::ProgramError) -> bool {
    matches!(e, aya::programs::ProgramError::LoadError { io_error, .. }
        if io_error.kind() == std::io::ErrorKind::WouldBlock)
}

/// A loaded object and where its program is attached. Without a pin directory, dropping
/// it detaches the program (aya detaches owned links on drop); with one, the links and
/// maps stay pinned and the program keeps running until a later load replaces it.
#[derive(Debug)]
pub(crate) struct Loaded {
    ebpf: Ebpf,
    program: &'static str,
    hook: Hook,
    pin: Option<PinDir>,
    attachments: Vec<Attachment>,
    replaced_pins: Vec<ReplacedPin>,
}

impl Loaded {
    /// Loads the object built for `hook`, reusing the pinned maps in `pin` when it is set,
    /// and loads the program into the kernel (the verifier runs here). `globals` are `const
    /// volatile u8`s.
    pub(crate) fn load(
        spec: &ObjectSpec,
        hook: Hook,
        pin: Option<&PinDir>,
        globals: &[(&'static str, u8)],
    ) -> Result<Self, Error> {
        let bytes = match hook {
            Hook::Xdp => spec.bytes,
            Hook::Tc => spec.tc_bytes,
        };
        if bytes.is_empty() {
            return Err(Error::ObjectNotBuilt {
                program: spec.program,
            });
        }
        let mut loader = EbpfLoader::new();
        for (name, value) in globals {
            loader.override_global(name, value, true);
        }
        let load_err = |source| Error::LoadObject {
            program: spec.program,
            source: Box::new(source),
        };
        let mut replaced_pins = Vec::new();
        if let Some(pin) = pin {
            pin.prepare()?;
            let object = aya_obj::Object::parse(bytes)
                .map_err(|e| load_err(aya::EbpfError::ParseError(e)))?;
            for maps in [spec.pinned, spec.tenant_pins] {
                replaced_pins.extend(check_pinned(pin, maps, &object, spec.program)?);
            }
            for map in spec.pinned.iter().chain(spec.tenant_pins) {
                loader.map_pin_path(map.name, pin.map_path(map.pin));
            }
        }
        let ebpf = loader.load(bytes).map_err(load_err)?;
        let mut loaded = Self {
            ebpf,
            program: spec.program,
            hook,
            pin: pin.cloned(),
            attachments: Vec::new(),
            replaced_pins,
        };
        let mut attempt = 1;
        loop {
            let verified = match hook {
                Hook::Xdp => loaded.xdp()?.load(),
                Hook::Tc => loaded.tc()?.load(),
            };
            match verified {
                Err(e) if interrupted(&e) && attempt < LOAD_ATTEMPTS => attempt += 1,
                verified => {
                    verified.map_err(|source| Error::LoadProgram {
                        program: spec.program,
                        source: Box::new(source),
                    })?;
                    return Ok(loaded);
                }
            }
        }
    }

    /// Takes a map out of the object as a typed aya map (the program keeps its reference).
    pub(crate) fn take_map<M>(&mut self, name: &'static str) -> Result<M, Error>
    where
        M: TryFrom<Map, Error = MapError>,
    {
        let map = self.ebpf.take_map(name).ok_or(Error::MissingItem {
            program: self.program,
            name,
        })?;
        M::try_from(map).map_err(|source| Error::WrongMapType {
            program: self.program,
            name,
            source,
        })
    }

    /// The hook the program was built and loaded for.
    pub(crate) fn hook(&self) -> Hook {
        self.hook
    }

    fn xdp(&mut self) -> Result<&mut Xdp, Error> {
        as_program(self.program, self.ebpf.program_mut(self.program))
    }

    fn tc(&mut self) -> Result<&mut SchedClassifier, Error> {
        as_program(self.program, self.ebpf.program_mut(self.program))
    }

    /// XDP: attaches in native mode, falling back to generic mode when the driver lacks XDP;
    /// TC: at the tcx ingress. With a pin directory, a link an earlier load of the same hook
    /// pinned on `ifname` is taken over: the kernel swaps its program for this one
    /// atomically (no packet sees no program), and the link keeps its mode. Otherwise a new
    /// link is attached and pinned. A link of the other hook pinned there (the node switched
    /// hooks) is released first, and its program detached: not atomically, a packet may
    /// meet neither program while the hook changes, never both.
    pub(crate) fn attach(&mut self, ifname: &str) -> Result<AttachMode, Error> {
        let program = self.program;
        if self.attachments.iter().any(|a| a.ifname == ifname) {
            return Err(Error::AlreadyAttached {
                program,
                ifname: ifname.to_owned(),
            });
        }
        let Some(pin) = self.pin.clone() else {
            let (link, mode) = self.attach_new(ifname)?;
            self.attachments.push(Attachment {
                ifname: ifname.to_owned(),
                mode,
                link,
            });
            return Ok(mode);
        };
        self.release_other_hook(&pin, ifname)?;
        if let Some(mode) = self.pinned_attachment(ifname) {
            let path = pin.link_path(program, ifname, mode);
            if let Some(fd) = self.take_over(ifname, &path)? {
                self.attachments.push(Attachment {
                    ifname: ifname.to_owned(),
                    mode,
                    link: Link::Pinned { fd, path },
                });
                return Ok(mode);
            }
        }
        let (link, mode) = self.attach_new(ifname)?;
        let path = pin.link_path(program, ifname, mode);
        let link_err = |step, source| Error::PinnedLink {
            ifname: ifname.to_owned(),
            path: path.clone(),
            step,
            source,
        };
        // Dropping the taken link on an error below detaches it again.
        let fd = match link {
            Link::Owned(link) => {
                let link = self
                    .xdp()?
                    .take_link(link)
                    .map_err(|e| link_err("taking", io::Error::other(e)))?;
                FdLink::try_from(link).map_err(|e| link_err("pinning", io::Error::other(e)))?
            }
            Link::OwnedTc(link) => {
                tc::into_fd(self.tc()?, link).map_err(|e| link_err("taking", e))?
            }
            Link::Pinned { fd, .. } => fd,
        };
        let fd = fd
            .pin(&path)
            .map_err(|e| link_err("pinning", pin_io_error(e)))?;
        self.attachments.push(Attachment {
            ifname: ifname.to_owned(),
            mode,
            link: Link::Pinned {
                fd: fd.into(),
                path,
            },
        });
        Ok(mode)
    }

    /// The mode of a link pinned on `ifname` by an earlier load of this program for the same
    /// hook, if any: the one `attach` takes over.
    pub(crate) fn pinned_attachment(&self, ifname: &str) -> Option<AttachMode> {
        let pin = self.pin.as_ref()?;
        self.hook
            .modes()
            .iter()
            .copied()
            .find(|mode| pin.link_path(self.program, ifname, *mode).exists())
    }

    /// Releases the links an earlier load for the other hook pinned on `ifname` (see
    /// `attach`), waiting until the kernel has detached their program.
    fn release_other_hook(&self, pin: &PinDir, ifname: &str) -> Result<(), Error> {
        let other = match self.hook {
            Hook::Xdp => Hook::Tc,
            Hook::Tc => Hook::Xdp,
        };
        for mode in other.modes() {
            let path = pin.link_path(self.program, ifname, *mode);
            if path.exists() {
                tc::release_pinned(&path).map_err(|source| Error::PinnedLink {
                    ifname: ifname.to_owned(),
                    path: path.clone(),
                    step: "releasing the other hook's",
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// Swaps this program into the link pinned at `path`. `None` when the link is defunct
    /// (its interface was deleted): the stale pin is removed and the caller attaches anew.
    fn take_over(&mut self, ifname: &str, path: &std::path::Path) -> Result<Option<FdLink>, Error> {
        let link_err = |step, source| Error::PinnedLink {
            ifname: ifname.to_owned(),
            path: path.to_owned(),
            step,
            source,
        };
        let pinned = match PinnedLink::from_pin(path) {
            Ok(pinned) => pinned,
            Err(e) => return Err(link_err("opening", io::Error::other(e))),
        };
        if self.hook == Hook::Tc {
            return match tc::take_over(self.tc()?, pinned) {
                Ok(Some(fd)) => Ok(Some(fd)),
                Ok(None) => {
                    remove_pin(path).map_err(|source| link_err("removing defunct", source))?;
                    Ok(None)
                }
                Err((step, source)) => Err(link_err(step, source)),
            };
        }
        let link = XdpLink::try_from(FdLink::from(pinned))
            .map_err(|e| link_err("opening", io::Error::other(e)))?;
        let xdp = self.xdp()?;
        match xdp.attach_to_link(link) {
            Ok(id) => {
                let link = xdp
                    .take_link(id)
                    .map_err(|e| link_err("taking", io::Error::other(e)))?;
                FdLink::try_from(link)
                    .map(Some)
                    .map_err(|e| link_err("taking", io::Error::other(e)))
            }
            Err(ProgramError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(nix::libc::ENOLINK) =>
            {
                remove_pin(path).map_err(|source| link_err("removing defunct", source))?;
                Ok(None)
            }
            Err(e) => Err(link_err("replacing the program of", io::Error::other(e))),
        }
    }

    /// A new link owned by the program.
    fn attach_new(&mut self, ifname: &str) -> Result<(Link, AttachMode), Error> {
        let program = self.program;
        if self.hook == Hook::Tc {
            let link = tc::attach(self.tc()?, program, ifname)?;
            return Ok((Link::OwnedTc(link), AttachMode::Tcx));
        }
        let xdp = self.xdp()?;
        match xdp.attach(ifname, XdpMode::Driver) {
            Ok(link) => Ok((Link::Owned(link), AttachMode::Native)),
            Err(native) => match xdp.attach(ifname, XdpMode::Skb) {
                Ok(link) => Ok((Link::Owned(link), AttachMode::Generic)),
                Err(generic) => Err(Error::Attach {
                    program,
                    ifname: ifname.to_owned(),
                    native: Box::new(native),
                    generic: Box::new(generic),
                }),
            },
        }
    }

    /// Detaches from one interface; a pinned link is unpinned first, so it goes too.
    pub(crate) fn detach(&mut self, ifname: &str) -> Result<(), Error> {
        let program = self.program;
        let idx = self
            .attachments
            .iter()
            .position(|a| a.ifname == ifname)
            .ok_or_else(|| Error::NotAttached {
                program,
                ifname: ifname.to_owned(),
            })?;
        let attachment = self.attachments.remove(idx);
        let detach_err = |source| Error::Detach {
            program,
            ifname: attachment.ifname.clone(),
            source: Box::new(source),
        };
        match attachment.link {
            Link::Owned(link) => self.xdp()?.detach(link).map_err(detach_err),
            Link::OwnedTc(link) => self.tc()?.detach(link).map_err(detach_err),
            // The link is released (and the program detached) when its last reference,
            // `fd`, closes after the pin is gone.
            Link::Pinned { fd, path } => {
                remove_pin(&path).map_err(|source| Error::PinnedLink {
                    ifname: attachment.ifname,
                    path,
                    step: "removing",
                    source,
                })?;
                drop(fd);
                Ok(())
            }
        }
    }

    /// State-map pins this load found incompatible and replaced with empty maps.
    pub(crate) fn replaced_pins(&self) -> &[ReplacedPin] {
        &self.replaced_pins
    }

    /// Interfaces the program is attached to, with the mode each got.
    pub(crate) fn attachments(&self) -> Vec<(String, AttachMode)> {
        self.attachments
            .iter()
            .map(|a| (a.ifname.clone(), a.mode))
            .collect()
    }
}

/// The object's program `program` (`&` or `&mut`) as the XDP or TC program it must be.
fn as_program<P, X>(program: &'static str, prog: Option<P>) -> Result<X, Error>
where
    X: TryFrom<P, Error = ProgramError>,
{
    let prog = prog.ok_or(Error::MissingItem {
        program,
        name: program,
    })?;
    X::try_from(prog).map_err(|source| Error::WrongProgramType {
        program,
        source: Box::new(source),
    })
}

/// Removes one pin; absent is fine.
fn remove_pin(path: &std::path::Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// aya's pin error wraps the syscall's `io::Error`; keep it (errno and all) as the source.
fn pin_io_error(error: aya::pin::PinError) -> io::Error {
    match error {
        aya::pin::PinError::SyscallError(e) => e.io_error,
        other => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use aya::programs::ProgramError;

    use super::*;

    fn load_error(errno: i32) -> ProgramError {
        ProgramError::LoadError {
            io_error: std::io::Error::from_raw_os_error(errno),
            verifier_log: aya_obj::VerifierLog::new(String::new()),
        }
    }

    #[test]
    fn only_an_interrupted_verification_is_tried_again() {
        const EAGAIN: i32 = 11;
        const EINVAL: i32 = 22;
        const EPERM: i32 = 1;
        assert!(interrupted(&load_error(EAGAIN)));
        assert!(!interrupted(&load_error(EINVAL)));
        assert!(!interrupted(&load_error(EPERM)));
        assert!(!interrupted(&ProgramError::AlreadyLoaded));
    }
}
