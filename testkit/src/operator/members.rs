//! The member clusters under test: kwok clusters started here, or clusters that exist; how
//! the suite takes one away from the operator and gives it back; what their nodes offer.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, ensure};
use hsn_api::MecCluster;
use hsn_api::access::KubeconfigSecret;
use hsn_operator::member::EDGE_CAPABLE_LABEL;
use hsn_operator::plan::ZONE_LABEL;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::Kubeconfig;
use kube::{Client, ResourceExt};

use super::env::{E2eEnv, Hub, MEMBERS_VAR, NODE_EXEC_VAR, client_for};
use super::{OPERATOR_NS, member};
use crate::{FakeNode, KWOK_NODE_ANNOTATION, KwokCluster};

/// A member cluster under test.
pub struct Member {
    /// Its MecCluster's name.
    pub name: String,
    client: Client,
    outage: Outage,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member").field("name", &self.name).finish()
    }
}

/// How the suite takes a member away from the hub and gives it back.
enum Outage {
    /// A kwok cluster started here: its API server stops and starts again.
    ApiServer(KwokCluster),
    /// A cluster that exists: it keeps running while its kubeconfig Secret in the hub points
    /// at a port nothing listens on, which the operator sees as an API server that is down.
    Secret(SecretOutage),
}

/// The Secret is found and read as the operator finds and reads it ([`KubeconfigSecret`]).
struct SecretOutage {
    hub: Client,
    /// The MecCluster's name.
    cluster: String,
    saved: Mutex<Option<KubeconfigSecret>>,
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
                let secret = s.redirect().await?;
                eprintln!(
                    "{}: its kubeconfig Secret {secret} now points at {NOWHERE}; the cluster runs on",
                    self.name
                );
                Ok(())
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
        Api::<MecCluster>::all(hub.clone())
            .get_opt(name)
            .await?
            .with_context(|| {
                format!(
                    "no MecCluster {name} in the hub: register it first (hack/kind-register.sh)"
                )
            })?;
        let outage = SecretOutage {
            hub: hub.clone(),
            cluster: name.to_string(),
            saved: Mutex::new(None),
        };
        outage.read().await?;
        Ok(Self {
            name: name.to_string(),
            client: client_for(kubeconfig).await?,
            outage: Outage::Secret(outage),
        })
    }
}

impl SecretOutage {
    /// The member's kubeconfig Secret as it is now.
    async fn read(&self) -> Result<KubeconfigSecret> {
        let name = &self.cluster;
        let mec = Api::<MecCluster>::all(self.hub.clone()).get(name).await?;
        KubeconfigSecret::read(&self.hub, &mec, OPERATOR_NS)
            .await
            .with_context(|| format!("MecCluster {name}"))?
            .with_context(|| format!("MecCluster {name} is the hub itself (local: true)"))
    }

    async fn write(&self, secret: &KubeconfigSecret, kubeconfig: Vec<u8>) -> Result<()> {
        let patch = serde_json::json!({"data": {&secret.key: ByteString(kubeconfig)}});
        Api::<Secret>::namespaced(self.hub.clone(), &secret.namespace)
            .patch(&secret.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }

    /// Points the Secret at [`NOWHERE`]; returns its namespace/name.
    async fn redirect(&self) -> Result<String> {
        let secret = self.read().await?;
        let mut kubeconfig = Kubeconfig::from_yaml(std::str::from_utf8(&secret.kubeconfig)?)?;
        for cluster in kubeconfig
            .clusters
            .iter_mut()
            .filter_map(|c| c.cluster.as_mut())
        {
            cluster.server = Some(NOWHERE.into());
        }
        // JSON is YAML: any kubeconfig loader reads it.
        let nowhere = serde_json::to_vec(&kubeconfig)?;
        self.saved.lock().unwrap().get_or_insert(secret.clone());
        self.write(&secret, nowhere).await?;
        Ok(format!("{}/{}", secret.namespace, secret.name))
    }

    async fn restore(&self) -> Result<()> {
        let original = self.saved.lock().unwrap().take();
        let original = original.context("the Secret was not redirected")?;
        self.write(&original, original.kubeconfig.clone()).await
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

/// The label (and taint key) of nodes set aside for edge agents (kind/*.yaml).
pub const AGENTS_TAINT: &str = "hsn.io/agents";

/// A member's edge-capable nodes per pool, and the two nodes step 3 adds to the broadband pool.
#[derive(Debug)]
pub struct Topology {
    /// Nodes of the broadband pool (`hsn.io/slice: embb`).
    pub broadband: usize,
    /// Nodes of the IoT pool (`hsn.io/slice: mmtc`).
    pub iot: usize,
    /// Two nodes in no pool, in two zones, where no super node runs.
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
            label(n, EDGE_CAPABLE_LABEL) == "true" && label(n, "hsn.io/slice") == slice
        };
        // Spares: workers in no pool, one per zone; first those set aside for edge agents
        // (kind/: tainted), then edge-capable ones: super nodes avoid both, so that a spare
        // the suite adds to a pool is free for an edge.
        let mut spare: Vec<&Node> = nodes
            .iter()
            .filter(|n| {
                !in_pool(n, "embb")
                    && !in_pool(n, "mmtc")
                    && !n
                        .labels()
                        .contains_key("node-role.kubernetes.io/control-plane")
            })
            .collect();
        spare.sort_by_key(|n| {
            (
                label(n, AGENTS_TAINT) != "edge",
                label(n, EDGE_CAPABLE_LABEL) != "true",
                n.name_any(),
            )
        });
        let mut zones = BTreeSet::new();
        spare.retain(|n| zones.insert(label(n, ZONE_LABEL)));
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
