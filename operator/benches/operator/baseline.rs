//! The members alone (what create -> Ready includes and no operator can make faster) and
//! when a rollout's pods were created and turned Ready.

use super::*;
use report::PodTimeline;

/// The DaemonSets of a [`members_alone`] baseline in each member: one on every
/// edge-capable node, or one per edge pool on that pool's nodes (as the operator runs them),
/// plain or with the operator's pod shape (whether that shape is what places its pods
/// slower; the figures: README, "Performance").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Baseline {
    OnePerMember,
    OnePerPool,
    /// One per pool, with the operator's pod shape: pinned to the nodes by name (a term
    /// per node), the required anti-affinity to other networks' agents, host network and
    /// a port.
    OperatorShaped,
}

impl Baseline {
    /// (name, node selector) of each DaemonSet.
    fn daemonsets(self) -> Vec<(String, BTreeMap<String, String>)> {
        let edge = ("hsn.io/edge".to_string(), "true".to_string());
        match self {
            Self::OnePerMember => vec![("baseline".into(), BTreeMap::from([edge]))],
            Self::OnePerPool | Self::OperatorShaped => SLICES
                .into_iter()
                .map(|slice| {
                    let selector =
                        BTreeMap::from([edge.clone(), ("hsn.io/slice".into(), slice.into())]);
                    (format!("baseline-{slice}"), selector)
                })
                .collect(),
        }
    }
}

/// The members alone, before the operator's rollout and in the same run: in every member
/// at once, plain DaemonSets on the edge-capable nodes (as many pods as the operator's
/// pools place there; `baseline` says how many DaemonSets), from create until every member
/// reports them all ready; then removed. That is the members' controller-manager,
/// scheduler and kwok placing and readying the pods, which create → Ready includes and no
/// operator can make faster.
pub(crate) async fn members_alone(
    members: &[Member],
    baseline: Baseline,
) -> Result<(Duration, PodTimeline)> {
    use k8s_openapi::api::apps::v1::DaemonSet;
    const BASELINE_NS: &str = "baseline";
    let sets = baseline.daemonsets();
    let daemonsets =
        |m: &Member| -> Result<Vec<DaemonSet>> {
            sets.iter()
            .map(|(name, selector)| {
                let mut spec = json!({
                    "nodeSelector": selector,
                    "containers": [{"name": "c", "image": "registry.invalid/baseline:0"}]
                });
                if baseline == Baseline::OperatorShaped {
                    let terms: Vec<_> = m
                        .nodes
                        .iter()
                        .filter(|n| selector.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
                        .map(|n| json!({"matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": [n.name]}]}))
                        .collect();
                    let (role, uid) = (
                        hsn_operator::resources::ROLE_LABEL,
                        hsn_operator::resources::NETWORK_UID_LABEL,
                    );
                    spec = json!({
                        "hostNetwork": true,
                        "affinity": {
                            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                                {"nodeSelectorTerms": terms}},
                            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                                "labelSelector": {"matchExpressions": [
                                    {"key": role, "operator": "Exists"},
                                    {"key": uid, "operator": "NotIn", "values": ["baseline"]}]},
                                "namespaceSelector": {},
                                "topologyKey": "kubernetes.io/hostname"}]}
                        },
                        "containers": [{"name": "c", "image": "registry.invalid/baseline:0",
                            "ports": [{"containerPort": hsn_core::ports::EDGE_METRICS,
                                "name": "metrics"}]}]
                    });
                }
                Ok(serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "spec": {
                        "selector": {"matchLabels": {"app": "baseline", "set": name}},
                        "template": {
                            "metadata": {"labels": {"app": "baseline", "set": name,
                                hsn_operator::resources::ROLE_LABEL: "edge",
                                hsn_operator::resources::NETWORK_UID_LABEL: "baseline"}},
                            "spec": spec
                        }
                    }
                }))?)
            })
            .collect()
        };
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": BASELINE_NS}}))?;
    // Per member, per DaemonSet: the nodes its selector takes.
    let expected: Vec<Vec<i32>> = members
        .iter()
        .map(|m| {
            sets.iter()
                .map(|(_, selector)| {
                    let n = m
                        .nodes
                        .iter()
                        .filter(|n| selector.iter().all(|(k, v)| n.labels.get(k) == Some(v)))
                        .count();
                    i32::try_from(n)
                })
                .collect::<Result<_, _>>()
        })
        .collect::<Result<_, _>>()?;
    for m in members {
        let c = m.cluster.client();
        Api::<Namespace>::all(c.clone())
            .create(&PostParams::default(), &ns)
            .await?;
    }
    let started = Instant::now();
    for m in members {
        for ds in &daemonsets(m)? {
            Api::<DaemonSet>::namespaced(m.cluster.client(), BASELINE_NS)
                .create(&PostParams::default(), ds)
                .await?;
        }
    }
    poll_until("the baseline DaemonSets ready", || async {
        let mut all = true;
        for (m, want) in members.iter().zip(&expected) {
            let api = Api::<DaemonSet>::namespaced(m.cluster.client(), BASELINE_NS);
            for ((name, _), want) in sets.iter().zip(want) {
                let ready = api
                    .get(name)
                    .await
                    .ok()
                    .and_then(|d| d.status)
                    .is_some_and(|s| s.number_ready == *want);
                all &= ready;
            }
        }
        all
    })
    .await?;
    let took = started.elapsed();
    let born = Api::<DaemonSet>::namespaced(members[0].cluster.client(), BASELINE_NS)
        .get(&sets[0].0)
        .await?
        .metadata
        .creation_timestamp
        .context("no creationTimestamp")?
        .0;
    let lp = ListParams::default().labels("app=baseline");
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
