//! Test-running packets through a loaded program (BPF_PROG_TEST_RUN): what it did to one
//! packet, and the kernel's time per run.

use std::time::Duration;

use aya::programs::{SchedClassifier, Xdp};
use aya::{TestRun, TestRunOptions, TestRunResult};

use super::{Hook, Loaded, as_program};
use crate::Error;
use crate::tc;

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
    /// The verdict; a TC program's in XDP's terms (`TC_ACT_OK` is [`XdpAction::Pass`],
    /// `TC_ACT_SHOT` [`XdpAction::Drop`], also where XDP would abort, `TC_ACT_REDIRECT`
    /// [`XdpAction::Redirect`], anything else [`XdpAction::Other`] with the TC value).
    pub action: XdpAction,
    /// The packet as the program left it (headers rewritten, tags popped).
    pub packet: Vec<u8>,
}

impl Loaded {
    /// Runs one packet through the program with BPF_PROG_TEST_RUN. Maps are the real ones:
    /// counters change exactly as for a packet on the wire.
    pub(crate) fn run(&self, packet: &[u8]) -> Result<PacketRun, Error> {
        self.run_ctx(packet, None)
    }

    /// [`Self::run`] for a TC program, the skb a GSO packet of `gso_size`-byte segments (as
    /// GRO leaves one); an XDP program never sees one.
    pub(crate) fn run_gso(&self, packet: &[u8], gso_size: u16) -> Result<PacketRun, Error> {
        if self.hook != Hook::Tc {
            return Err(Error::NotForHook {
                program: self.program,
                hook: self.hook,
                what: "a GSO packet",
            });
        }
        self.run_ctx(packet, Some(&tc::gso_ctx(gso_size)))
    }

    fn run_ctx(&self, packet: &[u8], ctx: Option<&[u8]>) -> Result<PacketRun, Error> {
        // Room for a program that grows the frame into its headroom.
        let mut out = vec![0u8; packet.len() + 256];
        let result = self.test_run(TestRunOptions {
            data_in: Some(packet),
            data_out: Some(&mut out),
            ctx_in: ctx,
            ..TestRunOptions::default()
        })?;
        out.truncate(result.data_size_out as usize);
        let action = match self.hook {
            Hook::Xdp => XdpAction::from_raw(result.return_value),
            Hook::Tc => tc::verdict(result.return_value),
        };
        Ok(PacketRun {
            action,
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

    /// BPF_PROG_TEST_RUN of the loaded program: on an `xdp_buff`, or on an skb for TC.
    fn test_run(&self, options: TestRunOptions<'_>) -> Result<TestRunResult, Error> {
        let program = self.program;
        let prog = self.ebpf.program(program);
        let result = match self.hook {
            Hook::Xdp => as_program::<_, &Xdp>(program, prog)?.test_run(options),
            Hook::Tc => as_program::<_, &SchedClassifier>(program, prog)?.test_run(options),
        };
        result.map_err(|source| Error::TestRun {
            program,
            source: Box::new(source),
        })
    }
}
