//! Real Kubernetes control planes, started from the binaries hack/build-tools.sh builds
//! into `bin/`.
//!
//! * [`ControlPlane`]: etcd + kube-apiserver only; starts in seconds. For API-level tests
//!   (CRDs, controllers' reconcile loops against a real apiserver).
//! * [`KwokCluster`]: a full control plane (scheduler, controller-manager) plus kwok faking
//!   nodes and pods, through `kwokctl --runtime binary`. For tests that need Deployments,
//!   DaemonSets and pods reaching Running.
//!
//! Both bind to 127.0.0.1 only, use private temporary directories and free ports (so several
//! can run side by side), and clean up when dropped: also when a test panics, and, through
//! `PR_SET_PDEATHSIG` plus a watchdog process, when the test process is killed outright.
//!
//! Tests must wait on conditions with a deadline ([`wait_for`](crate::wait_for), [`wait_for_ok`](crate::wait_for_ok)), never sleep.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hsn_testkit::Error> {
//! use std::time::Duration;
//! use k8s_openapi::api::core::v1::Namespace;
//!
//! let cp = hsn_testkit::ControlPlane::start().await?;
//! let namespaces: kube::Api<Namespace> = kube::Api::all(cp.client());
//! hsn_testkit::wait_for("namespace default", Duration::from_secs(10), || async {
//!     namespaces.get_opt("default").await.ok().flatten()
//! })
//! .await?;
//! cp.stop().await; // or just drop it
//! # Ok(())
//! # }
//! ```

mod control_plane;
mod crds;
pub(crate) mod error;
pub(crate) mod kubeconfig;
mod kwok;
pub(crate) mod kwokctl;
mod pki;
pub(crate) mod ports;
pub(crate) mod process;
pub(crate) mod watchdog;

use std::path::{Path, PathBuf};

pub use control_plane::ControlPlane;
pub use crds::install_crds;
pub(crate) use kwok::node_ready;
pub use kwok::{FakeNode, KWOK_NODE_ANNOTATION, KwokCluster};
pub use process::process_alive;

use crate::Error;

/// Every binary hack/build-tools.sh builds that a [`KwokCluster`] runs.
pub const ALL_BINARIES: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kwok",
    "kwokctl",
];

/// The hack/-built binaries real nodes run besides a [`KwokCluster`]'s [`ALL_BINARIES`].
/// containerd, runc and the CNI plugins come from Debian (hack/install-deps.sh), not from
/// [`bin_dir`].
pub const NODE_BINARIES: &[&str] = &["kubelet"];

/// Where the hack/-built binaries live: `$HSN_BIN_DIR`, else `<workspace root>/bin`.
pub fn bin_dir() -> PathBuf {
    let dir = match std::env::var_os("HSN_BIN_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        // This crate lives at <root>/testkit.
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../bin"),
    };
    // Absolute and tidy when it exists: kwokctl symlinks these paths from other directories.
    dir.canonicalize().unwrap_or(dir)
}

/// The path of one binary in [`bin_dir`].
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// Errors (telling the user to run `make tools`) if any of `names` is missing from [`bin_dir`].
pub fn require_binaries(names: &[&str]) -> Result<(), Error> {
    let dir = bin_dir();
    for name in names {
        let path = dir.join(name);
        if !is_executable(&path) {
            return Err(Error::MissingBinary { path, dir });
        }
    }
    Ok(())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A fresh private directory under the system temp dir, removed when dropped.
pub(crate) fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, Error> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(Error::TempDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binary_says_run_make_tools() {
        let err = require_binaries(&["hsn-testkit-no-such-binary"]).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("run `make tools`"), "{message}");
        assert!(message.contains("hsn-testkit-no-such-binary"), "{message}");
    }

    #[test]
    fn bin_dir_is_the_workspace_bin() {
        if std::env::var_os("HSN_BIN_DIR").is_none() {
            assert!(bin_dir().ends_with("bin"));
            assert!(!bin_dir().to_string_lossy().contains(".."));
        }
    }
}
