//! Every child process the toolkit starts is forked from one long-lived thread.
//!
//! The kernel ties a parent-death signal (`PR_SET_PDEATHSIG`) to the *thread* that forked,
//! not the process, so a child forked from a short-lived thread (a test thread, a tokio
//! worker) would be killed when that thread exits. The spawner thread lives until the
//! process exits. [`spawn_tied`] sets SIGKILL as the child's parent-death signal, so the
//! kernel kills it when its parent goes away, even if the test process is SIGKILLed and no
//! destructor runs; [`spawn`] leaves that to the command (`setpriv --pdeathsig`).
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, PoisonError};

use nix::errno::Errno;
use nix::sys::signal::Signal;

type Request = (Command, Sender<io::Result<Child>>);

/// The spawner thread's inbox; the thread is started on first use and never stops.
static SPAWNER: Mutex<Option<Sender<Request>>> = Mutex::new(None);

/// Spawns `cmd` from the long-lived spawner thread with SIGKILL as its parent-death signal.
pub(crate) fn spawn_tied(mut cmd: Command) -> io::Result<Child> {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // operations are allowed. It makes two raw syscalls (prctl, getppid) and builds an
    // io::Error from an errno, which does not allocate; it touches no locks or shared state.
    unsafe {
        cmd.pre_exec(move || die_with_parent(parent));
    }
    spawn(cmd)
}

/// Spawns `cmd` from the long-lived spawner thread.
pub(crate) fn spawn(cmd: Command) -> io::Result<Child> {
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner()?
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("hsn-testkit spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("hsn-testkit spawner thread dropped the request"))?
}

/// Runs in the child between fork and exec.
fn die_with_parent(parent: u32) -> io::Result<()> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
    // The parent may have died between fork and prctl; then the signal would never come.
    if nix::unistd::getppid().as_raw().unsigned_abs() != parent {
        return Err(Errno::ESRCH.into());
    }
    Ok(())
}

fn spawner() -> io::Result<Sender<Request>> {
    let mut guard = SPAWNER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(tx) = guard.as_ref() {
        return Ok(tx.clone());
    }
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("hsn-testkit-spawner".into())
        .spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
        })?;
    *guard = Some(tx.clone());
    Ok(tx)
}
