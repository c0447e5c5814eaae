//! One error variant per step that can fail while bringing an environment up.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong starting, using or stopping a test environment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool that hack/build-tools.sh builds is not in [`super::bin_dir`].
    #[error(
        "missing test binary {}: run `make tools` (hack/build-tools.sh) to build etcd, \
         kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet, kwok, kwokctl, \
         helm and cometbft into {} \
         (or point HSN_BIN_DIR at a directory holding them)",
        path.display(),
        dir.display()
    )]
    MissingBinary {
        /// The binary that was looked for.
        path: PathBuf,
        /// The directory searched.
        dir: PathBuf,
    },

    /// The environment's private temporary directory could not be created.
    #[error("creating a temporary directory: {0}")]
    TempDir(#[source] io::Error),

    /// Generating the CA, serving, client or service-account keys failed.
    #[error("generating certificates: {0}")]
    Pki(#[from] rcgen::Error),

    /// Writing a generated file (certificate, kubeconfig, config) failed.
    #[error("writing {}: {source}", path.display())]
    WriteFile {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// Reading a file a kubeconfig names (certificate, key, token) failed.
    #[error("reading {}: {source}", path.display())]
    ReadFile {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },

    /// A value read from a file or the system is not what it must be.
    #[error("invalid {what}: {input}")]
    Invalid {
        /// What was being read.
        what: &'static str,
        /// What was found.
        input: String,
    },

    /// A kubeconfig could not be serialized.
    #[error("serializing a kubeconfig: {0}")]
    Serialize(#[source] serde_json::Error),

    /// No free TCP port could be reserved on 127.0.0.1.
    #[error("finding a free port on 127.0.0.1: {0}")]
    FreePort(#[source] io::Error),

    /// A process could not be spawned at all.
    #[error("spawning {component}: {source}")]
    Spawn {
        /// Which component (etcd, kube-apiserver, kwokctl, ...).
        component: String,
        /// The underlying error.
        source: io::Error,
    },

    /// A component exited while it was expected to keep running.
    #[error("{component} exited early ({status}); last lines of {}:\n{tail}", log.display())]
    ExitedEarly {
        /// Which component.
        component: String,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log file.
        tail: String,
    },

    /// A component did not become ready within its deadline.
    #[error(
        "{component} not ready within {timeout:?} (last probe error: {last}); last lines of {}:\n{tail}",
        log.display()
    )]
    NotReady {
        /// Which component.
        component: String,
        /// The deadline that passed.
        timeout: Duration,
        /// The last readiness probe error.
        last: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log file.
        tail: String,
    },

    /// A kubeconfig file could not be loaded or turned into a client configuration.
    #[error("loading kubeconfig {}: {source}", path.display())]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// The underlying error.
        source: kube::config::KubeconfigError,
    },

    /// A kube `Client` could not be built from a loaded configuration.
    #[error("building a kube client: {0}")]
    Client(#[source] kube::Error),

    /// A `kwokctl` invocation failed.
    #[error("`kwokctl {action}` failed ({status}); last lines of its output:\n{output}")]
    Kwokctl {
        /// The subcommand, e.g. `create cluster`.
        action: String,
        /// Its exit status or why it was stopped.
        status: String,
        /// The tail of its output (and of the component logs for `create`).
        output: String,
    },

    /// A call to the Kubernetes API failed.
    #[error("{action}: {source}")]
    Api {
        /// What was being done, e.g. `creating node zone-a-1`.
        action: String,
        /// The underlying error.
        source: kube::Error,
    },

    /// A kwok cluster component has no running process to act on.
    #[error("component {component} of kwok cluster {cluster} is not running")]
    ComponentNotRunning {
        /// The cluster name.
        cluster: String,
        /// The component name.
        component: String,
    },

    /// [`crate::wait_for`] (or a readiness wait built on it) ran out of time.
    #[error("timed out after {timeout:?} waiting for {what}{}", last_error_suffix(last.as_deref()))]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The deadline that passed.
        timeout: Duration,
        /// The last error seen while polling, if any.
        last: Option<String>,
    },
}

fn last_error_suffix(last: Option<&str>) -> String {
    last.map(|e| format!(" (last error: {e})"))
        .unwrap_or_default()
}
