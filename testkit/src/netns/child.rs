//! A process running inside a namespace, killed when the test is done with it.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Error;

type Request = (Command, Sender<io::Result<Child>>);

/// The spawner thread's inbox; the thread starts on first use and never stops.
static SPAWNER: Mutex<Option<Sender<Request>>> = Mutex::new(None);

/// A child process (normally from [`Netns::command`](super::Netns::command)), SIGKILLed and
/// reaped on drop.
///
/// Children are forked from one long-lived thread: the parent-death signal that
/// [`Netns::command`](super::Netns::command) sets is tied to the forking *thread*, and a
/// short-lived test thread exiting would otherwise kill the child early.
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
        let spawn_err = |source| Error::Spawn {
            cmd: line.clone(),
            source,
        };
        let (reply_tx, reply_rx) = mpsc::channel();
        spawner()
            .map_err(spawn_err)?
            .send((cmd, reply_tx))
            .map_err(|_| spawn_err(io::Error::other("the spawner thread is gone")))?;
        let child = reply_rx
            .recv()
            .map_err(|_| spawn_err(io::Error::other("the spawner thread dropped the request")))?
            .map_err(spawn_err)?;
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

fn spawner() -> io::Result<Sender<Request>> {
    let mut guard = SPAWNER.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(tx) = guard.as_ref() {
        return Ok(tx.clone());
    }
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("hsn-testkit-netns-spawner".into())
        .spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
        })?;
    *guard = Some(tx.clone());
    Ok(tx)
}
