//! `hsnctl networks | nodes | routes`: the HSN objects in the hub cluster, and the routes
//! the operator wrote into each member cluster.

mod connect;
mod keys;
mod views;

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use futures::future::join_all;
use hsn_api::{HsnNetwork, HsnNode, MecCluster};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::core::NamespaceResourceScope;
use kube::{Api, ResourceExt};

pub use connect::{Hub, MemberError, describe};
pub use keys::{keys, registry};
pub use views::{
    ClusterFailure, ClusterRoutes, Counts, NetworkView, NodeView, RoutesDoc, RoutesView, age,
};

use crate::{CliError, Output, emit};

pub use hsn_api::routes::{ROUTES_CONFIGMAP, member_namespace};

/// The HSN resources hsnctl reads, as the hub's discovery lists them.
const RESOURCES: [&str; 3] = ["hsnnetworks", "hsnnodes", "mecclusters"];

/// Where the hub is and how to show what it holds.
#[derive(Debug, Args)]
pub struct HubArgs {
    /// Kubeconfig of the hub cluster [default: $KUBECONFIG, else ~/.kube/config, else
    /// in-cluster].
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context [default: its current context].
    #[arg(long)]
    pub context: Option<String>,
    /// Namespace of the HsnNetworks [default: the context's namespace, else `default`].
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Seconds to wait for each cluster (hub or member) to answer.
    #[arg(long, default_value_t = 10)]
    pub request_timeout: u64,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// `hsnctl networks`.
#[derive(Debug, Args)]
pub struct NetworksArgs {
    /// The hub.
    #[command(flatten)]
    pub hub: HubArgs,
    /// List networks of all namespaces.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
}

/// `hsnctl nodes`.
#[derive(Debug, Args)]
pub struct NodesArgs {
    /// The hub.
    #[command(flatten)]
    pub hub: HubArgs,
    /// List agents of all namespaces.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Only the agents of this network.
    #[arg(long)]
    pub network: Option<String>,
}

/// `hsnctl routes`.
#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// The hub.
    #[command(flatten)]
    pub hub: HubArgs,
    /// The network.
    #[arg(long)]
    pub network: String,
    /// Namespace of kubeconfig Secrets that name none (the operator's
    /// `--operator-namespace`).
    #[arg(long, env = "HSN_OPERATOR_NAMESPACE", default_value = "hsn-system")]
    pub operator_namespace: String,
}

/// `hsnctl keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The hub (`-o` does not apply: the output is the registry file's JSON).
    #[command(flatten)]
    pub hub: HubArgs,
    /// The network whose agents' keys to list.
    #[arg(long)]
    pub network: String,
}

/// Why a cluster view failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Neither a kubeconfig nor a service account.
    #[error(
        "no kubeconfig for the hub cluster: pass --kubeconfig, set KUBECONFIG or create ~/.kube/config"
    )]
    NoKubeconfig,
    /// The kubeconfig file cannot be read.
    #[error("cannot read kubeconfig {}: {source}", path.display())]
    KubeconfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The kubeconfig cannot be used.
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// The in-cluster configuration cannot be read.
    #[error("in-cluster config: {0}")]
    InCluster(String),
    /// The client cannot be built.
    #[error("hub client: {0}")]
    Client(String),
    /// The hub's API server does not answer.
    #[error("the hub cluster at {url} is unreachable: {reason}")]
    HubUnreachable {
        /// API server URL.
        url: String,
        /// The transport's causes.
        reason: String,
    },
    /// The CRDs are not installed.
    #[error(
        "the HSN CRDs are not installed in the hub cluster at {url} (not served: {missing}); install them with `kubectl apply -f crds/` or the Helm chart"
    )]
    CrdsMissing {
        /// API server URL.
        url: String,
        /// The missing resources.
        missing: String,
    },
    /// The network does not exist.
    #[error("HsnNetwork {namespace}/{name} not found (`hsnctl networks -A` lists them)")]
    NetworkNotFound {
        /// Hub namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// An HsnNode's status holds something that is not a public key.
    #[error("HsnNode {node} has an invalid public key {key:?}: {reason}")]
    BadKey {
        /// The HsnNode.
        node: String,
        /// The key as written.
        key: String,
        /// Why it is not one.
        reason: String,
    },
    /// A request to the hub failed.
    #[error("hub: {what}: {reason}")]
    Hub {
        /// What was asked.
        what: String,
        /// The API's answer.
        reason: String,
    },
    /// Some member clusters could not be read; the others were printed.
    #[error("{} of {total} clusters could not be read: {}", failed.len(), names(failed))]
    Members {
        /// The failures.
        failed: Vec<ClusterFailure>,
        /// Clusters tried.
        total: usize,
    },
}

fn names(failed: &[ClusterFailure]) -> String {
    let names: Vec<&str> = failed.iter().map(|f| f.cluster.as_str()).collect();
    names.join(", ")
}

/// `hsnctl networks`.
pub async fn networks(args: &NetworksArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let hub = connect(&args.hub).await?;
    let scope = Scope::new(&hub, args.hub.namespace.as_deref(), args.all_namespaces);
    let networks = list::<HsnNetwork>(&hub, &scope).await?;
    let nodes = list::<HsnNode>(&hub, &scope).await?;
    let now = Timestamp::now();
    let mut views: Vec<NetworkView> = networks
        .iter()
        .map(|n| NetworkView::new(n, &nodes, now))
        .collect();
    views.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    emit(out, args.hub.output, &views, |v| {
        NetworkView::table(v, &scope.describe())
    })
}

/// `hsnctl nodes`.
pub async fn nodes(args: &NodesArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let hub = connect(&args.hub).await?;
    let scope = Scope::new(&hub, args.hub.namespace.as_deref(), args.all_namespaces);
    let mut nodes = list::<HsnNode>(&hub, &scope).await?;
    if let Some(network) = &args.network {
        nodes.retain(|n| &n.spec.network == network);
        let networks = list::<HsnNetwork>(&hub, &scope).await?;
        if nodes.is_empty() && !networks.iter().any(|n| &n.name_any() == network) {
            return Err(ClusterError::NetworkNotFound {
                namespace: scope.namespace.unwrap_or_else(|| "*".into()),
                name: network.clone(),
            }
            .into());
        }
    }
    let now = Timestamp::now();
    let mut views: Vec<NodeView> = nodes.iter().map(|n| NodeView::new(n, now)).collect();
    NodeView::sort(&mut views);
    let mut scope_text = scope.describe();
    if let Some(network) = &args.network {
        scope_text = format!("of network {network} {scope_text}");
    }
    emit(out, args.hub.output, &views, |v| {
        NodeView::table(v, &scope_text, args.all_namespaces)
    })
}

/// `hsnctl routes`: prints every cluster that could be read, then fails naming the others.
pub async fn routes(args: &RoutesArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let hub = connect(&args.hub).await?;
    let namespace = args
        .hub
        .namespace
        .clone()
        .unwrap_or_else(|| hub.default_namespace.clone());
    let networks: Api<HsnNetwork> = Api::namespaced(hub.client.clone(), &namespace);
    let network = networks
        .get_opt(&args.network)
        .await
        .map_err(|e| {
            hub_error(
                &hub,
                format!("reading HsnNetwork {namespace}/{}", args.network),
                &e,
            )
        })?
        .ok_or_else(|| ClusterError::NetworkNotFound {
            namespace: namespace.clone(),
            name: args.network.clone(),
        })?;
    let clusters: Api<MecCluster> = Api::all(hub.client.clone());
    let clusters = list_with(&hub, &clusters, "listing mecclusters".into()).await?;
    // The clusters the network's status names; before it has any, every cluster.
    let placed: Vec<String> = network
        .status
        .iter()
        .flat_map(|s| &s.clusters)
        .map(|c| c.cluster.clone())
        .collect();
    let member_ns = member_namespace(&args.network);
    let (read, failed) = read_members(&hub, &clusters, &placed, args, &member_ns).await;
    let total = read.len() + failed.len();
    let view = RoutesView {
        namespace,
        network: args.network.clone(),
        member_namespace: member_ns,
        clusters: read,
        failed,
    };
    emit(out, args.hub.output, &view, RoutesView::table)?;
    if view.failed.is_empty() {
        Ok(())
    } else {
        Err(ClusterError::Members {
            failed: view.failed,
            total,
        }
        .into())
    }
}

/// The routes of each cluster in `placed` (every cluster when it is empty), in name order,
/// and the clusters that could not be read.
async fn read_members(
    hub: &Hub,
    clusters: &[MecCluster],
    placed: &[String],
    args: &RoutesArgs,
    member_ns: &str,
) -> (Vec<ClusterRoutes>, Vec<ClusterFailure>) {
    let mut failed: Vec<ClusterFailure> = placed
        .iter()
        .filter(|name| !clusters.iter().any(|c| &c.name_any() == *name))
        .map(|name| ClusterFailure {
            cluster: name.clone(),
            error: "no MecCluster of this name in the hub".into(),
        })
        .collect();
    let wanted = clusters
        .iter()
        .filter(|c| placed.is_empty() || placed.contains(&c.name_any()));
    let reads = wanted.map(|c| async {
        let result = read_routes(hub, c, &args.operator_namespace, member_ns).await;
        (c.name_any(), result)
    });
    let mut read = Vec::new();
    for (name, result) in join_all(reads).await {
        match result {
            Ok(Some(routes)) => read.push(routes),
            Ok(None) if placed.contains(&name) => read.push(ClusterRoutes::absent(&name)),
            Ok(None) => {}
            Err(error) => failed.push(ClusterFailure {
                cluster: name,
                error,
            }),
        }
    }
    read.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    failed.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    (read, failed)
}

/// The routes table in one member; `None` when it has no routes ConfigMap.
async fn read_routes(
    hub: &Hub,
    cluster: &MecCluster,
    operator_namespace: &str,
    member_ns: &str,
) -> Result<Option<ClusterRoutes>, String> {
    let name = cluster.name_any();
    let client = connect::member(hub, cluster, operator_namespace)
        .await
        .map_err(|e| e.to_string())?;
    let configmaps: Api<ConfigMap> = Api::namespaced(client, member_ns);
    let configmap = configmaps.get_opt(ROUTES_CONFIGMAP).await.map_err(|e| {
        if connect::is_transport(&e) {
            format!("unreachable: {}", describe(&e))
        } else {
            format!(
                "reading ConfigMap {member_ns}/{ROUTES_CONFIGMAP}: {}",
                describe(&e)
            )
        }
    })?;
    let Some(configmap) = configmap else {
        return Ok(None);
    };
    let key = hsn_api::routes::ROUTES_KEY;
    let json = configmap
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| format!("ConfigMap {member_ns}/{ROUTES_CONFIGMAP} has no key {key}"))?;
    ClusterRoutes::parse(&name, json)
        .map(Some)
        .map_err(|e| format!("{key} in {member_ns}/{ROUTES_CONFIGMAP} is malformed: {e}"))
}

/// Connects to the hub and checks that it serves the HSN resources.
async fn connect(args: &HubArgs) -> Result<Hub, ClusterError> {
    let timeout = Duration::from_secs(args.request_timeout.max(1));
    let hub = connect::hub(args.kubeconfig.as_deref(), args.context.as_deref(), timeout).await?;
    let group = format!("{}/{}", hsn_api::GROUP, hsn_api::VERSION);
    let served: Vec<String> = match hub.client.list_api_group_resources(&group).await {
        Ok(list) => list.resources.into_iter().map(|r| r.name).collect(),
        // The group is not served at all: a 404 without a Status body.
        Err(kube::Error::Api(s)) if s.code == 404 => Vec::new(),
        Err(e) => return Err(hub_error(&hub, format!("discovering {group}"), &e)),
    };
    let missing: Vec<String> = RESOURCES
        .iter()
        .filter(|r| !served.iter().any(|s| s == *r))
        .map(|r| format!("{r}.{}", hsn_api::GROUP))
        .collect();
    if missing.is_empty() {
        Ok(hub)
    } else {
        Err(ClusterError::CrdsMissing {
            url: hub.url.clone(),
            missing: missing.join(", "),
        })
    }
}

fn hub_error(hub: &Hub, what: String, e: &kube::Error) -> ClusterError {
    if connect::is_transport(e) {
        ClusterError::HubUnreachable {
            url: hub.url.clone(),
            reason: describe(e),
        }
    } else {
        ClusterError::Hub {
            what,
            reason: describe(e),
        }
    }
}

/// One namespace, or all.
#[derive(Debug)]
struct Scope {
    namespace: Option<String>,
}

impl Scope {
    fn new(hub: &Hub, namespace: Option<&str>, all: bool) -> Self {
        let namespace = namespace.unwrap_or(&hub.default_namespace);
        Self {
            namespace: (!all).then(|| namespace.to_owned()),
        }
    }

    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("in namespace {ns}"),
            None => "in any namespace".into(),
        }
    }
}

async fn list<K>(hub: &Hub, scope: &Scope) -> Result<Vec<K>, ClusterError>
where
    K: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = match &scope.namespace {
        Some(ns) => Api::namespaced(hub.client.clone(), ns),
        None => Api::all(hub.client.clone()),
    };
    let what = format!("listing {} {}", K::plural(&()), scope.describe());
    list_with(hub, &api, what).await
}

async fn list_with<K>(hub: &Hub, api: &Api<K>, what: String) -> Result<Vec<K>, ClusterError>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list.items),
        Err(e) => Err(hub_error(hub, what, &e)),
    }
}
