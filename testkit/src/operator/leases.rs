//! Agents' Leases written where no agent runs (kwok's pods run no process), exactly as a
//! placed agent writes them: the operator created the Lease, the pod the operator placed
//! updates it (holder: the pod's name, and its UID) with what it advertises. Tests that
//! forge a Lease name another pod explicitly.

use std::net::IpAddr;

use anyhow::{Context, Result};
use hsn_api::node::lease::{self, Annotations};
use hsn_core::Role;
use hsn_operator::resources::{ROLE_LABEL, SUPER_NODE};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};

use super::DEADLINE;
use crate::wait_for;

/// A pod of a member namespace, as a Lease names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodId {
    /// Its name: the Lease's holder.
    pub name: String,
    /// Its UID.
    pub uid: String,
}

impl PodId {
    fn of(pod: &Pod) -> Self {
        Self {
            name: pod.name_any(),
            uid: pod.uid().unwrap_or_default(),
        }
    }
}

/// The pod the operator placed for super node `ordinal`: the StatefulSet's pod of that
/// ordinal, once it exists.
pub async fn super_pod(member: &Client, namespace: &str, ordinal: u32) -> Result<PodId> {
    let name = format!("{SUPER_NODE}-{ordinal}");
    let pods: Api<Pod> = Api::namespaced(member.clone(), namespace);
    Ok(wait_for(&format!("pod {name}"), DEADLINE, || async {
        pods.get_opt(&name).await.ok()?.as_ref().map(PodId::of)
    })
    .await?)
}

/// The pod the operator placed for the edge on `node`: the edge DaemonSet's pod there, once
/// it exists (and, with `not`, once it is another pod than `not`).
pub async fn edge_pod(
    member: &Client,
    namespace: &str,
    node: &str,
    not: Option<&PodId>,
) -> Result<PodId> {
    let pods: Api<Pod> = Api::namespaced(member.clone(), namespace);
    let params = ListParams::default()
        .labels(&format!("{ROLE_LABEL}={}", Role::Edge))
        .fields(&format!("spec.nodeName={node}"));
    Ok(
        wait_for(&format!("the edge pod on {node}"), DEADLINE, || async {
            let list = pods.list(&params).await.ok()?;
            list.items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .map(PodId::of)
                .find(|p| Some(p) != not)
        })
        .await?,
    )
}

/// What a Lease is updated with.
#[derive(Clone, Debug)]
pub struct LeaseWrite {
    /// The pod writing it.
    pub holder: PodId,
    /// Renewed this many seconds ago.
    pub age: i64,
    /// Valid for this many seconds.
    pub duration: i32,
    /// The public key it publishes (hex).
    pub public_key: Option<String>,
    /// The address it advertises.
    pub address: Option<IpAddr>,
}

impl LeaseWrite {
    /// A write by `holder`, renewed now, valid for an hour, advertising nothing.
    pub fn by(holder: PodId) -> Self {
        Self {
            holder,
            age: 0,
            duration: 3600,
            public_key: None,
            address: None,
        }
    }
}

/// Updates Lease `name` (which the operator created) in `namespace` of a member with `w`,
/// as an agent updates its own: a merge patch, which never creates it.
pub async fn put_lease(member: &Client, namespace: &str, name: &str, w: &LeaseWrite) -> Result<()> {
    let annotations = Annotations {
        public_key: w.public_key.clone(),
        address: w.address,
        pod_uid: Some(w.holder.uid.clone()),
        ..Annotations::default()
    };
    let mut written: serde_json::Map<String, serde_json::Value> = lease::KEYS
        .iter()
        .map(|k| ((*k).to_owned(), serde_json::Value::Null))
        .collect();
    written.extend(annotations.to_map().into_iter().map(|(k, v)| (k, v.into())));
    let renewed = Timestamp::now() - SignedDuration::from_secs(w.age);
    let patch = serde_json::json!({
        "metadata": {"annotations": written},
        "spec": {
            "holderIdentity": w.holder.name,
            "leaseDurationSeconds": w.duration,
            "renewTime": MicroTime(renewed),
        },
    });
    Api::<Lease>::namespaced(member.clone(), namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("updating Lease {namespace}/{name}"))?;
    Ok(())
}

/// The public key the suite publishes for super node `ordinal` (hex), the same on every
/// write, so that its pinned key never changes by accident.
pub fn super_key(ordinal: u32) -> String {
    format!("{:02x}", 0x50 + (ordinal % 0x40)).repeat(32)
}

/// Writes (or renews) the Lease of super node `ordinal` in `namespace` of a member, as its
/// placed pod's agent would where no agent runs (kwok): renewed `age` seconds ago, valid for
/// `duration` seconds, with [`super_key`].
pub async fn put_super_lease(
    member: &Client,
    namespace: &str,
    ordinal: u32,
    age: i64,
    duration: i32,
) -> Result<()> {
    let write = LeaseWrite {
        age,
        duration,
        public_key: Some(super_key(ordinal)),
        ..LeaseWrite::by(super_pod(member, namespace, ordinal).await?)
    };
    put_lease(member, namespace, &lease::super_lease(ordinal), &write).await
}
