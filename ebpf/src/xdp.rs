//! Loading an embedded object, attaching its XDP program, and test-running packets.

use std::fmt;
use std::time::Duration;

use aya::maps::{Map, MapError};
use aya::programs::Xdp;
use aya::programs::xdp::{XdpLinkId, XdpMode};
use aya::{Ebpf, EbpfLoader, TestRun, TestRunOptions, TestRunResult};

use crate::Error;
use crate::bpffs::{PinDir, PinnedMap, check_pinned};

/// How an XDP program ended up attached to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttachMode {
    /// Native (driver) XDP.
    Native,
    /// Generic (SKB) XDP: the driver has no XDP support; slower, same semantics.
    Generic,
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Generic => "generic",
        })
    }
}

/// An XDP verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpAction {
    /// `XDP_ABORTED` (0).
    Aborted,
    /// `XDP_DROP` (1).
    Drop,
    /// `XDP_PASS` (2).
    Pass,
    /// `XDP_TX` (3).
    Tx,
    /// `XDP_REDIRECT` (4).
    Redirect,
    /// Anything else (the kernel treats it as aborted).
    Other(u32),
}

impl XdpAction {
    fn from_raw(raw: u32) -> Self {
        match raw {
            0 => Self::Aborted,
            1 => Self::Drop,
            2 => Self::Pass,
            3 => Self::Tx,
            4 => Self::Redirect,
            other => Self::Other(other),
        }
    }
}

/// What a program did to one packet under BPF_PROG_TEST_RUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketRun {
    /// The verdict.
    pub action: XdpAction,
    /// The packet as the program left it (headers rewritten, tags popped).
    pub packet: Vec<u8>,
}

/// One embedded object: its XDP program and the maps pinned per network.
#[derive(Debug)]
pub(crate) struct ObjectSpec {
    pub program: &'static str,
    pub bytes: &'static [u8],
    pub pinned: &'static [PinnedMap],
}

#[derive(Debug)]
struct Attachment {
    ifname: String,
    mode: AttachMode,
    link: XdpLinkId,
}

/// A loaded object and where its program is attached. Dropping it detaches the program
/// (aya detaches owned links on drop) and closes the maps; pinned maps stay in bpffs.
#[derive(Debug)]
pub(crate) struct Loaded {
    ebpf: Ebpf,
    program: &'static str,
    attachments: Vec<Attachment>,
}

impl Loaded {
    /// Loads the object, reusing the pinned maps in `pin` when it is set, and loads the
    /// program into the kernel (the verifier runs here). `globals` are `const volatile u8`s.
    pub(crate) fn load(
        spec: &ObjectSpec,
        pin: Option<&PinDir>,
        globals: &[(&'static str, u8)],
    ) -> Result<Self, Error> {
        if spec.bytes.is_empty() {
            return Err(Error::ObjectNotBuilt {
                program: spec.program,
            });
        }
        let mut loader = EbpfLoader::new();
        for (name, value) in globals {
            loader.override_global(name, value, true);
        }
        if let Some(pin) = pin {
            pin.prepare()?;
            check_pinned(pin, spec.pinned)?;
            for map in spec.pinned {
                loader.map_pin_path(map.name, pin.map_path(map.name));
            }
        }
        let ebpf = loader
            .load(spec.bytes)
            .map_err(|source| Error::LoadObject {
                program: spec.program,
                source: Box::new(source),
            })?;
        let mut loaded = Self {
            ebpf,
            program: spec.program,
            attachments: Vec::new(),
        };
        loaded.xdp()?.load().map_err(|source| Error::LoadProgram {
            program: spec.program,
            source: Box::new(source),
        })?;
        Ok(loaded)
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

    fn xdp(&mut self) -> Result<&mut Xdp, Error> {
        let program = self.program;
        let prog = self.ebpf.program_mut(program).ok_or(Error::MissingItem {
            program,
            name: program,
        })?;
        prog.try_into().map_err(|source| Error::WrongProgramType {
            program,
            source: Box::new(source),
        })
    }

    /// Attaches in native mode, falling back to generic mode when the driver lacks XDP.
    pub(crate) fn attach(&mut self, ifname: &str) -> Result<AttachMode, Error> {
        let program = self.program;
        if self.attachments.iter().any(|a| a.ifname == ifname) {
            return Err(Error::AlreadyAttached {
                program,
                ifname: ifname.to_owned(),
            });
        }
        let xdp = self.xdp()?;
        let (link, mode) = match xdp.attach(ifname, XdpMode::Driver) {
            Ok(link) => (link, AttachMode::Native),
            Err(native) => match xdp.attach(ifname, XdpMode::Skb) {
                Ok(link) => (link, AttachMode::Generic),
                Err(generic) => {
                    return Err(Error::Attach {
                        program,
                        ifname: ifname.to_owned(),
                        native: Box::new(native),
                        generic: Box::new(generic),
                    });
                }
            },
        };
        self.attachments.push(Attachment {
            ifname: ifname.to_owned(),
            mode,
            link,
        });
        Ok(mode)
    }

    /// Detaches from one interface.
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
        self.xdp()?
            .detach(attachment.link)
            .map_err(|source| Error::Detach {
                program,
                ifname: attachment.ifname,
                source: Box::new(source),
            })
    }

    /// Interfaces the program is attached to, with the mode each got.
    pub(crate) fn attachments(&self) -> Vec<(String, AttachMode)> {
        self.attachments
            .iter()
            .map(|a| (a.ifname.clone(), a.mode))
            .collect()
    }

    /// The loaded XDP program, for BPF_PROG_TEST_RUN.
    fn xdp_ref(&self) -> Result<&Xdp, Error> {
        let program = self.program;
        let prog = self.ebpf.program(program).ok_or(Error::MissingItem {
            program,
            name: program,
        })?;
        prog.try_into().map_err(|source| Error::WrongProgramType {
            program,
            source: Box::new(source),
        })
    }

    /// Runs one packet through the program with BPF_PROG_TEST_RUN. Maps are the real ones:
    /// counters change exactly as for a packet on the wire.
    pub(crate) fn run(&self, packet: &[u8]) -> Result<PacketRun, Error> {
        // Room for a program that grows the frame into its headroom.
        let mut out = vec![0u8; packet.len() + 256];
        let result = self.test_run(TestRunOptions {
            data_in: Some(packet),
            data_out: Some(&mut out),
            ..TestRunOptions::default()
        })?;
        out.truncate(result.data_size_out as usize);
        Ok(PacketRun {
            action: XdpAction::from_raw(result.return_value),
            packet: out,
        })
    }

    /// Runs one packet `repeat` times in the kernel and returns the kernel's average time
    /// per run (no syscall in it). Maps change as for `repeat` packets.
    pub(crate) fn time(&self, packet: &[u8], repeat: u32) -> Result<Duration, Error> {
        let result = self.test_run(TestRunOptions {
            data_in: Some(packet),
            repeat: repeat.max(1),
            ..TestRunOptions::default()
        })?;
        Ok(result.duration)
    }

    fn test_run(&self, options: TestRunOptions<'_>) -> Result<TestRunResult, Error> {
        let program = self.program;
        self.xdp_ref()?
            .test_run(options)
            .map_err(|source| Error::TestRun {
                program,
                source: Box::new(source),
            })
    }
}
