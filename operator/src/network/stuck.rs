//! Agent pods that stay Pending: not placed by the member's scheduler, or with a container
//! that cannot start. Read from the pods fetch lists once per member per reconcile; a member
//! whose pods cannot be read reports none (the counts of ready agents still tell the network
//! is not Ready). A super pod waiting on its claim also gets why the claim is not bound,
//! read from the member only then ([`explain_claims`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::resources::{NETWORK_UID_LABEL, SUPER_NODE, state_claim_name};

/// Why pods stay Pending: each (pod, what its status says), sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// `PodScheduled=False`, reason `Unschedulable`: the scheduler's message.
    pub unschedulable: Vec<(String, String)>,
    /// A container waiting for a reason that does not pass by itself (image, configuration,
    /// crash loop): the reason and message.
    pub failing: Vec<(String, String)>,
}

/// Container waiting reasons that need a change to pass.
const FAILING: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
];

/// Whether `pod` is stuck: at most one entry in each list, its name and why.
pub fn of(pod: &Pod) -> Stuck {
    let mut out = Stuck::default();
    let Some(status) = &pod.status else {
        return out;
    };
    let unscheduled = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(c) = unscheduled {
        out.unschedulable
            .push((pod.name_any(), c.message.clone().unwrap_or_default()));
    }
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
        .find(|w| w.reason.as_deref().is_some_and(|r| FAILING.contains(&r)));
    if let Some(w) = waiting {
        let why = format!(
            "{}: {}",
            w.reason.as_deref().unwrap_or_default(),
            w.message.as_deref().unwrap_or_default()
        );
        out.failing.push((pod.name_any(), why));
    }
    out
}

/// Whether an unschedulable pod waits on its claims: a super node's, with the scheduler's
/// word for claims that are not bound.
fn waits_on_claims((pod, why): &(String, String)) -> bool {
    pod.starts_with(SUPER_NODE) && why.contains("PersistentVolumeClaim")
}

/// What the member says of a claim's StorageClass.
#[derive(Debug)]
enum Class {
    /// The claim names none (no class was the default when it was made).
    Unnamed,
    /// The cluster has no class of that name.
    Missing(String),
    /// It has: the class's provisioner.
    Provisioner(String, String),
    /// It could not be read.
    Unreadable(String, String),
}

/// Why a claim stays Pending, in a user's words.
fn claim_note(claim: &str, class: &Class) -> String {
    match class {
        Class::Unnamed => format!(
            "claim {claim} names no StorageClass and the cluster has no default one: mark \
             one default there (storageclass.kubernetes.io/is-default-class), which the claim \
             then takes"
        ),
        Class::Missing(name) => format!(
            "claim {claim} asks for StorageClass \"{name}\", which the cluster does not have \
             (superNodes.storage.storageClassName, fixed once the network exists: create the \
             class there)"
        ),
        Class::Provisioner(name, provisioner) => format!(
            "claim {claim} of StorageClass \"{name}\" is not bound: no PersistentVolume of \
             the class fits it and its provisioner ({provisioner}) has not made one"
        ),
        Class::Unreadable(name, error) => {
            format!("claim {claim} is not bound (StorageClass \"{name}\": {error})")
        }
    }
}

/// Adds to each super pod in `stuck` that waits on its claim why that claim is Pending
/// (`notes`: by claim name).
fn attach_notes(stuck: &mut Stuck, notes: &BTreeMap<String, String>) {
    for entry in stuck.unschedulable.iter_mut() {
        if !waits_on_claims(entry) {
            continue;
        }
        if let Some(note) = notes.get(&state_claim_name(&entry.0)) {
            entry.1 = format!("{}; {note}", entry.1);
        }
    }
}

/// Explains super pods that cannot be scheduled because their claims stay Pending: reads
/// the network's claims in the member namespace and the StorageClasses they ask for, only
/// when such a pod is in `stuck` (a converged network costs no read). A read that fails
/// leaves the scheduler's message as it is.
pub async fn explain_claims(client: &Client, namespace: &str, uid: &str, stuck: &mut Stuck) {
    if !stuck.unschedulable.iter().any(waits_on_claims) {
        return;
    }
    let selector = format!("{NETWORK_UID_LABEL}={uid}");
    let claims = match Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await
    {
        Ok(list) => list.items,
        Err(error) => {
            tracing::warn!(namespace, %error, "reading the super nodes' claims failed");
            return;
        }
    };
    let classes = Api::<StorageClass>::all(client.clone());
    // Every claim of a network asks for the same class (one claim template): read it once.
    let mut looked_up: BTreeMap<Option<String>, Class> = BTreeMap::new();
    let mut notes = BTreeMap::new();
    for claim in claims {
        let pending = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
        if !pending {
            continue;
        }
        let name = claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone());
        if !looked_up.contains_key(&name) {
            let class = match name.clone() {
                None => Class::Unnamed,
                Some(name) => match classes.get_opt(&name).await {
                    Ok(None) => Class::Missing(name),
                    Ok(Some(c)) => Class::Provisioner(name, c.provisioner),
                    Err(e) => Class::Unreadable(name, hsn_api::access::describe(&e)),
                },
            };
            looked_up.insert(name.clone(), class);
        }
        let claim = claim.name_any();
        notes.insert(claim.clone(), claim_note(&claim, &looked_up[&name]));
    }
    attach_notes(stuck, &notes);
}

/// All pods' stuck entries, sorted by pod name.
impl FromIterator<Stuck> for Stuck {
    fn from_iter<I: IntoIterator<Item = Stuck>>(iter: I) -> Self {
        let mut out = Stuck::default();
        for s in iter {
            out.unschedulable.extend(s.unschedulable);
            out.failing.extend(s.failing);
        }
        out.unschedulable.sort();
        out.failing.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuck(pods: &[Pod]) -> Stuck {
        pods.iter().map(of).collect()
    }

    #[test]
    fn pods_the_scheduler_cannot_place_or_that_cannot_start_are_stuck() {
        let pods: Vec<Pod> = serde_json::from_value(serde_json::json!([
            {"metadata": {"name": "running"}, "status": {"phase": "Running",
                "conditions": [{"type": "PodScheduled", "status": "True"}]}},
            {"metadata": {"name": "placed-soon"}, "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}},
            {"metadata": {"name": "super-1"}, "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."}]}},
            {"metadata": {"name": "edge-x"}, "status": {"phase": "Pending",
                "containerStatuses": [{"name": "agent", "image": "a b", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "InvalidImageName",
                    "message": "couldn't parse image name \"a b\""}}}]}},
            {"metadata": {"name": "edge-y"}, "status": {"phase": "Pending",
                "containerStatuses": [{"name": "agent", "image": "a", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}}
        ]))
        .unwrap();
        let s = stuck(&pods);
        assert_eq!(
            s.unschedulable,
            [(
                "super-1".to_string(),
                "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
                    .to_string()
            )]
        );
        assert_eq!(
            s.failing,
            [(
                "edge-x".to_string(),
                "InvalidImageName: couldn't parse image name \"a b\"".to_string()
            )]
        );
    }

    #[test]
    fn a_super_pod_waiting_on_its_claim_is_told_why_the_claim_waits() {
        let unbound = "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.";
        let mut s = Stuck {
            unschedulable: vec![
                ("hsn-super-node-0".into(), unbound.into()),
                ("hsn-super-node-1".into(), "0/3 nodes are available.".into()),
                ("hsn-edge-all-x".into(), unbound.into()),
            ],
            failing: Vec::new(),
        };
        let notes = BTreeMap::from([
            (
                "state-hsn-super-node-0".to_string(),
                claim_note("state-hsn-super-node-0", &Class::Missing("fast".into())),
            ),
            (
                "state-hsn-super-node-1".to_string(),
                claim_note("state-hsn-super-node-1", &Class::Unnamed),
            ),
        ]);
        attach_notes(&mut s, &notes);
        assert_eq!(
            s.unschedulable[0].1,
            format!(
                "{unbound}; claim state-hsn-super-node-0 asks for StorageClass \"fast\", which \
                 the cluster does not have (superNodes.storage.storageClassName, fixed once the \
                 network exists: create the class there)"
            )
        );
        // Not waiting on claims by the scheduler's word, or not a super node: left as is.
        assert_eq!(s.unschedulable[1].1, "0/3 nodes are available.");
        assert_eq!(s.unschedulable[2].1, unbound);
        assert!(claim_note("c", &Class::Unnamed).contains("is-default-class"));
        assert!(
            claim_note("c", &Class::Provisioner("x".into(), "p.io/x".into())).contains("p.io/x")
        );
    }
}
