//! A last-resort cleaner for when the test process dies without running destructors.
//!
//! PDEATHSIG kills our direct children, but not the temp directory, nor kwok's components
//! (kwokctl daemonises them). So each environment also starts a tiny `sh` that blocks reading
//! a pipe from us: a normal shutdown writes `done` and it exits; if we die, the kernel closes
//! the pipe, `read` hits EOF, and the shell runs the cleanup script.

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use crate::Error;

/// A detached cleanup script that runs unless [`Watchdog::disarm`] is called.
#[derive(Debug)]
pub(crate) struct Watchdog {
    child: Option<Child>,
}

impl Watchdog {
    /// Starts `sh -c <cleanup>` (with `args` as `$1`...) waiting for our death.
    pub(crate) fn spawn<I, S>(cleanup: &str, args: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let script = format!("read -r line; [ \"$line\" = done ] && exit 0; {cleanup}");
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("hsn-testkit-watchdog")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Own process group: a Ctrl-C to the test's group must not kill the cleaner.
            .process_group(0)
            .spawn()
            .map_err(|source| Error::Spawn {
                component: "watchdog (sh)".into(),
                source,
            })?;
        Ok(Self { child: Some(child) })
    }

    /// The normal shutdown already cleaned up: tell the watchdog to exit without acting.
    pub(crate) fn disarm(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(b"done\n");
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Watchdog {
    /// Not disarmed (a failed start): closing the pipe makes it clean up; reap it off-thread.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            drop(child.stdin.take());
            std::thread::spawn(move || child.wait());
        }
    }
}
