//! The objects a network needs in one member cluster, built purely from the network and
//! its plan. `apply` writes them; nothing here talks to an API server.

mod ledger;
mod owner;
mod rbac;
mod routes;
mod workloads;

use std::collections::BTreeMap;

use hsn_api::HsnNetwork;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use xxhash_rust::xxh3::xxh3_64;

use crate::plan::Plan;

pub use ledger::{
    CA_CERT_KEY, CA_CONFIGMAP, Chain, IDENTITY_SECRET, LEDGER_CONFIGMAP, LedgerTls, ServerCert,
    TLS_SECRET, ledger_server_name, peers_file, super_pod,
};
pub use owner::{HUB_LABEL, MEC_CLUSTER_ANNOTATION, Owner, Ownership};
pub use routes::{Peer, Peers, routes_table};

/// Field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "hsn-operator";
/// Label: the hub network's UID; owner references cannot cross clusters, this label can.
pub const NETWORK_UID_LABEL: &str = "hsn.io/network-uid";
/// Label: the hub network's name.
pub const NETWORK_LABEL: &str = "hsn.io/network";
/// Label: the agent role of a workload's pods.
pub const ROLE_LABEL: &str = "hsn.io/role";
/// Label: the edge pool of a DaemonSet's pods.
pub const POOL_LABEL: &str = "hsn.io/pool";
/// The agents' pods' volume holding their state directories (the node's directory for the
/// network, or a super node's claim).
const STATE_VOLUME: &str = "state";

/// The claim of super-node pod `pod` when the network asks for storage: the member's
/// StatefulSet controller names it after the claim template and the pod.
pub fn state_claim_name(pod: &str) -> String {
    format!("{STATE_VOLUME}-{pod}")
}
/// Annotation: hash of what the operator last applied, so unchanged objects are not rewritten.
pub const APPLIED_HASH_ANNOTATION: &str = "hsn.io/applied-hash";
/// Annotation: the hub namespace/name of the owning network.
pub const OWNER_ANNOTATION: &str = "hsn.io/owner";
pub use hsn_api::routes::{ROUTES_CONFIGMAP, member_namespace};
/// Name of the super nodes' ServiceAccount, Role and RoleBinding.
pub const SUPER_AGENT_IDENTITY: &str = "hsn-super-agent";
/// Name of the edge agents' ServiceAccount, Role and RoleBinding.
pub const EDGE_AGENT_IDENTITY: &str = "hsn-edge-agent";

/// Name of the ServiceAccount (and its Role and RoleBinding) of `role`'s agents: one per
/// role, so an edge's token can never renew a super node's Lease.
pub fn agent_identity(role: hsn_core::Role) -> &'static str {
    match role {
        hsn_core::Role::Super => SUPER_AGENT_IDENTITY,
        hsn_core::Role::Edge => EDGE_AGENT_IDENTITY,
    }
}
/// Name of the super-node StatefulSet and Service.
pub const SUPER_NODE: &str = "hsn-super-node";
/// Port of the super nodes' gRPC (ledger) service, as a container and Service port.
pub const SUPER_GRPC_PORT: i32 = hsn_core::ports::LEDGER as i32;

/// Name of the DaemonSet of an edge pool.
pub fn edge_daemonset(pool: &str) -> String {
    format!("hsn-edge-{pool}")
}

/// One object to apply into a member cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberObject {
    /// Kind and API.
    pub resource: ApiResource,
    /// Namespace, or `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
    /// The full object as JSON text, with the applied-hash annotation set. Text, not a
    /// [`Value`] tree: a reconcile holds every object of every member at once, and the
    /// tree of a thousand objects was a fifth of the operator's peak heap.
    body: String,
    /// Hash of the body before the annotation was added.
    hash: String,
}

impl MemberObject {
    /// Hash of the body (before the annotation was added).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The full object, as [`Value`], with the applied-hash annotation set.
    pub fn body(&self) -> Value {
        serde_json::from_str(&self.body).expect("a member object's body is JSON we wrote")
    }

    /// The API for this object's kind and namespace on `client`'s cluster.
    pub fn api(&self, client: &kube::Client) -> kube::Api<kube::api::DynamicObject> {
        match &self.namespace {
            Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &self.resource),
            None => kube::Api::all_with(client.clone(), &self.resource),
        }
    }

    /// Server-side applies the object as the operator's field manager.
    pub async fn apply(
        &self,
        client: &kube::Client,
    ) -> Result<kube::api::DynamicObject, kube::Error> {
        let params = kube::api::PatchParams::apply(FIELD_MANAGER).force();
        let body: &RawValue =
            serde_json::from_str(&self.body).expect("a member object's body is JSON we wrote");
        self.api(client)
            .patch(&self.name, &params, &kube::api::Patch::Apply(body))
            .await
    }
}

/// Every object `network` needs on `owner.cluster` under `plan`; empty when the plan puts
/// nothing there. `peers` fills the agents' addresses and keys into the routes table and
/// the validators' addresses; `chain` gives the super nodes' identities and the genesis.
/// The namespace, which takes everything with it when deleted, carries `owner`'s markings.
pub fn member_objects(
    network: &HsnNetwork,
    owner: &Owner,
    plan: &Plan,
    peers: &Peers,
    chain: &Chain,
) -> Vec<MemberObject> {
    let cluster = owner.cluster.as_str();
    let Some(part) = plan.clusters.get(cluster) else {
        return Vec::new();
    };
    if part.super_replicas == 0 && part.edge_pools.values().all(Vec::is_empty) {
        return Vec::new();
    }
    let render = Renderer::new(network);
    let mut metadata = render.meta_cluster_scoped(&render.namespace);
    owner.mark(&mut metadata);
    let mut out = vec![render.object(&Namespace {
        metadata,
        ..Default::default()
    })];
    out.extend(rbac::objects(&render, part));
    out.push(render.object(&routes::config_map(&render, cluster, plan, peers)));
    out.extend(ledger::ca_config_map(&render, chain).map(|c| render.object(&c)));
    if part.super_replicas > 0 {
        out.extend(ledger::identity_secret(&render, chain, cluster).map(|s| render.object(&s)));
        out.extend(ledger::tls_secret(&render, chain, cluster).map(|s| render.object(&s)));
        out.extend(ledger::config_map(&render, plan, chain, peers).map(|c| render.object(&c)));
        out.extend(workloads::super_nodes(&render, part.super_replicas));
    }
    for (pool, nodes) in part.edge_pools.iter().filter(|(_, n)| !n.is_empty()) {
        out.push(workloads::edge_pool(&render, pool, nodes));
    }
    out
}

/// Renders the network's objects for a member: what every builder needs to know about the
/// network (name, member namespace, common labels and owner annotation).
pub(crate) struct Renderer<'a> {
    pub network: &'a HsnNetwork,
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
}

impl<'a> Renderer<'a> {
    fn new(network: &'a HsnNetwork) -> Self {
        let name = network.name_any();
        let labels = BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_string(),
                FIELD_MANAGER.to_string(),
            ),
            ("app.kubernetes.io/part-of".to_string(), "hsn".to_string()),
            (NETWORK_LABEL.to_string(), name.clone()),
            (
                NETWORK_UID_LABEL.to_string(),
                network.uid().unwrap_or_default(),
            ),
        ]);
        Self {
            network,
            namespace: member_namespace(&name),
            name,
            labels,
        }
    }

    /// Metadata of a namespaced object in the member namespace.
    pub fn meta(&self, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(self.namespace.clone()),
            ..self.meta_cluster_scoped(name)
        }
    }

    /// Metadata of a cluster-scoped object.
    pub fn meta_cluster_scoped(&self, name: &str) -> ObjectMeta {
        let owner = format!(
            "{}/{}",
            self.network.namespace().unwrap_or_default(),
            self.name
        );
        ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(self.labels.clone()),
            annotations: Some(BTreeMap::from([(OWNER_ANNOTATION.to_string(), owner)])),
            ..Default::default()
        }
    }

    /// Turns a typed object into a [`MemberObject`] with its content hash.
    pub fn object<K>(&self, obj: &K) -> MemberObject
    where
        K: Resource<DynamicType = ()> + Serialize,
    {
        let mut body = serde_json::to_value(obj).expect("Kubernetes objects serialize to JSON");
        body["apiVersion"] = K::api_version(&()).into();
        body["kind"] = K::kind(&()).into();
        let hash = format!("{:016x}", xxh3_64(body.to_string().as_bytes()));
        body["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = hash.as_str().into();
        let gvk = GroupVersionKind::gvk(&K::group(&()), &K::version(&()), &K::kind(&()));
        MemberObject {
            resource: ApiResource::from_gvk_with_plural(&gvk, &K::plural(&())),
            namespace: obj.meta().namespace.clone(),
            name: obj.meta().name.clone().unwrap_or_default(),
            body: body.to_string(),
            hash,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
mod ledger_tests;

#[cfg(test)]
mod pod_tests;
