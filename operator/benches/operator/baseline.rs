//! The members alone (what create -> Ready includes and no operator can make faster) and
//! when a rollout's pods were created and turned Ready.

use super::*;
use report::PodTimeline;

use std::collections::BTreeSet;

use kube::ResourceExt;

/// The DaemonSets of a [`members_alone`] baseline in each member: one on every
/// edge-capable node, or one per edge pool on that pool's nodes (as the operator runs them),
/// plain or exactly as the operator renders them (whether that shape is what places its
/// pods slower; the figures: README, "Performance").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Baseline {
    OnePerMember,
    OnePerPool,
    /// The operator's own edge DaemonSets for the bench's network, from the function that
    /// renders them for a member (`hsn_operator::resources::member_objects`, on the plan
    /// the operator makes on this inventory), moved to the baseline namespace: its pods
    /// pinned to the nodes by name, the required anti-affinity to other networks' agents,
    /// host network, ports, volumes, security context and all.
    OperatorShaped,
}

/// Labels every baseline pod carries (what [`pod_timeline`] selects).
const BASELINE_APP: (&str, &str) = ("app", "baseline");
const BASELINE_NS: &str = "baseline";

/// One baseline DaemonSet and how many ready pods it should come to.
struct Set {
    daemonset: k8s_openapi::api::apps::v1::DaemonSet,
    want: i32,
}

/// The plain baselines' DaemonSets in member `m`: a container that does nothing, on the
/// nodes of a label selector.
fn plain_sets(m: &Member, baseline: Baseline) -> Result<Vec<Set>> {
    let edge = ("hsn.io/edge".to_string(), "true".to_string());
    let selectors: Vec<(String, BTreeMap<String, String>)> = match baseline {
        Baseline::OnePerMember => vec![("baseline".into(), BTreeMap::from([edge]))],
        _ => SLICES
            .into_iter()
            .map(|slice| {
                let selector =
                    BTreeMap::from([edge.clone(), ("hsn.io/slice".into(), slice.into())]);
                (format!("baseline-{slice}"), selector)
            })
            .collect(),
    };
    selectors
        .into_iter()
        .map(|(name, selector)| {
            let want = m
                .nodes
                .iter()
                .filter(|n| selector.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
                .count();
            let daemonset = serde_json::from_value(json!({
                "metadata": {"name": name},
                "spec": {
                    "selector": {"matchLabels": {"set": name}},
                    "template": {
                        "metadata": {"labels": {BASELINE_APP.0: BASELINE_APP.1, "set": name}},
                        "spec": {
                            "nodeSelector": selector,
                            "containers": [{"name": "c", "image": "registry.invalid/baseline:0"}]
                        }
                    }
                }
            }))?;
            Ok(Set {
                daemonset,
                want: i32::try_from(want)?,
            })
        })
        .collect()
}

/// The operator's edge DaemonSets for member `m` under `plan`, in the baseline namespace.
fn operator_sets(m: &Member, network: &HsnNetwork, plan: &plan::Plan) -> Result<Vec<Set>> {
    use hsn_operator::resources::{Chain, Owner, Peers, edge_daemonset, member_objects};
    let owner = Owner {
        hub: "baseline".into(),
        cluster: m.name.clone(),
    };
    let objects = member_objects(network, &owner, plan, &Peers::default(), &Chain::default());
    let Some(part) = plan.clusters.get(&m.name) else {
        return Ok(Vec::new());
    };
    part.edge_pools
        .iter()
        .filter(|(_, nodes)| !nodes.is_empty())
        .map(|(pool, nodes)| {
            let name = edge_daemonset(pool);
            let object = objects
                .iter()
                .find(|o| o.resource.kind == "DaemonSet" && o.name == name)
                .with_context(|| format!("the operator renders no DaemonSet {name}"))?;
            let mut daemonset: k8s_openapi::api::apps::v1::DaemonSet =
                serde_json::from_value(object.body())?;
            daemonset.metadata.namespace = Some(BASELINE_NS.into());
            let labels = daemonset
                .spec
                .as_mut()
                .and_then(|s| s.template.metadata.as_mut())
                .context("a DaemonSet without pod template metadata")?
                .labels
                .get_or_insert_default();
            labels.insert(BASELINE_APP.0.into(), BASELINE_APP.1.into());
            Ok(Set {
                daemonset,
                want: i32::try_from(nodes.len())?,
            })
        })
        .collect()
}

/// The members alone, before the operator's rollout and in the same run: in every member
/// at once, the `baseline`'s DaemonSets on the edge-capable nodes (as many pods as the
/// operator's pools place there), from create until every member reports them all ready;
/// then removed. That is the members' controller-manager, scheduler and kwok placing and
/// readying the pods, which create → Ready includes and no operator can make faster.
pub(crate) async fn members_alone(
    members: &[Member],
    baseline: Baseline,
    supers: usize,
) -> Result<(Duration, PodTimeline)> {
    use k8s_openapi::api::apps::v1::DaemonSet;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let sets: Vec<Vec<Set>> = if baseline == Baseline::OperatorShaped {
        // The bench's network and the operator's plan on this inventory, under a made-up
        // UID: the pods' anti-affinity to other networks' agents is there, with none of
        // them running yet to keep away from.
        let mut network = network(supers, members[0].nodes.len(), members.len())?;
        network.metadata.uid = Some(BASELINE_NS.into());
        let plan = plan::plan(
            &network.spec,
            &Inputs {
                clusters: views(members),
                ..Inputs::default()
            },
        );
        members
            .iter()
            .map(|m| operator_sets(m, &network, &plan))
            .collect::<Result<_>>()?
    } else {
        members
            .iter()
            .map(|m| plain_sets(m, baseline))
            .collect::<Result<_>>()?
    };
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": BASELINE_NS}}))?;
    for (m, sets) in members.iter().zip(&sets) {
        let c = m.cluster.client();
        Api::<Namespace>::all(c.clone())
            .create(&PostParams::default(), &ns)
            .await?;
        // The ServiceAccounts the pods name (the operator's edge pods run as theirs).
        let accounts: BTreeSet<String> = sets
            .iter()
            .filter_map(|s| s.daemonset.spec.as_ref()?.template.spec.as_ref())
            .filter_map(|p| p.service_account_name.clone())
            .collect();
        for name in accounts {
            let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": name}}))?;
            Api::<ServiceAccount>::namespaced(c.clone(), BASELINE_NS)
                .create(&PostParams::default(), &sa)
                .await?;
        }
    }
    let started = Instant::now();
    for (m, sets) in members.iter().zip(&sets) {
        for set in sets {
            Api::<DaemonSet>::namespaced(m.cluster.client(), BASELINE_NS)
                .create(&PostParams::default(), &set.daemonset)
                .await?;
        }
    }
    poll_until("the baseline DaemonSets ready", || async {
        let mut all = true;
        for (m, sets) in members.iter().zip(&sets) {
            let api = Api::<DaemonSet>::namespaced(m.cluster.client(), BASELINE_NS);
            for set in sets {
                let ready = api
                    .get(&set.daemonset.name_any())
                    .await
                    .ok()
                    .and_then(|d| d.status)
                    .is_some_and(|s| s.number_ready == set.want);
                all &= ready;
            }
        }
        all
    })
    .await?;
    let took = started.elapsed();
    let first = sets
        .iter()
        .flatten()
        .next()
        .context("no baseline DaemonSet")?
        .daemonset
        .name_any();
    let born = Api::<DaemonSet>::namespaced(members[0].cluster.client(), BASELINE_NS)
        .get(&first)
        .await?
        .metadata
        .creation_timestamp
        .context("no creationTimestamp")?
        .0;
    let lp = ListParams::default().labels(&format!("{}={}", BASELINE_APP.0, BASELINE_APP.1));
    let pods = pod_timeline(members, BASELINE_NS, &lp, born).await?;
    for m in members {
        let api = Api::<Namespace>::all(m.cluster.client());
        api.delete(BASELINE_NS, &Default::default()).await?;
    }
    poll_until("the baseline namespaces gone", || async {
        let mut gone = true;
        for m in members {
            let api = Api::<Namespace>::all(m.cluster.client());
            gone &= matches!(api.get_opt(BASELINE_NS).await, Ok(None));
        }
        gone
    })
    .await?;
    Ok((took, pods))
}

/// When the pods `lp` selects in `namespace` of every member were created and turned
/// Ready, from the API servers' own timestamps (whole seconds) relative to `born`: for the
/// network, how much of create -> Ready is the members placing its pods and how much the
/// operator noticing.
pub(crate) async fn pod_timeline(
    members: &[Member],
    namespace: &str,
    lp: &ListParams,
    born: k8s_openapi::jiff::Timestamp,
) -> Result<PodTimeline> {
    use k8s_openapi::api::core::v1::Pod;
    let after = |t: k8s_openapi::jiff::Timestamp| t.duration_since(born).as_secs_f64();
    let mut out = PodTimeline {
        first_created: f64::INFINITY,
        ..PodTimeline::default()
    };
    for m in members {
        let pods = Api::<Pod>::namespaced(m.cluster.client(), namespace)
            .list(lp)
            .await?;
        for p in pods.items {
            out.pods += 1;
            if let Some(t) = &p.metadata.creation_timestamp {
                out.first_created = out.first_created.min(after(t.0));
                out.last_created = out.last_created.max(after(t.0));
            }
            let ready = p
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.type_ == "Ready" && c.status == "True")
                .and_then(|c| c.last_transition_time);
            if let Some(t) = ready {
                out.ready += 1;
                out.last_ready = out.last_ready.max(after(t.0));
            }
        }
    }
    Ok(out)
}
