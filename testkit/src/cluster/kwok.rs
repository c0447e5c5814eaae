//! A full control plane with fake nodes and pods, via `kwokctl --runtime binary`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use super::kubeconfig;
use super::kwokctl::KwokHome;
use super::process::{Proc, kill_pid};
use super::{ALL_BINARIES, bin, require_binaries};
use crate::Error;
use crate::wait::poll;
use crate::wait::wait_for_ok;

/// Deadline for `kwokctl create cluster` plus the cluster becoming usable.
const CREATE_TIMEOUT: Duration = Duration::from_secs(180);

/// Deadline for the apiserver to come back after [`KwokCluster::start_apiserver`].
const RESTART_TIMEOUT: Duration = Duration::from_secs(120);

/// Deadline for kwok to mark new nodes Ready.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// kwok's fake-node annotation. kwokctl runs its controller with `--manage-all-nodes`, so
/// this is for anything else (e.g. a kwok deployed by the e2e suite) selecting on it.
pub const KWOK_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// A node for kwok to fake, placed in a region and zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeNode {
    /// Node name, also its `kubernetes.io/hostname` label.
    pub name: String,
    /// `topology.kubernetes.io/region`.
    pub region: String,
    /// `topology.kubernetes.io/zone`.
    pub zone: String,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
}

impl FakeNode {
    /// A node with no extra labels.
    pub fn new(name: &str, region: &str, zone: &str) -> Self {
        Self {
            name: name.to_string(),
            region: region.to_string(),
            zone: zone.to_string(),
            labels: BTreeMap::new(),
        }
    }

    /// Adds an extra label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }

    /// The Node object: kwok annotation, topology/hostname/os labels, then the extra labels.
    pub fn to_node(&self) -> Node {
        let mut labels = BTreeMap::from([
            ("kubernetes.io/hostname".to_string(), self.name.clone()),
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            ("kubernetes.io/arch".to_string(), "amd64".to_string()),
            (
                "topology.kubernetes.io/region".to_string(),
                self.region.clone(),
            ),
            ("topology.kubernetes.io/zone".to_string(), self.zone.clone()),
            ("type".to_string(), "kwok".to_string()),
        ]);
        labels.extend(self.labels.clone());
        Node {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(labels),
                annotations: Some(BTreeMap::from([(
                    KWOK_NODE_ANNOTATION.to_string(),
                    "fake".to_string(),
                )])),
                ..ObjectMeta::default()
            },
            ..Node::default()
        }
    }
}

/// A kwok cluster (etcd, apiserver, controller-manager, scheduler, kwok) in a temp dir.
pub struct KwokCluster {
    client: Client,
    kubeconfig: PathBuf,
    /// Forwards the node network's address to the apiserver (clusters for real nodes).
    node_access: Option<NodeAccess>,
    home: KwokHome,
}

/// How real nodes reach a cluster's apiserver, which listens on 127.0.0.1 only: a forwarder
/// on the host's address on their network.
#[derive(Debug)]
struct NodeAccess {
    server: String,
    // Held for its Drop: stops the forwarder.
    _forwarder: Proc,
}

impl fmt::Debug for KwokCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KwokCluster")
            .field("name", &self.home.name())
            .field("kubeconfig", &self.kubeconfig)
            .field("workdir", &self.home.workdir())
            .finish_non_exhaustive()
    }
}

impl KwokCluster {
    /// Creates the cluster and waits until the API serves and `default` ServiceAccount exists.
    pub async fn create(name: &str) -> Result<Self, Error> {
        Self::create_with(name, None).await
    }

    /// [`Self::create`], plus the apiserver made reachable from real nodes
    /// (`hsn_testkit::node`) at `gateway`, the host's address on their network (e.g.
    /// `NodeNetwork::gateway`): socat forwards it to the apiserver on 127.0.0.1, and the
    /// serving certificate names it. kwok's fake nodes work alongside as before.
    pub async fn create_for_nodes(name: &str, gateway: Ipv4Addr) -> Result<Self, Error> {
        Self::create_with(name, Some(gateway)).await
    }

    async fn create_with(name: &str, gateway: Option<Ipv4Addr>) -> Result<Self, Error> {
        require_binaries(ALL_BINARIES)?;
        let deadline = Instant::now() + CREATE_TIMEOUT;
        let home = KwokHome::new(name, gateway.map(IpAddr::from))?;
        let timeout = format!("--timeout={}s", CREATE_TIMEOUT.as_secs());
        let contexts = home.contexts_flag();
        let create = ["create", "cluster", "--runtime=binary", &contexts, &timeout];
        home.run(&create, CREATE_TIMEOUT).await?;

        let kubeconfig = home.cluster_dir().join("kubeconfig.yaml");
        let client = kubeconfig::client(&kubeconfig).await?;
        let node_access = match gateway {
            Some(gateway) => {
                let port = kubeconfig::server_port(&kubeconfig)?;
                Some(NodeAccess {
                    server: format!("https://{gateway}:{port}"),
                    _forwarder: forward(gateway, port, home.dir())?,
                })
            }
            None => None,
        };
        let cluster = Self {
            client,
            kubeconfig,
            node_access,
            home,
        };
        cluster
            .wait_usable(deadline.saturating_duration_since(Instant::now()))
            .await?;
        Ok(cluster)
    }

    /// Ready API plus the `default` ServiceAccount, which proves controller-manager runs and
    /// lets Pods be admitted. Fails at once if a component dies.
    async fn wait_usable(&self, timeout: Duration) -> Result<(), Error> {
        let accounts: Api<ServiceAccount> = Api::namespaced(self.client.clone(), "default");
        let (accounts, client) = (&accounts, &self.client);
        let what = format!("kwok cluster {} to be usable", self.name());
        let probe = move || async move {
            kubeconfig::probe_ready(client).await?;
            accounts
                .get("default")
                .await
                .map(drop)
                .map_err(|e| format!("getting default/default ServiceAccount: {e}"))
        };
        let usable = poll(&what, timeout, || self.home.check_components(), probe).await;
        usable.map_err(|e| match e {
            Error::Timeout { last, .. } => Error::NotReady {
                component: format!("kwok cluster {}", self.name()),
                timeout,
                last: last.unwrap_or_default(),
                log: self.home.cluster_dir().join("logs"),
                tail: self.home.component_logs(),
            },
            other => other,
        })
    }

    /// Creates kwok-managed Node objects and waits until kwok reports them all Ready.
    pub async fn add_nodes(&self, nodes: &[FakeNode]) -> Result<(), Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        for node in nodes {
            api.create(&PostParams::default(), &node.to_node())
                .await
                .map_err(|source| Error::Api {
                    action: format!("creating node {}", node.name),
                    source,
                })?;
        }
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let what = format!("nodes {names:?} to become Ready");
        let (api, names) = (&api, &names);
        wait_for_ok(&what, NODE_READY_TIMEOUT, move || async move {
            for name in names {
                let node = api
                    .get(name)
                    .await
                    .map_err(|e| format!("getting {name}: {e}"))?;
                if !node_ready(&node) {
                    return Err(format!("node {name} is not Ready yet"));
                }
            }
            Ok(())
        })
        .await
    }

    /// A client authenticated as the cluster admin.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// kwokctl's kubeconfig for this cluster (refers to certificate files in the workdir).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// kwokctl's kubeconfig made self-contained (the files it names put inline): what a
    /// member's kubeconfig Secret must hold.
    pub fn self_contained_kubeconfig(&self) -> Result<Vec<u8>, Error> {
        kubeconfig::self_contained(&self.kubeconfig)
    }

    /// The apiserver's URL as real nodes reach it (clusters made by [`Self::create_for_nodes`]).
    pub fn node_server_url(&self) -> Option<&str> {
        self.node_access.as_ref().map(|a| a.server.as_str())
    }

    /// The cluster CA's certificate and key files (PEM), e.g. to issue a kubelet its client
    /// certificate.
    pub fn ca_files(&self) -> (PathBuf, PathBuf) {
        let pki = self.home.cluster_dir().join("pki");
        (pki.join("ca.crt"), pki.join("ca.key"))
    }

    /// The cluster name given to [`KwokCluster::create`].
    pub fn name(&self) -> &str {
        self.home.name()
    }

    /// `bin/kubectl --kubeconfig <this cluster's kubeconfig>`, ready for more args.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(bin("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// kwokctl's workdir (`KWOK_WORKDIR`), e.g. for `kwokctl stop cluster --name <name>`.
    pub fn kwok_workdir(&self) -> &Path {
        self.home.workdir()
    }

    /// The private temp dir holding kwokctl's workdir and logs.
    pub fn dir(&self) -> &Path {
        self.home.dir()
    }

    /// Pids of the cluster's live component processes.
    pub fn pids(&self) -> Vec<u32> {
        self.home.pids()
    }

    /// Takes the cluster's API down, e.g. for failover tests: SIGKILLs kube-apiserver (an
    /// abrupt failure; its graceful shutdown would wait on watches) and the components that
    /// live off it. kube-scheduler and kube-controller-manager exit on their own once an
    /// outage outlasts their leader Lease, at a moment nobody controls; stopping them with
    /// the API makes [`KwokCluster::start_apiserver`] bring all three back together.
    /// Etcd and the fake kubelets (kwok) keep running, as a node's data plane would.
    pub async fn stop_apiserver(&self) -> Result<(), Error> {
        let apiserver =
            self.running_pid("kube-apiserver")
                .ok_or_else(|| Error::ComponentNotRunning {
                    cluster: self.name().to_string(),
                    component: "kube-apiserver".into(),
                })?;
        let mut pids = vec![apiserver];
        pids.extend(
            ["kube-scheduler", "kube-controller-manager"]
                .iter()
                .filter_map(|c| self.running_pid(c)),
        );
        // Waits (bounded) for the processes to vanish; run it where blocking is allowed.
        let _ = tokio::task::spawn_blocking(move || pids.into_iter().for_each(kill_pid)).await;
        // kwokctl treats a pid file of a dead-but-unreaped process as running; remove them
        // (as `kwokctl` itself does when it stops a component) so `start` restarts them.
        self.home.forget_dead_components();
        Ok(())
    }

    fn running_pid(&self, component: &str) -> Option<u32> {
        std::fs::read_to_string(self.home.pid_file(component))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|&pid| super::process::process_alive(pid))
    }

    /// Restarts the stopped components (`kwokctl start cluster`) and waits for the API.
    pub async fn start_apiserver(&self) -> Result<(), Error> {
        let timeout = format!("--timeout={}s", RESTART_TIMEOUT.as_secs());
        self.home
            .run(&["start", "cluster", &timeout], RESTART_TIMEOUT)
            .await?;
        self.wait_usable(RESTART_TIMEOUT).await
    }

    /// Deletes the cluster and its directory without blocking the async runtime.
    pub async fn delete(self) {
        // Drop runs `kwokctl delete` and waits for processes; do that off the runtime.
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

/// Forwards `gateway:port` to `127.0.0.1:port` (socat, tied to the test process) until the
/// returned process is dropped; its log goes to `dir`.
fn forward(gateway: Ipv4Addr, port: u16, dir: &Path) -> Result<Proc, Error> {
    let mut cmd = Command::new("socat");
    cmd.arg(format!("TCP-LISTEN:{port},bind={gateway},fork,reuseaddr"))
        .arg(format!("TCP:127.0.0.1:{port}"));
    Proc::spawn(
        "socat (node network → apiserver)",
        cmd,
        &dir.join(format!("forward-{port}.log")),
    )
}

/// Whether the Node's Ready condition is True.
pub(crate) fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conds| {
            conds
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}
