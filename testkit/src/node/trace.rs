//! What a real node puts on the machine, to check that nothing of it is left.

use std::path::PathBuf;

use serde_json::json;

use crate::process_alive;

/// The sysctls the kubelet sets machine-wide (`/proc/sys/...`), which teardown restores.
pub const KUBELET_SYSCTLS: &[&str] = &[
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
];

/// Their current values, in [`KUBELET_SYSCTLS`] order.
pub fn kubelet_sysctls() -> Vec<String> {
    KUBELET_SYSCTLS
        .iter()
        .map(|s| {
            std::fs::read_to_string(format!("/proc/sys/{s}"))
                .map(|v| v.trim().to_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// Everything a node created on the host: taken from a running node
/// ([`super::RealNode::trace`]), checked after it is gone ([`NodeTrace::leftovers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTrace {
    /// Processes of the node when the trace was taken.
    pub pids: Vec<u32>,
    /// Its network namespace (`/run/netns/<name>`).
    pub netns: String,
    /// The host end of its veth.
    pub host_if: String,
    /// Its cgroup, the same path in every v1 hierarchy.
    pub cgroup: String,
    /// Its directory.
    pub dir: PathBuf,
}

impl NodeTrace {
    /// One line of JSON (a helper process reports it to its parent).
    pub fn to_json(&self) -> String {
        json!({
            "pids": self.pids,
            "netns": self.netns,
            "host_if": self.host_if,
            "cgroup": self.cgroup,
            "dir": self.dir,
        })
        .to_string()
    }

    /// Reads [`Self::to_json`] back.
    pub fn from_json(text: &str) -> anyhow::Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        Ok(Self {
            pids: serde_json::from_value(v["pids"].clone())?,
            netns: s("netns"),
            host_if: s("host_if"),
            cgroup: s("cgroup"),
            dir: s("dir").into(),
        })
    }

    /// What of the node is still on the machine: live processes, the namespace, the
    /// veth, cgroup directories, mounts under its directory, the directory. Empty once it
    /// is all gone.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let alive: Vec<u32> = self
            .pids
            .iter()
            .copied()
            .filter(|&p| process_alive(p))
            .collect();
        if !alive.is_empty() {
            left.push(format!("processes {alive:?}"));
        }
        if PathBuf::from("/run/netns").join(&self.netns).exists() {
            left.push(format!("network namespace {}", self.netns));
        }
        if PathBuf::from("/sys/class/net").join(&self.host_if).exists() {
            left.push(format!("link {}", self.host_if));
        }
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in entries.flatten() {
                let path = h.path().join(self.cgroup.trim_start_matches('/'));
                if path.exists() {
                    left.push(format!("cgroup {}", path.display()));
                }
            }
        }
        let dir = self.dir.display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let count = mounts.lines().filter(|l| l.contains(&dir)).count();
        if count > 0 {
            left.push(format!("{count} mounts under {dir}"));
        }
        if self.dir.exists() {
            left.push(format!("directory {dir}"));
        }
        left
    }
}
