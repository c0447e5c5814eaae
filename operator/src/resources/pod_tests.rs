//! The agents' pods: where they may run, and how long they have to stop.

use super::tests::{network, owner, plan, rendered};
use super::*;

/// The workloads whose pods run the agents.
const AGENT_WORKLOADS: [&str; 2] = ["hsn-super-node", "hsn-edge-bb"];

/// The pod template of the workload `name` among `objs`.
fn template(objs: &[MemberObject], name: &str) -> serde_json::Value {
    let workload = objs
        .iter()
        .find(|d| d.name == name && d.resource.kind != "Service")
        .unwrap();
    workload.body()["spec"]["template"].clone()
}

#[test]
fn agent_pods_refuse_nodes_where_another_networks_agent_runs() {
    let objs = rendered();
    for name in AGENT_WORKLOADS {
        let pod = template(&objs, name);
        assert_eq!(
            pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            serde_json::json!([{
                "labelSelector": {"matchExpressions": [
                    {"key": "hsn.io/role", "operator": "Exists"},
                    {"key": "hsn.io/network-uid", "operator": "NotIn", "values": ["0000-1111"]}
                ]},
                "namespaceSelector": {},
                "topologyKey": "kubernetes.io/hostname"
            }]),
            "{name}"
        );
        // The pods carry the labels the other networks' terms select.
        let labels = &pod["metadata"]["labels"];
        assert_eq!(labels["hsn.io/network-uid"], "0000-1111");
        assert!(labels["hsn.io/role"].is_string());
    }
}

#[test]
fn super_pods_prefer_nodes_not_edge_capable_and_without_the_networks_edges() {
    let objs = rendered();
    let affinity = |name: &str| template(&objs, name)["spec"]["affinity"].clone();
    let sup = affinity("hsn-super-node");
    assert_eq!(
        sup["nodeAffinity"],
        serde_json::json!({"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "preference": {"matchExpressions": [
                {"key": "hsn.io/edge", "operator": "NotIn", "values": ["true"]}
            ]}
        }]})
    );
    assert_eq!(
        sup["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"],
        serde_json::json!([{
            "weight": 100,
            "podAffinityTerm": {
                "labelSelector": {"matchLabels": {
                    "hsn.io/network-uid": "0000-1111", "hsn.io/role": "edge"
                }},
                "topologyKey": "kubernetes.io/hostname"
            }
        }])
    );
    let edge = affinity("hsn-edge-bb");
    assert!(edge["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"].is_null());
}

#[test]
fn agent_pods_have_the_epoch_and_the_drain_to_stop() {
    let mut net = network();
    net.spec.metering.epoch_seconds = 300;
    let objs = member_objects(&net, &owner("a"), &plan(), &Peers::new(), &Chain::default());
    for name in AGENT_WORKLOADS {
        assert_eq!(
            template(&objs, name)["spec"]["terminationGracePeriodSeconds"],
            serde_json::json!(300 + hsn_core::epoch::DRAIN_SECONDS),
            "{name}"
        );
    }
}
