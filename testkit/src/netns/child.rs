//! A process running inside a namespace, killed when the test is done with it.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use super::Error;
use crate::spawn::spawn;

/// A child process (normally from [`Netns::command`](super::Netns::command)), SIGKILLed and
/// reaped on drop.
///
/// Children are forked from the toolkit's one long-lived spawner thread: the parent-death
/// signal that [`Netns::command`](super::Netns::command) sets is tied to the forking
/// *thread*, and a short-lived test thread exiting would otherwise kill the child early.
#[derive(Debug)]
pub struct NsChild {
    child: Child,
    cmd: String,
    done: Option<ExitStatus>,
}

impl NsChild {
    /// Spawns `cmd`.
    pub fn spawn(cmd: Command) -> Result<Self, Error> {
        let line = format!("{cmd:?}");
        let child = spawn(cmd).map_err(|source| Error::Spawn {
            cmd: line.clone(),
            source,
        })?;
        Ok(Self {
            child,
            cmd: line,
            done: None,
        })
    }

    /// The process id (after `ip netns exec` has exec'd, the program's own).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The [`Child`], for its piped stdin/stdout/stderr.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.done {
            return Ok(status);
        }
        // Fails only when it already exited, which wait() then reports.
        let _ = self.child.kill();
        let status = self.child.wait()?;
        self.done = Some(status);
        Ok(status)
    }

    /// The exit status if the process has exited, without blocking.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.done.is_none() {
            self.done = self.child.try_wait()?;
        }
        Ok(self.done)
    }

    /// Waits at most `timeout` for the process to exit by itself; `None` if it did not.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The command line it was started with, for messages.
    pub fn command_line(&self) -> &str {
        &self.cmd
    }
}

impl Drop for NsChild {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
