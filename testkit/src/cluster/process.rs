//! Component processes: logging to a file, readiness errors with log tails, bounded shutdown.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Error;
use crate::spawn::spawn_tied;

/// How long a component gets to exit after SIGTERM before it is SIGKILLed.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// How many log lines an error carries.
pub(crate) const TAIL_LINES: usize = 40;

/// A running component, killed (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub(crate) struct Proc {
    component: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdout and stderr going to `log`, tied to the test process.
    pub(crate) fn spawn(component: &str, mut cmd: Command, log: &Path) -> Result<Self, Error> {
        let write_err = |source| Error::WriteFile {
            path: log.to_path_buf(),
            source,
        };
        let out = File::create(log).map_err(write_err)?;
        let err = out.try_clone().map_err(write_err)?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = spawn_tied(cmd).map_err(|source| Error::Spawn {
            component: component.to_string(),
            source,
        })?;
        Ok(Self {
            component: component.to_string(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Errors with the log tail if the process has already exited.
    pub(crate) fn check_running(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::ExitedEarly {
                component: self.component.clone(),
                status: status.to_string(),
                log: self.log.clone(),
                tail: tail(&self.log, TAIL_LINES),
            }),
            Err(e) => Err(Error::ExitedEarly {
                component: self.component.clone(),
                status: format!("unknown: {e}"),
                log: self.log.clone(),
                tail: tail(&self.log, TAIL_LINES),
            }),
        }
    }

    /// The "not ready in time" error for this component, with its log tail.
    pub(crate) fn not_ready(&self, timeout: Duration, last: String) -> Error {
        Error::NotReady {
            component: self.component.clone(),
            timeout,
            last,
            log: self.log.clone(),
            tail: tail(&self.log, TAIL_LINES),
        }
    }

    /// SIGTERM, wait up to [`STOP_GRACE`], then SIGKILL; always reaps the child.
    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = kill(pid_of(self.pid()), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn pid_of(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX))
}

/// Whether `pid` names a live process (zombies count as gone: they only wait to be reaped).
pub fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may itself contain ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z' | 'X' | 'x'))
}

/// SIGTERM `pid` (not our child), wait up to [`STOP_GRACE`] for it to go, then SIGKILL it.
pub(crate) fn terminate_pid(pid: u32) {
    if !process_alive(pid) {
        return;
    }
    let _ = kill(pid_of(pid), Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if !process_alive(pid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_pid(pid);
}

/// SIGKILL `pid` (not our child) and wait up to [`STOP_GRACE`] until it is gone.
pub(crate) fn kill_pid(pid: u32) {
    let _ = kill(pid_of(pid), Signal::SIGKILL);
    let deadline = Instant::now() + STOP_GRACE;
    while process_alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The last `lines` lines of a log file (or a note saying why there are none).
pub(crate) fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}
