//! For tests that load BPF programs: skipping without root, a private bpffs mount point, and
//! which XDP program an interface runs.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::netns::{Error, Netns, is_root};

/// True when the test may load BPF programs (root); otherwise prints, on the real stderr so
/// that a passing run shows it, that the running test is skipped.
pub fn can_bpf() -> bool {
    if is_root() {
        return true;
    }
    // libtest names the thread after the test; eprintln! would be captured by the harness.
    let thread = std::thread::current();
    let _ = writeln!(
        std::io::stderr(),
        "{}: skipped: needs root (CAP_BPF/CAP_SYS_ADMIN) for BPF_PROG_TEST_RUN",
        thread.name().unwrap_or("test")
    );
    false
}

/// Returns `Ok(())` early from a test when it cannot load BPF programs ([`can_bpf`]).
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::bpf::can_bpf() {
            return Ok(());
        }
    };
}

/// A temporary directory for a private bpffs, so pin tests never touch the host's
/// `/sys/fs/bpf`. Mounting is left to the code under test (or the test); whatever is mounted
/// there is detached when this is dropped, then the directory is removed.
#[derive(Debug)]
pub struct Bpffs {
    dir: tempfile::TempDir,
}

impl Bpffs {
    /// A new, empty directory; nothing mounted yet.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path under the mount point.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

impl Drop for Bpffs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The id of the XDP program attached to `ifname` in `ns`, in any mode, as `ip link` shows
/// it (`prog/xdp id 42`); `None` when there is none.
pub fn xdp_prog_id(ns: &Netns, ifname: &str) -> Result<Option<u32>, Error> {
    let out = ns.ip(&["link", "show", "dev", ifname])?;
    let mut words = out.split_whitespace().skip_while(|w| *w != "prog/xdp");
    match (words.next(), words.next(), words.next()) {
        (Some(_), Some("id"), Some(id)) => id.parse().map(Some).map_err(|_| Error::Output {
            cmd: format!("ip -n {} link show dev {ifname}", ns.name()),
            reason: format!("program id {id:?}"),
        }),
        _ => Ok(None),
    }
}
