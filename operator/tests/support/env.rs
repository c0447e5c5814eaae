//! The clusters and operator of the e2e suite: started here, or named by the `HSN_E2E_*`
//! variables (kind/README.md), behind one interface.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail, ensure};
use hsn_api::MecCluster;
use hsn_testkit::{ControlPlane, FakeNode, KWOK_NODE_ANNOTATION, KwokCluster, wait_for};
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, ResourceExt};

use super::{DEADLINE, OPERATOR_NS, Operator, install_crds, member, sum_samples};

/// `HSN_E2E_HUB_KUBECONFIG`: the hub's kubeconfig; unset, the suite starts its own hub.
pub const HUB_VAR: &str = "HSN_E2E_HUB_KUBECONFIG";
/// `HSN_E2E_MEMBERS`: `name=kubeconfig,...`, member clusters already registered in that hub as
/// MecClusters `name`; unset, the suite starts kwok clusters and registers them.
pub const MEMBERS_VAR: &str = "HSN_E2E_MEMBERS";
/// `HSN_E2E_OPERATOR`: `local` (default) runs `hsn-operator` here; `external` uses the one
/// running in the hub's namespace `hsn-system` (the Helm chart's).
pub const OPERATOR_VAR: &str = "HSN_E2E_OPERATOR";
/// `HSN_E2E_NODE_EXEC`: a command that runs a command on a member node when given the node's
/// name first, e.g. `docker exec` on kind; unset, steps that need it are skipped.
pub const NODE_EXEC_VAR: &str = "HSN_E2E_NODE_EXEC";

/// Where the e2e suite's clusters and operator come from.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct E2eEnv {
    /// The given hub, if any.
    pub hub: Option<PathBuf>,
    /// The given members (MecCluster name, kubeconfig), in order.
    pub members: Vec<(String, PathBuf)>,
    /// The operator runs in the hub already.
    pub external_operator: bool,
    /// Command prefix that runs a command on a node.
    pub node_exec: Vec<String>,
}

impl E2eEnv {
    /// Reads the `HSN_E2E_*` variables.
    pub fn from_env() -> Result<Self> {
        Self::parse(|name| std::env::var(name).ok())
    }

    /// The environment `var` describes; an empty value counts as unset.
    pub fn parse(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let hub = var(HUB_VAR).map(PathBuf::from);
        let mut members = Vec::new();
        for entry in var(MEMBERS_VAR)
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let (name, path) = entry
                .split_once('=')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                .with_context(|| format!("{MEMBERS_VAR}: {entry:?} is not name=kubeconfig"))?;
            members.push((name.to_string(), PathBuf::from(path)));
        }
        let external_operator = match var(OPERATOR_VAR).as_deref() {
            None | Some("local") => false,
            Some("external") => true,
            Some(other) => bail!("{OPERATOR_VAR}={other}: expected local or external"),
        };
        let node_exec = var(NODE_EXEC_VAR)
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect();
        ensure!(
            hub.is_some() != members.is_empty(),
            "set both {HUB_VAR} and {MEMBERS_VAR} (clusters that exist), or neither (local ones)"
        );
        ensure!(
            hub.is_some() || !external_operator,
            "{OPERATOR_VAR}=external needs {HUB_VAR}: the operator runs in that hub"
        );
        Ok(Self {
            hub,
            members,
            external_operator,
            node_exec,
        })
    }

    /// One line saying what the suite runs against.
    pub fn describe(&self) -> String {
        let Some(hub) = &self.hub else {
            return "local hub and kwok members, operator as a process".into();
        };
        let members: Vec<&str> = self.members.iter().map(|(n, _)| n.as_str()).collect();
        let operator = if self.external_operator {
            "the operator installed in the hub"
        } else {
            "the operator as a process"
        };
        format!("hub {}, members {members:?}, {operator}", hub.display())
    }
}

/// A client for the current context of the kubeconfig at `path`.
pub async fn client_for(path: &Path) -> Result<Client> {
    let kubeconfig = Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

/// The hub: a control plane started here (with the CRDs), or the one [`HUB_VAR`] names.
pub struct Hub {
    client: Client,
    kubeconfig: PathBuf,
    local: Option<ControlPlane>,
}

impl Hub {
    /// Starts a hub and installs the CRDs, or connects to the given one.
    pub async fn start_or_connect(env: &E2eEnv) -> Result<Self> {
        if let Some(path) = &env.hub {
            return Ok(Self {
                client: client_for(path).await?,
                kubeconfig: path.clone(),
                local: None,
            });
        }
        let cp = ControlPlane::start().await?;
        install_crds(&cp.client()).await?;
        Ok(Self {
            client: cp.client(),
            kubeconfig: cp.kubeconfig().to_path_buf(),
            local: Some(cp),
        })
    }

    /// A client for the hub.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The hub's kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Whether this suite started the hub (and throws it away at the end).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }
}

/// A member cluster under test.
pub struct Member {
    /// Its MecCluster's name.
    pub name: String,
    client: Client,
    outage: Outage,
}

/// How the suite takes a member away from the hub and gives it back.
enum Outage {
    /// A kwok cluster started here: its API server stops and starts again.
    ApiServer(KwokCluster),
    /// A cluster that exists: it keeps running while its kubeconfig Secret in the hub points
    /// at a port nothing listens on, which the operator sees as an API server that is down.
    Secret(SecretOutage),
}

struct SecretOutage {
    hub: Client,
    namespace: String,
    name: String,
    key: String,
    saved: Mutex<Option<ByteString>>,
}

/// Where a member's kubeconfig Secret points while it is away: refused at once, wherever the
/// operator runs (a process here, a pod in the hub).
pub const NOWHERE: &str = "https://127.0.0.1:1";

impl Member {
    /// A client for the member.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Makes the member unreachable from the operator.
    pub async fn go_away(&self) -> Result<()> {
        match &self.outage {
            Outage::ApiServer(c) => Ok(c.stop_apiserver().await?),
            Outage::Secret(s) => {
                eprintln!(
                    "{}: its kubeconfig Secret {}/{} now points at {NOWHERE}; the cluster runs on",
                    self.name, s.namespace, s.name
                );
                s.redirect().await
            }
        }
    }

    /// Makes the member reachable again.
    pub async fn come_back(&self) -> Result<()> {
        match &self.outage {
            Outage::ApiServer(c) => Ok(c.start_apiserver().await?),
            Outage::Secret(s) => {
                eprintln!("{}: its kubeconfig Secret is restored", self.name);
                s.restore().await
            }
        }
    }

    async fn existing(hub: &Client, name: &str, kubeconfig: &Path) -> Result<Self> {
        let mec = Api::<MecCluster>::all(hub.clone())
            .get_opt(name)
            .await?
            .with_context(|| {
                format!(
                    "no MecCluster {name} in the hub: register it first (hack/kind-register.sh)"
                )
            })?;
        let secret = mec
            .spec
            .kubeconfig_secret_ref
            .with_context(|| format!("MecCluster {name} has no kubeconfigSecretRef"))?;
        Ok(Self {
            name: name.to_string(),
            client: client_for(kubeconfig).await?,
            outage: Outage::Secret(SecretOutage {
                hub: hub.clone(),
                namespace: secret.namespace.unwrap_or_else(|| OPERATOR_NS.into()),
                name: secret.name,
                key: secret.key,
                saved: Mutex::new(None),
            }),
        })
    }
}

impl SecretOutage {
    fn api(&self) -> Api<Secret> {
        Api::namespaced(self.hub.clone(), &self.namespace)
    }

    async fn write(&self, kubeconfig: &ByteString) -> Result<()> {
        let patch = serde_json::json!({"data": {&self.key: kubeconfig}});
        self.api()
            .patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    async fn redirect(&self) -> Result<()> {
        let secret = self.api().get(&self.name).await?;
        let original = secret
            .data
            .and_then(|mut d| d.remove(&self.key))
            .with_context(|| {
                format!(
                    "Secret {}/{} has no key {}",
                    self.namespace, self.name, self.key
                )
            })?;
        let mut kubeconfig = Kubeconfig::from_yaml(std::str::from_utf8(&original.0)?)?;
        for cluster in kubeconfig
            .clusters
            .iter_mut()
            .filter_map(|c| c.cluster.as_mut())
        {
            cluster.server = Some(NOWHERE.into());
        }
        // JSON is YAML: any kubeconfig loader reads it.
        let nowhere = ByteString(serde_json::to_vec(&kubeconfig)?);
        self.saved.lock().unwrap().get_or_insert(original);
        self.write(&nowhere).await
    }

    async fn restore(&self) -> Result<()> {
        let original = self.saved.lock().unwrap().take();
        self.write(&original.context("the Secret was not redirected")?)
            .await
    }
}

/// The members: for each `local` (name, region, fake nodes) a kwok cluster registered in the
/// hub, or the clusters [`MEMBERS_VAR`] names, as many and in the same order.
pub async fn members(
    env: &E2eEnv,
    hub: &Hub,
    local: Vec<(&str, &str, Vec<FakeNode>)>,
) -> Result<Vec<Member>> {
    let mut out = Vec::new();
    if env.members.is_empty() {
        for (name, region, nodes) in local {
            let cluster = member(&hub.client(), name, region, &nodes).await?;
            out.push(Member {
                name: name.to_string(),
                client: cluster.client(),
                outage: Outage::ApiServer(cluster),
            });
        }
        return Ok(out);
    }
    ensure!(
        env.members.len() == local.len(),
        "{MEMBERS_VAR} names {} clusters; this suite needs {}",
        env.members.len(),
        local.len()
    );
    for (name, kubeconfig) in &env.members {
        out.push(Member::existing(&hub.client(), name, kubeconfig).await?);
    }
    Ok(out)
}

/// Runs `args` on the member node `node` through [`NODE_EXEC_VAR`]; `None` when it is unset.
pub async fn node_exec(env: &E2eEnv, node: &str, args: &[&str]) -> Result<Option<String>> {
    let Some((program, prefix)) = env.node_exec.split_first() else {
        return Ok(None);
    };
    let out = tokio::process::Command::new(program)
        .args(prefix)
        .arg(node)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {program} (from {NODE_EXEC_VAR})"))?;
    ensure!(
        out.status.success(),
        "{} {node} {args:?} failed: {}",
        env.node_exec.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The operator the e2e suite drives.
pub enum OperatorUnderTest {
    /// `hsn-operator` started here.
    Process(Operator),
    /// The replicas installed in the hub (by the Helm chart).
    InCluster(InCluster),
}

impl OperatorUnderTest {
    /// Starts the operator against the hub, or finds the installed one's leader.
    pub async fn start(env: &E2eEnv, hub: &Hub, dir: &Path) -> Result<Self> {
        if !env.external_operator {
            return Ok(Self::Process(
                Operator::start_at(hub.kubeconfig(), dir, &[], &[]).await?,
            ));
        }
        let op = InCluster {
            client: hub.client(),
        };
        wait_for(
            "the installed operator's leader /readyz",
            DEADLINE,
            || async { op.get("/readyz").await.ok() },
        )
        .await?;
        Ok(Self::InCluster(op))
    }

    /// GET `path` on the (leading) operator's metrics address.
    pub async fn get(&self, path: &str) -> Result<String> {
        match self {
            Self::Process(op) => op.get(path).await,
            Self::InCluster(op) => op.get(path).await,
        }
    }

    /// The sum of the metric samples whose line starts with `prefix` (labels included).
    pub async fn metric(&self, prefix: &str) -> Result<f64> {
        Ok(sum_samples(&self.get("/metrics").await?, prefix))
    }

    /// A new operator process in place of this one (SIGKILL, then start), or, in the hub,
    /// the leader's pod deleted and another replica leading.
    pub async fn restart(self, hub: &Hub, dir: &Path) -> Result<Self> {
        match self {
            Self::Process(op) => {
                op.kill().await;
                Ok(Self::Process(
                    Operator::start_at(hub.kubeconfig(), dir, &[], &[]).await?,
                ))
            }
            Self::InCluster(op) => {
                op.restart().await?;
                Ok(Self::InCluster(op))
            }
        }
    }

    /// The tail of the (leading) operator's log, for failure messages.
    pub async fn log_tail(&self) -> String {
        match self {
            Self::Process(op) => op.log_tail(),
            Self::InCluster(op) => op.log_tail().await,
        }
    }
}

/// The operator Helm installed in the hub's [`OPERATOR_NS`]: its replicas elect a leader
/// through the Lease `hsn-operator`; the suite reads the leader's endpoints through the API
/// server's pod proxy.
pub struct InCluster {
    client: Client,
}

const OPERATOR_LEASE: &str = "hsn-operator";
const OPERATOR_PODS: &str = "app.kubernetes.io/name=hsn-operator";

impl InCluster {
    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), OPERATOR_NS)
    }

    /// The pod holding the leader Lease, or with leader election off, the only pod.
    async fn leader(&self) -> Option<Pod> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), OPERATOR_NS);
        let holder = leases.get_opt(OPERATOR_LEASE).await.ok()?;
        let pod = match holder.and_then(|l| l.spec?.holder_identity) {
            Some(holder) => self.pods().get_opt(&holder).await.ok()??,
            None => {
                let list = self
                    .pods()
                    .list(&ListParams::default().labels(OPERATOR_PODS))
                    .await
                    .ok()?;
                let [only] = <[Pod; 1]>::try_from(list.items).ok()?;
                only
            }
        };
        pod.metadata.deletion_timestamp.is_none().then_some(pod)
    }

    async fn get(&self, path: &str) -> Result<String> {
        let pod = self
            .leader()
            .await
            .context("no operator leader pod in the hub")?;
        let port = pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some("metrics"))
            .map_or(8080, |p| p.container_port);
        let uri = format!(
            "/api/v1/namespaces/{OPERATOR_NS}/pods/{}:{port}/proxy{path}",
            pod.name_any()
        );
        let request = http::Request::get(uri).body(Vec::new())?;
        Ok(self.client.request_text(request).await?)
    }

    async fn restart(&self) -> Result<()> {
        let old = self
            .leader()
            .await
            .context("no operator leader pod in the hub")?
            .name_any();
        self.pods().delete(&old, &DeleteParams::default()).await?;
        wait_for(
            &format!("a new operator leader after deleting pod {old}"),
            DEADLINE,
            || async {
                (self.leader().await?.name_any() != old).then_some(())?;
                self.get("/readyz").await.ok().map(drop)
            },
        )
        .await?;
        Ok(())
    }

    async fn log_tail(&self) -> String {
        let Some(pod) = self.leader().await else {
            return "(no operator leader pod)".into();
        };
        let params = LogParams {
            tail_lines: Some(60),
            ..LogParams::default()
        };
        self.pods()
            .logs(&pod.name_any(), &params)
            .await
            .unwrap_or_else(|e| format!("(logs of {}: {e})", pod.name_any()))
    }
}

/// The label (and taint key) of nodes set aside for edge agents (kind/*.yaml).
pub const AGENTS_TAINT: &str = "hsn.io/agents";
const ZONE: &str = "topology.kubernetes.io/zone";

/// A member's edge-capable nodes per pool, and the two nodes step 3 adds to the broadband pool.
#[derive(Debug)]
pub struct Topology {
    /// Nodes of the broadband pool (`hsn.io/slice: embb`).
    pub broadband: usize,
    /// Nodes of the IoT pool (`hsn.io/slice: mmtc`).
    pub iot: usize,
    /// Two nodes in no pool, in two zones.
    pub spare: [String; 2],
    /// Its nodes run real kubelets, hence real agents (not kwok's fake nodes).
    pub real: bool,
}

impl Topology {
    /// Reads the member's nodes.
    pub async fn of(member: &Member) -> Result<Self> {
        let nodes = Api::<Node>::all(member.client())
            .list(&ListParams::default())
            .await?
            .items;
        let label = |n: &Node, key: &str| n.labels().get(key).cloned().unwrap_or_default();
        let in_pool = |n: &Node, slice: &str| {
            label(n, "hsn.io/edge") == "true" && label(n, "hsn.io/slice") == slice
        };
        // Spares: workers in no pool, those set aside for edge agents first, one per zone.
        let mut spare: Vec<&Node> = nodes
            .iter()
            .filter(|n| {
                !n.labels().contains_key("hsn.io/edge")
                    && !n
                        .labels()
                        .contains_key("node-role.kubernetes.io/control-plane")
            })
            .collect();
        spare.sort_by_key(|n| (label(n, AGENTS_TAINT) != "edge", n.name_any()));
        let mut zones = BTreeSet::new();
        spare.retain(|n| zones.insert(label(n, ZONE)));
        let spare = <[String; 2]>::try_from(
            spare
                .iter()
                .take(2)
                .map(|n| n.name_any())
                .collect::<Vec<_>>(),
        )
        .map_err(|found| {
            anyhow!(
                "{}: step 3 needs two nodes outside the edge pools in two zones, found {found:?}",
                member.name
            )
        })?;
        Ok(Self {
            broadband: nodes.iter().filter(|n| in_pool(n, "embb")).count(),
            iot: nodes.iter().filter(|n| in_pool(n, "mmtc")).count(),
            spare,
            real: nodes
                .iter()
                .any(|n| !n.annotations().contains_key(KWOK_NODE_ANNOTATION)),
        })
    }

    /// Edge-capable nodes in both pools.
    pub fn edges(&self) -> usize {
        self.broadband + self.iot
    }
}
