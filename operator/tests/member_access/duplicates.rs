//! One cluster registered twice: a second Secret with member A's kubeconfig, and a non-local
//! MecCluster whose Secret points at the hub while `hub-local` exists. Both are refused as
//! `DuplicateCluster` naming the MecCluster that holds the cluster, with an Event; across
//! many rounds nothing is deleted anywhere and no namespace is re-created.

use anyhow::{Result, ensure};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::ListParams;

use hsn_testkit::operator::{DEADLINE, Operator, kubeconfig_secret, mec_cluster};
use hsn_testkit::wait_for;

use crate::{HUB_LOCAL, World, member_requests, namespaces, rounds, wait_mec};

/// The second MecCluster for member A.
pub(crate) const A_AGAIN: &str = "mec-a-again";
/// A non-local MecCluster for the hub.
pub(crate) const HUB_ALIAS: &str = "mec-hub-alias";

pub(crate) async fn refused_and_harmless(w: &World, op: &Operator) -> Result<()> {
    let before: Vec<_> = all_namespaces(w).await?;
    kubeconfig_secret(&w.hub(), A_AGAIN, &w.a_kubeconfig).await?;
    mec_cluster(&w.hub(), A_AGAIN, "eu-west", A_AGAIN).await?;
    let hub_kubeconfig = std::fs::read(w.hub.kubeconfig())?;
    kubeconfig_secret(&w.hub(), HUB_ALIAS, &hub_kubeconfig).await?;
    mec_cluster(&w.hub(), HUB_ALIAS, "eu-central", HUB_ALIAS).await?;

    for (duplicate, holder) in [(A_AGAIN, w.a.name.as_str()), (HUB_ALIAS, HUB_LOCAL)] {
        let message = wait_mec(w, duplicate, "Ready", "False", "DuplicateCluster").await?;
        ensure!(
            message.contains(&format!("MecCluster {holder}'s")),
            "{duplicate}: {message}"
        );
        wait_mec(w, duplicate, "Reachable", "True", "ProbeSucceeded").await?;
        let mecs = w.mecs();
        let (dup, held) = (mecs.get(duplicate).await?, mecs.get(holder).await?);
        let identity = |m: &hsn_api::MecCluster| m.status.clone().and_then(|s| s.identity);
        ensure!(
            identity(&dup).is_some() && identity(&dup) == identity(&held),
            "{duplicate} and {holder} record the same cluster: {:?} {:?}",
            identity(&dup),
            identity(&held)
        );
        let events = Api::<Event>::all(w.hub());
        wait_for(
            &format!("a DuplicateCluster Event on {duplicate}"),
            DEADLINE,
            || async {
                let list = events.list(&ListParams::default()).await.ok()?;
                list.items
                    .iter()
                    .any(|e| {
                        e.reason.as_deref() == Some("DuplicateCluster")
                            && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                                == Some(duplicate)
                    })
                    .then_some(())
            },
        )
        .await?;
    }
    // Many probes of every MecCluster and several network reconciles later, nothing was
    // deleted anywhere, and no namespace is new.
    rounds(op, "meccluster", 30.0).await?;
    rounds(op, "hsnnetwork", 4.0).await?;
    ensure!(
        member_requests(op, None, "DELETE").await? == 0.0,
        "the operator deleted something in a member"
    );
    for (_, dup) in [(A_AGAIN, A_AGAIN), (HUB_ALIAS, HUB_ALIAS)] {
        ensure!(
            member_requests(op, Some(dup), "GET").await? > 0.0,
            "{dup} was probed"
        );
        for method in ["POST", "PATCH", "PUT", "DELETE"] {
            ensure!(
                member_requests(op, Some(dup), method).await? == 0.0,
                "{dup} was used to write ({method})"
            );
        }
    }
    let after: Vec<_> = all_namespaces(w).await?;
    ensure!(
        before == after,
        "namespaces changed: {before:?} -> {after:?}"
    );
    Ok(())
}

/// Every namespace of the hub, A and B.
async fn all_namespaces(
    w: &World,
) -> Result<Vec<std::collections::BTreeMap<String, (String, bool)>>> {
    let mut out = Vec::new();
    for (_, client) in w.members() {
        out.push(namespaces(&client).await?);
    }
    Ok(out)
}
