//! What can go wrong building a topology.

use std::io;
use std::process::ExitStatus;

/// A failed step, with the command or path involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command could not be started.
    #[error("cannot run {cmd}: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// Why.
        source: io::Error,
    },
    /// A command ran and failed.
    #[error("{cmd} failed ({status}): {stderr}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Entering a namespace failed.
    #[error("cannot enter network namespace {name}: {source}")]
    Enter {
        /// The namespace.
        name: String,
        /// Why.
        source: io::Error,
    },
    /// A sysctl could not be written.
    #[error("sysctl {key} = {value} in {name}: {source}")]
    Sysctl {
        /// The namespace.
        name: String,
        /// Dotted key, e.g. `net.ipv4.ip_forward`.
        key: String,
        /// The value written.
        value: String,
        /// Why.
        source: io::Error,
    },
    /// Output of a command was not what was expected.
    #[error("unexpected output of {cmd}: {reason}")]
    Output {
        /// The command line.
        cmd: String,
        /// What was wrong.
        reason: String,
    },
    /// An argument is malformed (address, MAC, name).
    #[error("invalid {what}: {input:?}")]
    Invalid {
        /// What kind of value.
        what: &'static str,
        /// The input.
        input: String,
    },
    /// A capture socket step failed.
    #[error("capture: {step}: {source}")]
    Capture {
        /// The step.
        step: String,
        /// Why.
        source: io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(io::Error),
    /// A thread running in a namespace panicked.
    #[error("the thread running in network namespace {name} panicked")]
    Panicked {
        /// The namespace.
        name: String,
    },
}
