//! Real Kubernetes nodes: containerd + kubelet on this machine, each in namespaces of its own.
//!
//! A [`RealNode`] is a network namespace plugged into a [`NodeNetwork`] bridge, with its own
//! mount and UTS namespaces (`/run`, `/var/lib`, `/var/log`, sysfs and bpffs are the node's
//! alone, its hostname is its name), a cgroup under the test process's own, and containerd
//! and a kubelet (`bin/kubelet`, built by `make tools`) registered to a [`KwokCluster`]
//! made with [`KwokCluster::create_for_nodes`]. kwok keeps faking the nodes annotated as
//! its own, so one cluster mixes kwok nodes (scale) and real ones (pods that really run).
//! Images come without a registry: [`NodeImages`] builds them with `hack/images.sh` from the
//! cargo-built binaries, and each node imports them into its containerd at start, under the
//! names the chart and the operator use.
//!
//! Pods reach the API server the way in-cluster clients do: the `kubernetes` Service's
//! address, which each node translates to the API server's address on the bridge (the one
//! rule kube-proxy would install for it).
//!
//! Teardown ([`Drop`], or a watchdog when the test process dies without destructors) kills
//! every process in the node's cgroup, removes the cgroups, the namespace and the node's
//! files, and restores the sysctls the kubelet sets machine-wide once no node on the
//! machine needs them (`host.sh`). The facts this follows were measured first:
//! `../shared/design/real-nodes.md`.

mod files;
mod network;
mod trace;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Node;
use kube::Api;

pub use files::PAUSE_IMAGE;
pub use network::NodeNetwork;
pub use trace::{KUBELET_SYSCTLS, NodeTrace, kubelet_sysctls};

use crate::cluster::kwokctl::KUBERNETES_SERVICE_IP;
use crate::cluster::process::Proc;
use crate::cluster::watchdog::Watchdog;
use crate::netns::Netns;
use crate::{KwokCluster, bin, wait_for_ok};

/// The node's first process: mounts, containerd, image import, then the kubelet.
const NODE_SH: &str = include_str!("node.sh");
/// Host-side steps: holding the kubelet's sysctls, and teardown.
const HOST_SH: &str = include_str!("host.sh");

/// From start to the Node object reporting Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Host commands (Debian packages, hack/install-deps.sh) a real node runs.
const HOST_COMMANDS: &[(&str, &str)] = &[
    ("containerd", "containerd"),
    ("ctr", "containerd"),
    ("runc", "runc"),
    ("nsenter", "util-linux"),
    ("unshare", "util-linux"),
    ("flock", "util-linux"),
    ("iptables", "iptables"),
    ("socat", "socat"),
    ("openssl", "openssl"),
];

/// CNI plugins the node's config uses.
const CNI_PLUGINS: &[&str] = &["bridge", "host-local", "loopback"];

/// Why real nodes cannot run here (not root, a package or a `make tools` binary missing),
/// naming exactly what is missing; `None` when they can.
pub fn missing() -> Option<String> {
    if !crate::netns::is_root() {
        return Some("real nodes need root (namespaces, mounts, cgroups)".into());
    }
    let mut missing: Vec<String> = HOST_COMMANDS
        .iter()
        .filter(|(cmd, _)| !on_path(cmd))
        .map(|(cmd, package)| format!("{cmd} (Debian package {package})"))
        .collect();
    missing.extend(
        CNI_PLUGINS
            .iter()
            .filter(|p| !Path::new("/usr/lib/cni").join(p).exists())
            .map(|p| format!("/usr/lib/cni/{p} (Debian package containernetworking-plugins)")),
    );
    for binaries in [crate::ALL_BINARIES, crate::NODE_BINARIES] {
        if let Err(e) = crate::require_binaries(binaries) {
            missing.push(e.to_string());
        }
    }
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        missing.push(
            "cgroup v1 hierarchies under /sys/fs/cgroup (the kubelet here runs with cgroupfs v1)"
                .into(),
        );
    }
    (!missing.is_empty()).then(|| {
        format!(
            "real nodes need: {} (`make deps tools` installs them)",
            missing.join(", ")
        )
    })
}

fn on_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir| dir.join(cmd).is_file())
}

/// What to start.
#[derive(Debug, Clone, Default)]
pub struct NodeSpec {
    /// Node name (also its hostname and `kubernetes.io/hostname`).
    pub name: String,
    /// Labels the kubelet registers the Node with.
    pub labels: BTreeMap<String, String>,
    /// Taints the kubelet registers the Node with, `key=value:Effect`.
    pub taints: Vec<String>,
    /// OCI archives to import into the node's containerd ([`NodeImages::archives`]).
    pub images: Vec<PathBuf>,
}

impl NodeSpec {
    /// A node named `name` with no labels and no images.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Adds a taint.
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.taints.push(format!("{key}={value}:{effect}"));
        self
    }

    /// Imports these image archives.
    pub fn images(mut self, images: &NodeImages) -> Self {
        self.images.extend(images.archives());
        self
    }
}

/// A running node; torn down on drop.
pub struct RealNode {
    name: String,
    ip: Ipv4Addr,
    id: String,
    host_if: String,
    cgroup: String,
    dir: PathBuf,
    kubelet: Option<Proc>,
    netns: Option<Netns>,
    watchdog: Watchdog,
}

impl std::fmt::Debug for RealNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealNode")
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl RealNode {
    /// Starts the node on `network`, registered to `cluster`, and waits until its Node is
    /// Ready.
    pub async fn start(
        cluster: &KwokCluster,
        network: &NodeNetwork,
        spec: NodeSpec,
    ) -> Result<Self> {
        if let Some(why) = missing() {
            bail!(why);
        }
        let server = cluster.node_server_url().with_context(|| {
            format!(
                "cluster {} was not made for real nodes: create it with KwokCluster::create_for_nodes",
                cluster.name()
            )
        })?;
        // Quick blocking steps (ip, openssl, files); the slow part runs in the node's processes.
        let node = Self::launch(cluster, network, &spec, server)?;
        node.wait_ready(cluster).await?;
        Ok(node)
    }

    fn launch(
        cluster: &KwokCluster,
        network: &NodeNetwork,
        spec: &NodeSpec,
        server: &str,
    ) -> Result<Self> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let id = format!("{pid}-{seq}");
        let cgroup = format!(
            "{}/hsn-node-{id}",
            own_cgroup("memory")?.trim_end_matches('/')
        );
        // Removed on an early return, until the watchdog and Drop own it.
        let tmp = tempfile::Builder::new()
            .prefix("hsn-node-")
            .tempdir()
            .context("creating the node's directory")?;
        let host_if = format!("hn{pid}-{seq}");
        let host_sh = tmp.path().join("host.sh");
        std::fs::write(&host_sh, HOST_SH).context("writing host.sh")?;
        let netns = Netns::unique("node")?;
        // From here on, a hard death of the test runs the same teardown as Drop.
        let watchdog = Watchdog::spawn(
            r#"sh "$1" teardown "$2" "$3" "$4" "$5" "$6""#,
            [
                host_sh.as_os_str(),
                id.as_ref(),
                cgroup.as_ref(),
                netns.name().as_ref(),
                tmp.path().as_os_str(),
                host_if.as_ref(),
            ],
        )?;
        let dir = tmp.keep();
        let mut node = Self {
            name: spec.name.clone(),
            ip: Ipv4Addr::UNSPECIFIED,
            host_if,
            id,
            cgroup,
            dir,
            kubelet: None,
            netns: Some(netns),
            watchdog,
        };
        make_cgroup(&node.cgroup)?;
        node.host_sh(&["hold", &node.id])?;
        let ns = node.netns.as_ref().expect("set above");
        node.ip = network.attach(ns, &node.host_if)?;
        let (ca_cert, ca_key) = cluster.ca_files();
        files::NodeFiles {
            dir: &node.dir,
            name: &node.name,
            ip: node.ip,
            pod_subnet: format!("10.244.{}.0/24", seq % 256),
            cgroup: &node.cgroup,
            server,
            ca_cert: &ca_cert,
            ca_key: &ca_key,
        }
        .write()?;

        let api = server.trim_start_matches("https://");
        let labels: Vec<String> = spec
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let images: Vec<String> = spec
            .images
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", ns.path().display()))
            .args([
                "--",
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
            ])
            .args(["--", "sh", "-c", NODE_SH, "node.sh"])
            .env("NODE_NAME", &node.name)
            .env("NODE_DIR", &node.dir)
            .env("NODE_CGROUP", &node.cgroup)
            .env("NODE_IP", node.ip.to_string())
            .env("NODE_LABELS", labels.join(","))
            .env("NODE_TAINTS", spec.taints.join(","))
            .env("NODE_IMAGES", images.join(" "))
            .env("KUBELET", bin("kubelet"))
            .env("SERVICE_DNAT", format!("{KUBERNETES_SERVICE_IP}:443={api}"));
        let log = node.dir.join("kubelet.log");
        node.kubelet = Some(Proc::spawn(&format!("node {}", node.name), cmd, &log)?);
        Ok(node)
    }

    async fn wait_ready(&self, cluster: &KwokCluster) -> Result<()> {
        let nodes: Api<Node> = Api::all(cluster.client());
        let what = format!("real node {} to be Ready", self.name);
        let log = self.dir.join("kubelet.log");
        let (nodes, name, log) = (&nodes, &self.name, &log);
        let ready = wait_for_ok(&what, READY_TIMEOUT, || async move {
            if self.kubelet_pid().is_none() {
                return Err(format!(
                    "its kubelet exited; {}:\n{}",
                    log.display(),
                    crate::cluster::process::tail(log, 30)
                ));
            }
            let node = nodes.get(name).await.map_err(|e| e.to_string())?;
            if crate::cluster::node_ready(&node) {
                Ok(())
            } else {
                Err("registered, not Ready yet".into())
            }
        })
        .await;
        ready.map_err(|e| {
            let log = self.dir.join("kubelet.log");
            anyhow::anyhow!(
                "{e}\nlast kubelet lines ({}):\n{}",
                log.display(),
                crate::cluster::process::tail(&log, 30)
            )
        })
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's address on the [`NodeNetwork`] (its InternalIP, `eth0` in its namespace).
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The node's network namespace: what its hostNetwork pods see.
    pub fn netns(&self) -> &Netns {
        self.netns.as_ref().expect("present until drop")
    }

    /// The node's directory: configs, `kubelet.log`, `containerd.log`, its `/run`,
    /// `/var/lib` and `/var/log` under `root/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The kubelet's process id, while it runs.
    pub fn kubelet_pid(&self) -> Option<u32> {
        let pid = self.kubelet.as_ref()?.pid();
        crate::process_alive(pid).then_some(pid)
    }

    /// Kills the kubelet alone (SIGKILL), as when it crashes: containerd and the containers
    /// keep running, the Node goes NotReady once its lease lapses.
    pub fn kill_kubelet(&self) {
        if let Some(pid) = self.kubelet_pid() {
            crate::cluster::process::kill_pid(pid);
        }
    }

    /// Runs `program args` inside the node (its mount, network and UTS namespaces, entered
    /// through its containerd), e.g. `ctr`, `bpftool` or `ip`; returns stdout.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        let pid = std::fs::read_to_string(self.dir.join("containerd.pid"))
            .context("the node's containerd has not started")?;
        let out = Command::new("nsenter")
            .args(["--target", pid.trim(), "--mount", "--net", "--uts", "--"])
            .arg(program)
            .args(args)
            .output()
            .with_context(|| format!("running {program} in node {}", self.name))?;
        if !out.status.success() {
            bail!(
                "{program} {} in node {}: {}",
                args.join(" "),
                self.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The resident memory of every process of the node (kubelet, containerd, shims and
    /// containers), in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.pids()
            .iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|status| {
                let line = status.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .sum::<u64>()
            * 1024
    }

    /// Every process in the node's cgroup tree.
    pub fn pids(&self) -> Vec<u32> {
        let root = PathBuf::from("/sys/fs/cgroup/pids").join(self.cgroup.trim_start_matches('/'));
        let mut pids = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(procs.lines().filter_map(|l| l.parse::<u32>().ok()));
            }
            if let Ok(entries) = std::fs::read_dir(&dir) {
                dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
        }
        pids
    }

    /// What the node put on the machine, to check later that teardown removed it.
    pub fn trace(&self) -> NodeTrace {
        NodeTrace {
            pids: self.pids(),
            netns: self.netns().name().to_owned(),
            host_if: self.host_if.clone(),
            cgroup: self.cgroup.clone(),
            dir: self.dir.clone(),
        }
    }

    /// Tears the node down without blocking the async runtime.
    pub async fn stop(self) {
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }

    fn host_sh(&self, args: &[&str]) -> Result<()> {
        let out = Command::new("sh")
            .arg(self.dir.join("host.sh"))
            .args(args)
            .output()
            .context("running host.sh")?;
        if !out.status.success() {
            bail!(
                "host.sh {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        // The kubelet first (SIGTERM, then SIGKILL), so it does not restart what goes next.
        drop(self.kubelet.take());
        let netns = self.netns.take();
        let name = netns
            .as_ref()
            .map(|n| n.name().to_owned())
            .unwrap_or_default();
        let torn_down = self.host_sh(&[
            "teardown",
            &self.id,
            &self.cgroup,
            &name,
            &self.dir.display().to_string(),
            &self.host_if,
        ]);
        if let Err(e) = &torn_down {
            eprintln!(
                "tearing node {} down: {e:#}; the watchdog tries again when the test process exits",
                self.name
            );
        }
        // Already deleted by host.sh; dropping it tries again, harmlessly.
        drop(netns);
        if torn_down.is_ok() {
            self.watchdog.disarm();
        }
    }
}

/// The test process's own cgroup in the v1 hierarchy `controller` (e.g. `/` or
/// `/process_api/<id>`).
fn own_cgroup(controller: &str) -> Result<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").context("reading /proc/self/cgroup")?;
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_owned())
        })
        .next()
        .with_context(|| format!("no v1 {controller} cgroup in /proc/self/cgroup"))
}

/// Creates `cgroup` (absolute within each hierarchy) in every v1 hierarchy, as the kubelet
/// with the cgroupfs driver expects its `cgroupRoot`; cpuset levels get their parent's CPUs
/// and memory nodes (a new cpuset is empty, and nothing can join an empty one).
fn make_cgroup(cgroup: &str) -> Result<()> {
    let relative = cgroup.trim_start_matches('/');
    for entry in std::fs::read_dir("/sys/fs/cgroup").context("reading /sys/fs/cgroup")? {
        let hierarchy = entry?.path();
        if hierarchy.ends_with("unified") || !hierarchy.is_dir() {
            continue;
        }
        let path = hierarchy.join(relative);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        if hierarchy.ends_with("cpuset") {
            let mut dir = hierarchy.clone();
            for part in Path::new(relative).components() {
                let parent = dir.clone();
                dir.push(part);
                for file in ["cpuset.cpus", "cpuset.mems"] {
                    if std::fs::read_to_string(dir.join(file)).is_ok_and(|v| v.trim().is_empty()) {
                        let value = std::fs::read_to_string(parent.join(file))?;
                        std::fs::write(dir.join(file), value.trim())
                            .with_context(|| format!("seeding {}", dir.join(file).display()))?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// OCI archives of the images real nodes run, built once per test from the cargo-built
/// binaries by `hack/images.sh`, named exactly as the chart and the operator reference them
/// (and the pause image, [`PAUSE_IMAGE`]).
#[derive(Debug)]
pub struct NodeImages {
    archives: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl NodeImages {
    /// Builds `pause` and `images` (names of `hack/images/<name>.conf`) from the binaries in
    /// `bin_dir` (e.g. the parent of [`crate::cargo_bin`]`("hsn-agent")`).
    pub fn build(images: &[&str], bin_dir: &Path) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut archives = Vec::new();
        for image in std::iter::once(&"pause").chain(images) {
            archives.push(crate::images::build(image, bin_dir, dir.path())?.archive);
        }
        Ok(Self {
            archives,
            _dir: dir,
        })
    }

    /// The archives, pause first.
    pub fn archives(&self) -> Vec<PathBuf> {
        self.archives.clone()
    }
}
