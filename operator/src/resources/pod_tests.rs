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

#[test]
fn super_nodes_keep_their_state_on_the_node_or_in_their_own_claim() {
    // By default: the node's directory for the network, the pod's under it.
    let objs = rendered();
    let sts = objs.iter().find(|d| d.name == "hsn-super-node").unwrap();
    let state = |sts: &MemberObject| {
        sts.body()["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "state")
            .cloned()
    };
    assert_eq!(
        state(sts).unwrap()["hostPath"]["path"],
        "/var/lib/hsn/metro"
    );
    assert!(sts.body()["spec"]["volumeClaimTemplates"].is_null());

    // With storage: a claim per super node, of that class and size, and no hostPath.
    let mut network = network();
    network.spec.super_nodes.storage = Some(hsn_api::network::SuperNodeStorage {
        storage_class_name: Some("fast".into()),
        size: "5Gi".into(),
    });
    let objs = member_objects(
        &network,
        &owner("a"),
        &plan(),
        &Peers::new(),
        &Chain::default(),
    );
    let sts = objs.iter().find(|d| d.name == "hsn-super-node").unwrap();
    assert!(state(sts).is_none(), "the claim, not a pod volume");
    let claim = &sts.body()["spec"]["volumeClaimTemplates"][0];
    assert_eq!(claim["metadata"]["name"], "state");
    assert_eq!(claim["spec"]["storageClassName"], "fast");
    assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "5Gi");
    assert_eq!(
        claim["spec"]["accessModes"],
        serde_json::json!(["ReadWriteOnce"])
    );
    assert_eq!(
        sts.body()["spec"]["persistentVolumeClaimRetentionPolicy"],
        serde_json::json!({"whenDeleted": "Delete", "whenScaled": "Retain"})
    );
    // Both containers (and the init container) still mount it, each under the pod's name.
    let pod = &sts.body()["spec"]["template"]["spec"];
    for c in pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(pod["initContainers"].as_array().unwrap())
    {
        let mount = c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "state")
            .unwrap_or_else(|| panic!("{} mounts no state", c["name"]));
        assert_eq!(mount["subPathExpr"], "$(POD_NAME)", "{}", c["name"]);
    }
    // Edges keep theirs on the node.
    let edge = objs.iter().find(|d| d.name == "hsn-edge-bb").unwrap();
    assert!(state(edge).unwrap()["hostPath"].is_object());
}
