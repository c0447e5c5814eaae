//! What a real node's containerd, kubelet and CNI plugins read, written into its directory.

use std::net::Ipv4Addr;
use std::path::Path;

use std::process::Command;

use anyhow::{Context as _, Result, bail};

use crate::cluster::kubeconfig::{self, KubeconfigSpec};

/// The sandbox image containerd runs for every pod; `hack/images.sh` builds it (image
/// `pause`), and [`super::NodeImages`] imports it into every node.
pub const PAUSE_IMAGE: &str = "localhost/hsn-pause:0.1.0";

/// Everything the node's processes read, under `dir`.
pub(super) struct NodeFiles<'a> {
    pub(super) dir: &'a Path,
    pub(super) name: &'a str,
    pub(super) ip: Ipv4Addr,
    /// The node's pod subnet for non-hostNetwork pods, `10.244.<n>.0/24`.
    pub(super) pod_subnet: String,
    pub(super) cgroup: &'a str,
    pub(super) server: &'a str,
    pub(super) ca_cert: &'a Path,
    pub(super) ca_key: &'a Path,
}

impl NodeFiles<'_> {
    pub(super) fn write(&self) -> Result<()> {
        let write = |name: &str, text: String| {
            let path = self.dir.join(name);
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
        };
        std::fs::create_dir_all(self.dir.join("cni"))?;
        write("containerd.toml", self.containerd())?;
        write("cni/10-hsn-node.conflist", self.cni())?;
        write("kubelet.yaml", self.kubelet())?;
        self.kubeconfig()
    }

    /// containerd 1.6 (config version 2). `restrict_oom_score_adj`: these machines lack
    /// CAP_SYS_RESOURCE, and runc fails to start any container that raises its OOM score.
    /// Plugins that would write outside the node's directories (`/opt/containerd`) or
    /// need what is not here are off.
    fn containerd(&self) -> String {
        format!(
            r#"version = 2
disabled_plugins = [
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
]
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
"#,
            cni = self.dir.join("cni").display()
        )
    }

    /// The bridge plugin with host-local addresses, for pods that are not hostNetwork; the
    /// node needs a CNI config to turn Ready even when every pod is hostNetwork. Their
    /// traffic leaving the node is masqueraded to the node's address (the node network
    /// knows no route to pod subnets).
    fn cni(&self) -> String {
        serde_json::json!({
            "cniVersion": "0.4.0",
            "name": "hsn-node",
            "plugins": [{
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": self.pod_subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }],
        })
        .to_string()
    }

    /// cgroup v1 (these machines are hybrid) with the cgroupfs driver, pods under the
    /// node's own cgroup; no iptables chains, swap allowed, no read-only port, image garbage
    /// collection off (the images are imported, not pullable) and eviction only when the
    /// machine is nearly full. The apiserver reaches the kubelet with no client
    /// certificate (kwokctl configures none), so anonymous requests are allowed: the
    /// kubelet listens only on the test's node network.
    fn kubelet(&self) -> String {
        format!(
            r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: {cgroup}
failSwapOn: false
makeIPTablesUtilChains: false
readOnlyPort: 0
address: {ip}
volumePluginDir: {plugins}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 50Mi
  nodefs.available: 1%
  imagefs.available: 1%
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
"#,
            cgroup = self.cgroup,
            ip = self.ip,
            plugins = self.dir.join("volume-plugins").display(),
        )
    }

    /// The kubelet's kubeconfig: a client certificate for `system:node:<name>` in
    /// `system:nodes`, signed by the cluster's CA with `openssl` (kwokctl writes its CA key
    /// as SEC1 or PKCS#1 PEM), so the Node authorizer and NodeRestriction treat it as that
    /// node's.
    fn kubeconfig(&self) -> Result<()> {
        let key = self.dir.join("kubelet.key");
        let csr = self.dir.join("kubelet.csr");
        let cert = self.dir.join("kubelet.crt");
        let subject = format!("/O=system:nodes/CN=system:node:{}", self.name);
        openssl(
            Command::new("openssl")
                .args(["req", "-new", "-nodes"])
                .args([
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-subj",
                    &subject,
                    "-keyout",
                    path(&key),
                    "-out",
                    path(&csr),
                ]),
        )?;
        openssl(Command::new("openssl").args([
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            path(&csr),
            "-CA",
            path(self.ca_cert),
            "-CAkey",
            path(self.ca_key),
            "-CAcreateserial",
            "-CAserial",
            path(&self.dir.join("ca.srl")),
            "-out",
            path(&cert),
        ]))?;
        let read = |path: &Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        kubeconfig::write(
            &self.dir.join("kubeconfig"),
            &KubeconfigSpec {
                name: self.name,
                server: self.server,
                ca_pem: &read(self.ca_cert)?,
                cert_pem: &read(&cert)?,
                key_pem: &read(&key)?,
            },
        )?;
        Ok(())
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn openssl(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().context("running openssl")?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
