//! The programs built for TC (`edge_tc.bpf.o`, `super_tc.bpf.o`: the same C as the XDP
//! objects with `-DHSN_TC`, see `include/hsn_ctx.h`): tcx ingress links, how a pinned one
//! is taken over, and TC verdicts.
//!
//! tcx (Linux 6.6+), not a clsact qdisc filter: a tcx link is a bpf link like the XDP one,
//! so it is pinned, survives its process, and the next load swaps its program atomically
//! (`BPF_LINK_UPDATE`). A netlink filter is none of these (aya detaches it when the process
//! goes), so older kernels are refused rather than served without takeover.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use aya::programs::links::{FdLink, LinkOrder, PinnedLink};
use aya::programs::tc::{SchedClassifierLink, SchedClassifierLinkId, TcAttachOptions};
use aya::programs::{ProgramError, SchedClassifier, TcAttachType, loaded_links};

use crate::{Error, XdpAction};

/// How long a released link may take to leave the kernel (it is freed asynchronously).
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Attaches at the tcx ingress of `ifname`, after the programs already there.
pub(crate) fn attach(
    prog: &mut SchedClassifier,
    program: &'static str,
    ifname: &str,
) -> Result<SchedClassifierLinkId, Error> {
    prog.attach_with_options(
        ifname,
        TcAttachType::Ingress,
        TcAttachOptions::TcxOrder(LinkOrder::default()),
    )
    .map_err(|source| Error::AttachTc {
        program,
        ifname: ifname.to_owned(),
        source: Box::new(source),
    })
}

/// A link of `prog` (taken out of aya's ownership) as the fd to pin.
pub(crate) fn into_fd(
    prog: &mut SchedClassifier,
    link: SchedClassifierLinkId,
) -> Result<FdLink, io::Error> {
    let link = prog.take_link(link).map_err(io::Error::other)?;
    FdLink::try_from(link).map_err(io::Error::other)
}

/// Swaps `prog` into the tcx link `pinned` (atomically: no packet sees no program); the
/// link as the fd to keep pinned, or `None` when it is defunct (its interface was deleted).
/// A failure names its step.
pub(crate) fn take_over(
    prog: &mut SchedClassifier,
    pinned: PinnedLink,
) -> Result<Option<FdLink>, (&'static str, io::Error)> {
    let link = SchedClassifierLink::try_from(FdLink::from(pinned))
        .map_err(|e| ("opening", io::Error::other(e)))?;
    let id = match prog.attach_to_link(link) {
        Ok(id) => id,
        Err(ProgramError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(nix::libc::ENOLINK) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(("replacing the program of", io::Error::other(e))),
    };
    into_fd(prog, id).map(Some).map_err(|e| ("taking", e))
}

/// Unpins the link pinned at `path` (the other hook's, left by an earlier load of a node
/// that switched hooks) and waits until the kernel has freed it, which detaches its
/// program: two programs on one interface would count its packets twice. Fails when it
/// stays (another process still holds it).
pub(crate) fn release_pinned(path: &Path) -> io::Result<()> {
    let id = match PinnedLink::from_pin(path) {
        Ok(pinned) => {
            let fd = FdLink::from(pinned);
            fd.info().map_err(io::Error::other)?.id()
        }
        Err(e) => return Err(io::Error::other(e)),
    };
    std::fs::remove_file(path)?;
    let deadline = Instant::now() + RELEASE_TIMEOUT;
    while loaded_links().any(|l| l.is_ok_and(|l| l.id() == id)) {
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "link {id} unpinned but still held by another process after {RELEASE_TIMEOUT:?}"
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// `struct __sk_buff` (UAPI): its size and where `gso_size` is in it.
const SKB_CTX_LEN: usize = 192;
const SKB_GSO_SIZE_AT: usize = 176;

/// A test run's skb context: a GSO packet of `gso_size`-byte segments (the rest zero, as
/// BPF_PROG_TEST_RUN requires of the fields it does not take).
pub(crate) fn gso_ctx(gso_size: u16) -> Vec<u8> {
    let mut ctx = vec![0u8; SKB_CTX_LEN];
    ctx[SKB_GSO_SIZE_AT..SKB_GSO_SIZE_AT + 4].copy_from_slice(&u32::from(gso_size).to_ne_bytes());
    ctx
}

/// A TC verdict (`TC_ACT_*`) in XDP's terms: `TC_ACT_OK` passes, `TC_ACT_SHOT` drops (TC's
/// only failure verdict: what XDP aborts, TC drops), `TC_ACT_REDIRECT` redirects; anything
/// else is [`XdpAction::Other`] with the TC value.
pub(crate) fn verdict(raw: u32) -> XdpAction {
    match raw {
        0 => XdpAction::Pass,
        2 => XdpAction::Drop,
        7 => XdpAction::Redirect,
        other => XdpAction::Other(other),
    }
}
