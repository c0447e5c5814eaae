//! Apply: write the desired objects into every Ready member concurrently, skip what is
//! unchanged, delete what the plan no longer wants, and read back workload readiness. A
//! member namespace another hub or MecCluster wrote is never written into; one without
//! owner markings (an older operator's) gets them.

use std::collections::{BTreeMap, BTreeSet};

use futures::{StreamExt, TryStreamExt};

use hsn_api::{HsnNetwork, MecCluster};
use kube::api::{DeleteParams, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::{Api, Client, ResourceExt};

use crate::context::Context;
use crate::member::delete_owned_namespaces;
use crate::plan::Plan;
use crate::resources::{
    APPLIED_HASH_ANNOTATION, CA_CONFIGMAP, Chain, MemberObject, NETWORK_UID_LABEL, Owner,
    Ownership, TLS_SECRET, member_namespace, member_objects,
};

use super::fetch::{Fetched, MemberRead};
use super::stuck::Stuck;

/// What happened in one member.
#[derive(Debug)]
pub enum MemberOutcome {
    /// Objects are as the plan wants (or, when paused, were read only).
    Applied(Readiness),
    /// The member is NotReady: nothing was tried.
    Skipped,
    /// Writing failed; the message says where.
    Failed(String),
}

/// Ready agents a member reports, and the agent pods its scheduler cannot place.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Ready super-node replicas.
    pub supers: i32,
    /// Ready edge agents over all pools.
    pub edges: i32,
    /// Agent pods that stay Pending, and why.
    pub stuck: Stuck,
}

/// Why one member could not be brought to the plan.
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error("no client: {0}")]
    Client(#[from] hsn_api::access::AccessError),
    #[error("{verb} {kind} {name}: {}", api_message(.source))]
    Api {
        verb: &'static str,
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("namespace {0} belongs to another network (uid {1}); rename one of the networks")]
    Conflict(String, String),
    #[error(
        "namespace {0} is {1}: another hub, or another MecCluster for this cluster, wrote it; \
         it is left alone (delete it in the member if it is stale)"
    )]
    NotOurs(String, Ownership),
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
}

impl ApplyError {
    /// Short label for `hsn_operator_member_apply_failures_total{category}`.
    fn category(&self) -> &'static str {
        match self {
            Self::Client(_) => "access",
            Self::Api {
                verb: "get" | "list",
                ..
            } => "read",
            Self::Api { verb: "delete", .. } => "delete",
            Self::Api { .. } => "write",
            Self::Conflict(..) | Self::NotOurs(..) => "conflict",
            Self::Timeout(_) => "timeout",
        }
    }
}

/// Every label [`ApplyError::category`] gives.
pub const CATEGORIES: &[&str] = &["access", "read", "write", "delete", "conflict", "timeout"];

/// Applies the plan to every member; `paused` reads but writes nothing. What fetch read of
/// each member (its Leases, its stuck pods) is not read again.
pub async fn apply_all(
    network: &HsnNetwork,
    ctx: &Context,
    plan: &Plan,
    fetched: &Fetched,
    chain: &Chain,
    paused: bool,
) -> BTreeMap<String, MemberOutcome> {
    let peers = &fetched.peers();
    let jobs = fetched.members.iter().map(|(mec, member)| async move {
        let name = mec.name_any();
        if !member.view.ready {
            return (name, MemberOutcome::Skipped);
        }
        let owner = ctx.owner(&name);
        let objects = member_objects(network, &owner, plan, peers, chain);
        // One slow member must not hold up the others: each gets its own deadline.
        let deadline = ctx.settings.member_timeout * 3;
        let read = fetched.reads.get(&name);
        let work = apply_member(ctx, mec, network, &owner, objects, read, paused);
        let error = match tokio::time::timeout(deadline, work).await {
            Ok(Ok(ready)) => return (name, MemberOutcome::Applied(ready)),
            Ok(Err(e)) => e,
            Err(_) => ApplyError::Timeout(deadline),
        };
        ctx.metrics.member_apply_failed(&name, error.category());
        tracing::warn!(cluster = %name, %error, "applying to member failed");
        (name, MemberOutcome::Failed(error.to_string()))
    });
    futures::future::join_all(jobs).await.into_iter().collect()
}

async fn apply_member(
    ctx: &Context,
    mec: &MecCluster,
    network: &HsnNetwork,
    owner: &Owner,
    desired: Vec<MemberObject>,
    read: Option<&MemberRead>,
    paused: bool,
) -> Result<Readiness, ApplyError> {
    let client = ctx.members.client(mec).await?;
    let uid = network.uid().unwrap_or_default();
    if desired.is_empty() {
        if !paused {
            delete_owned_namespaces(&client, &uid, owner)
                .await
                .map_err(|source| {
                    api_err(
                        "delete",
                        "Namespace",
                        &member_namespace(&network.name_any()),
                        source,
                    )
                })?;
        }
        return Ok(Readiness::default());
    }
    let leases = match read {
        Some(read) => read.leases_as_objects(),
        None => existing_leases(&client, &desired).await?,
    };
    let mut readiness = Readiness::default();
    for (phase, in_flight) in phases(&desired).into_iter().zip(MEMBER_WRITES_IN_FLIGHT) {
        // The futures are made before the stream (not by a closure in it): a closure there
        // makes the reconcile future's Send-ness unprovable (rust-lang/rust#102211).
        let writes: Vec<_> = phase
            .into_iter()
            .map(|d| apply_one(&client, d, &leases, &uid, owner, paused))
            .collect();
        let counted: Vec<Readiness> = futures::stream::iter(writes)
            .buffer_unordered(in_flight)
            .try_collect()
            .await?;
        for r in counted {
            readiness.supers += r.supers;
            readiness.edges += r.edges;
        }
    }
    if !paused {
        prune(&client, &desired, &uid).await?;
        if !network.spec.super_nodes.ledger_tls {
            let namespace = member_namespace(&network.name_any());
            for (kind, plural, name) in TLS_OBJECTS {
                delete_if_ours(&client, &namespace, (kind, plural), name, &uid).await?;
            }
        }
    }
    readiness.stuck = read.map(|r| r.stuck.clone()).unwrap_or_default();
    Ok(readiness)
}

/// Requests one member's apply has in flight at once, per phase of [`phases`]: objects are
/// read and written in parallel, not one round trip after another, without flooding the
/// member's API server (its default max-mutating-requests-inflight is 200). The Leases go
/// out while the member places the pods, when each write waits long for its answer: with
/// 4 in flight a member's 184 Leases took 16 s in `make bench-operator`, with 16 6.6 s.
/// The other phases read each object every reconcile, and each request in flight is a
/// connection the client keeps open (with its TLS and read buffers) until it idles out:
/// they stay at 4.
const MEMBER_WRITES_IN_FLIGHT: [usize; 3] = [1, 4, 16];

/// `desired` in the order its phases must be written, each phase's objects independent of
/// one another: the Namespace (its ownership checked before anything is written into it);
/// then what a pod mounts or runs as (identities, RBAC, ConfigMaps, Secrets, Services), so
/// no pod is created before its ServiceAccount and configuration exist; then the
/// workloads, and the Leases after them in the same phase. A Lease is the agent's only
/// once the agent runs, and an agent whose Lease is not there yet waits for it: the
/// members start placing pods while the few hundred Leases are written, instead of after
/// (at 200 agents per member the Leases were most of a rollout's writes).
fn phases(desired: &[MemberObject]) -> [Vec<&MemberObject>; 3] {
    let mut out: [Vec<&MemberObject>; 3] = Default::default();
    let mut leases = Vec::new();
    for d in desired {
        let phase = match d.resource.kind.as_str() {
            "Namespace" => 0,
            "StatefulSet" | "DaemonSet" => 2,
            "Lease" => {
                leases.push(d);
                continue;
            }
            _ => 1,
        };
        out[phase].push(d);
    }
    out[2].extend(leases);
    out
}

/// Checks one object against what the member holds and writes it when its applied hash
/// differs (never when `paused`); returns the readiness a workload reports.
async fn apply_one(
    client: &Client,
    d: &MemberObject,
    leases: &BTreeMap<String, DynamicObject>,
    uid: &str,
    owner: &Owner,
    paused: bool,
) -> Result<Readiness, ApplyError> {
    let mut readiness = Readiness::default();
    let existing = match d.resource.kind.as_str() {
        "Lease" => leases.get(&d.name).cloned(),
        _ => d
            .api(client)
            .get_opt(&d.name)
            .await
            .map_err(|source| api_err("get", &d.resource.kind, &d.name, source))?,
    };
    if let Some(obj) = &existing {
        if let Some(labelled) = foreign_owner(obj, &d.resource.kind, uid) {
            return Err(ApplyError::Conflict(d.name.clone(), labelled));
        }
        if let Some(theirs) = foreign_namespace(d, obj, owner) {
            return Err(ApplyError::NotOurs(d.name.clone(), theirs));
        }
        count_ready(obj, &d.resource.kind, &mut readiness);
    }
    let current = existing
        .as_ref()
        .and_then(|o| o.annotations().get(APPLIED_HASH_ANNOTATION));
    if paused || current.map(String::as_str) == Some(d.hash()) {
        return Ok(readiness);
    }
    tracing::debug!(kind = %d.resource.kind, name = %d.name, ?current, want = d.hash(), "applying");
    d.apply(client)
        .await
        .map_err(|source| api_err("apply", &d.resource.kind, &d.name, source))?;
    Ok(readiness)
}

/// The Leases of the member namespace by name, when `desired` has any and fetch could not
/// read them: one per agent, so one list instead of a read each.
async fn existing_leases(
    client: &Client,
    desired: &[MemberObject],
) -> Result<BTreeMap<String, DynamicObject>, ApplyError> {
    let Some(lease) = desired.iter().find(|d| d.resource.kind == "Lease") else {
        return Ok(BTreeMap::new());
    };
    let list = crate::lists::list(&lease.api(client), &ListParams::default(), |l| l)
        .await
        .map_err(|source| {
            api_err(
                "list",
                "Lease",
                lease.namespace.as_deref().unwrap_or_default(),
                source,
            )
        })?;
    Ok(list.into_iter().map(|l| (l.name_any(), l)).collect())
}

/// The network UID an existing object belongs to when it is not `uid`. A Lease without the
/// label was created by an agent before the operator created Leases: it is adopted (its
/// namespace, applied first, is this network's).
fn foreign_owner(obj: &DynamicObject, kind: &str, uid: &str) -> Option<String> {
    match obj.labels().get(NETWORK_UID_LABEL) {
        Some(owner) if owner == uid => None,
        None if kind == "Lease" => None,
        owner => Some(owner.cloned().unwrap_or_default()),
    }
}

/// Kinds the operator removes from a member namespace when the plan no longer wants them:
/// Leases of agents no longer placed, the RBAC of a role no longer there, and workloads (a
/// removed pool, supers scaled to zero). In this order: an agent stopped with its workload
/// finds its Lease refused (403) and drains, as one the plan dropped from a workload that
/// stays (whose Role changed before the workload). A role's ServiceAccount stays as long as
/// the namespace, as the routes ConfigMap does: without its RoleBinding it may do nothing,
/// and deleting it would make a stopping agent's token unauthenticated (401), which an
/// agent reads as its network leaving (no drain).
const PRUNED: [(&str, &str, &str, &str); 6] = [
    ("coordination.k8s.io", "v1", "Lease", "leases"),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
    ),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("", "v1", "Service", "services"),
];

/// The ledger TLS objects of a member, removed once `superNodes.ledgerTls` is false (by
/// name and only then: while TLS is on, one missing from the desired objects may only be
/// unreadable this reconcile, and is left alone).
const TLS_OBJECTS: [(&str, &str, &str); 2] = [
    ("Secret", "secrets", TLS_SECRET),
    ("ConfigMap", "configmaps", CA_CONFIGMAP),
];

/// Deletes the core/v1 object `name` of `(kind, plural)` when it exists and is this
/// network's; reads its metadata first, so a reconcile that finds it gone writes nothing.
async fn delete_if_ours(
    client: &Client,
    namespace: &str,
    (kind, plural): (&str, &str),
    name: &str,
    uid: &str,
) -> Result<(), ApplyError> {
    let gvk = kube::core::GroupVersionKind::gvk("", "v1", kind);
    let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    let found = api
        .get_metadata_opt(name)
        .await
        .map_err(|source| api_err("get", kind, name, source))?;
    if found.is_some_and(|o| o.labels().get(NETWORK_UID_LABEL).map(String::as_str) == Some(uid)) {
        tracing::debug!(kind, name, "removing: superNodes.ledgerTls is false");
        api.delete(name, &DeleteParams::background())
            .await
            .map_err(|source| api_err("delete", kind, name, source))?;
    }
    Ok(())
}

/// Deletes this network's objects of the [`PRUNED`] kinds the plan no longer wants.
async fn prune(client: &Client, desired: &[MemberObject], uid: &str) -> Result<(), ApplyError> {
    let namespace = desired
        .iter()
        .find_map(|d| d.namespace.clone())
        .unwrap_or_default();
    let wanted: BTreeSet<(&str, &str)> = desired
        .iter()
        .map(|d| (d.resource.kind.as_str(), d.name.as_str()))
        .collect();
    for (group, version, kind, plural) in PRUNED {
        let gvk = kube::core::GroupVersionKind::gvk(group, version, kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, &resource);
        let selector = format!("{NETWORK_UID_LABEL}={uid}");
        let names = crate::lists::names(&api, &ListParams::default().labels(&selector))
            .await
            .map_err(|source| api_err("list", kind, &namespace, source))?;
        for name in names {
            if !wanted.contains(&(kind, name.as_str())) {
                tracing::debug!(kind, name = %name, "pruning");
                api.delete(&name, &DeleteParams::background())
                    .await
                    .map_err(|source| api_err("delete", kind, &name, source))?;
            }
        }
    }
    Ok(())
}

/// Whose the member namespace is when not ours: it is written first, so nothing is written
/// into one that is another's. An unmarked one (an older operator's) is ours to mark.
fn foreign_namespace(d: &MemberObject, obj: &DynamicObject, owner: &Owner) -> Option<Ownership> {
    if d.resource.kind != "Namespace" {
        return None;
    }
    match owner.ownership(&obj.metadata) {
        Ownership::Ours => None,
        Ownership::Unmarked => {
            tracing::info!(namespace = %d.name, cluster = %owner.cluster, "marking a namespace written before owner markings");
            None
        }
        theirs => Some(theirs),
    }
}

fn count_ready(obj: &DynamicObject, kind: &str, readiness: &mut Readiness) {
    let status = &obj.data["status"];
    let field = |name: &str| i32::try_from(status[name].as_i64().unwrap_or(0)).unwrap_or(0);
    match kind {
        "StatefulSet" => readiness.supers += field("readyReplicas"),
        "DaemonSet" => readiness.edges += field("numberReady"),
        _ => {}
    }
}

/// The API server's own message, without the debug dump of its Status.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        // The transport's causes, not only kube's outermost words.
        other => hsn_api::access::describe(other),
    }
}

fn api_err(verb: &'static str, kind: &str, name: &str, source: kube::Error) -> ApplyError {
    ApplyError::Api {
        verb,
        kind: kind.to_string(),
        name: name.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::phases;
    use crate::resources::tests::{network, owner, plan};
    use crate::resources::{Chain, Peers, member_objects};

    #[test]
    fn workloads_go_out_before_the_leases_and_after_what_their_pods_mount() {
        let objects = member_objects(
            &network(),
            &owner("a"),
            &plan(),
            &Peers::new(),
            &Chain::default(),
        );
        let [first, second, third] = phases(&objects);
        let kinds = |phase: &[&crate::resources::MemberObject]| -> Vec<String> {
            phase.iter().map(|d| d.resource.kind.clone()).collect()
        };
        let (first, second, third) = (kinds(&first), kinds(&second), kinds(&third));
        assert_eq!(first, ["Namespace"]);
        for mounted in ["ServiceAccount", "Role", "RoleBinding", "ConfigMap"] {
            assert!(
                second.iter().any(|k| k == mounted),
                "{mounted} in {second:?}"
            );
        }
        for later in ["Namespace", "Lease", "DaemonSet", "StatefulSet"] {
            assert!(!second.iter().any(|k| k == later), "{later} in {second:?}");
        }
        // The workloads first, then every Lease: the pods are placed while the Leases are
        // written.
        let workloads = third
            .iter()
            .take_while(|k| *k == "DaemonSet" || *k == "StatefulSet")
            .count();
        assert_eq!(workloads, 2, "{third:?}");
        assert!(third[workloads..].iter().all(|k| k == "Lease"), "{third:?}");
        assert_eq!(third.len() - workloads, 3, "{third:?}");
        // Nothing lost or written twice.
        assert_eq!(first.len() + second.len() + third.len(), objects.len());
    }
}
