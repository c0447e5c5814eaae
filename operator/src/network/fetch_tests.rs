//! Fetch's unit tests: Lease verdicts, peers, the plan in force, super hosts.

use super::*;
use crate::network::trust::Placed;
use hsn_api::node::{AgentPod, HsnNodeSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

fn network() -> HsnNetwork {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": "metro", "namespace": "edge-net", "uid": "net-uid"},
        "spec": {"superNodes": {"replicas": 1}, "edgePools": [],
                 "metering": {"tenants": []}}
    }))
    .unwrap()
}

fn hsn_node(name: &str, network: &str, label: Option<&str>, owner: Option<&str>) -> HsnNode {
    let mut n = HsnNode::new(
        name,
        HsnNodeSpec {
            network: network.into(),
            role: Role::Super,
            cluster: "a".into(),
            node_name: None,
            ordinal: Some(0),
            assigned_super_node: None,
        },
    );
    n.metadata.labels = label.map(|l| BTreeMap::from([(NETWORK_LABEL.to_string(), l.to_string())]));
    n.metadata.owner_references = owner.map(|uid| {
        vec![OwnerReference {
            api_version: "hsn.io/v1alpha1".into(),
            kind: "HsnNetwork".into(),
            name: "metro".into(),
            uid: uid.into(),
            controller: Some(true),
            ..OwnerReference::default()
        }]
    });
    n
}

#[test]
fn hsn_nodes_claiming_the_network_without_its_owner_reference_are_forged() {
    let (nodes, forged) = sort_nodes(
        &network(),
        vec![
            hsn_node("ours", "metro", Some("metro"), Some("net-uid")),
            hsn_node("by-label", "lab", Some("metro"), None),
            hsn_node("by-spec", "metro", None, None),
            hsn_node("old-network", "metro", Some("metro"), Some("earlier-uid")),
            hsn_node("another-networks", "lab", Some("lab"), Some("lab-uid")),
        ],
    );
    assert_eq!(nodes.keys().collect::<Vec<_>>(), ["ours"]);
    assert_eq!(forged, ["by-label", "by-spec", "old-network"]);
}

/// The verdict on a Lease written by the pod placed for it.
pub(in crate::network) fn placed() -> Verdict {
    Verdict::Trusted(Placed {
        pod: AgentPod {
            name: "p".into(),
            uid: "u".into(),
        },
        node: None,
    })
}

#[test]
fn only_placed_pods_leases_advertise_and_keep_a_super_node_live() {
    let now: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
    let placed = placed();
    let refused = Verdict::Refused(Distrust::NoSuchPod("x".into()));
    let lease = |verdict: &Verdict, expires: &str| LeaseInfo {
        expires: Some(expires.parse().unwrap()),
        peer: Peer {
            public_key: Some("k".into()),
            ..Peer::default()
        },
        verdict: verdict.clone(),
        ..LeaseInfo::default()
    };
    let fresh = "2026-11-26T10:00:10Z";
    let leases = Leases::from([
        ("super-0".into(), lease(&placed, fresh)),
        ("super-1".into(), lease(&placed, "2026-11-26T09:59:00Z")),
        ("super-2".into(), lease(&refused, fresh)),
        ("super-3".into(), LeaseInfo::default()),
        ("edge-n1".into(), lease(&refused, fresh)),
        ("edge-n2".into(), lease(&placed, fresh)),
    ]);
    let fetched = Fetched {
        members: vec![],
        leases: BTreeMap::from([("a".to_string(), leases)]),
        nodes: BTreeMap::new(),
        forged: vec![],
        reads: BTreeMap::new(),
    };
    let lost: Vec<u32> = fetched.lost_supers(now).iter().map(|s| s.ordinal).collect();
    assert_eq!(
        lost,
        [1, 2],
        "lapsed and refused; the unwritten one is starting"
    );
    let peers = fetched.peers();
    let advertised: Vec<&String> = peers["a"].keys().collect();
    assert_eq!(advertised, ["edge-n2", "super-0", "super-1"]);
}

#[test]
fn leases_read_once_serve_apply_with_their_labels_and_hash() {
    let lease: Lease = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "edge-n1", "labels": {NETWORK_UID_LABEL: "u"},
            "annotations": {APPLIED_HASH_ANNOTATION: "h1", "other": "x"}},
        "spec": {"holderIdentity": "pod-1"}
    }))
    .unwrap();
    let read = MemberRead {
        leases: vec![lease],
        ..MemberRead::default()
    };
    let objects = read.leases_as_objects();
    let object = &objects["edge-n1"];
    assert_eq!(object.labels()[NETWORK_UID_LABEL], "u");
    assert_eq!(object.annotations()[APPLIED_HASH_ANNOTATION], "h1");
    assert_eq!(object.annotations().len(), 1, "only what apply reads");
}

#[test]
fn super_hosts_are_where_the_super_pods_run_else_where_their_agents_said() {
    let pod = |kind: &str, name: &str, node: Option<&str>| PodFacts {
        uid: "u".into(),
        node: node.map(Into::into),
        service_account: None,
        controller: Some((kind.into(), name.into())),
    };
    let placed = pod("StatefulSet", SUPER_NODE, Some("n1"));
    let n1 = "n1".to_string();
    assert_eq!(super_placement("hsn-super-node-2", &placed), Some((2, &n1)));
    assert_eq!(super_placement("hsn-super-node-x", &placed), None);
    let pending = pod("StatefulSet", SUPER_NODE, None);
    assert_eq!(super_placement("hsn-super-node-0", &pending), None);
    let edge = pod("DaemonSet", "hsn-edge-bb", Some("n2"));
    assert_eq!(super_placement("hsn-edge-bb-x1", &edge), None);
    let other = pod("StatefulSet", "other", Some("n3"));
    assert_eq!(super_placement("other-0", &other), None);

    // Cluster "a"'s pods were read this time: they say. Cluster "b" was not read, and
    // "c"'s pods could not be: their super nodes' HsnNodes say where their agents ran.
    let super_on = |cluster: &str, host: &str| {
        let mut n = hsn_node(&format!("metro.{cluster}.super-0"), "metro", None, None);
        n.spec.cluster = cluster.into();
        n.status = Some(HsnNodeStatus {
            node_name: Some(host.into()),
            ..HsnNodeStatus::default()
        });
        (n.name_any(), n)
    };
    let fetched = Fetched {
        members: vec![],
        leases: BTreeMap::new(),
        nodes: BTreeMap::from([
            super_on("a", "a-n7"),
            super_on("b", "b-n7"),
            super_on("c", "c-n7"),
        ]),
        forged: vec![],
        reads: BTreeMap::from([
            (
                "a".to_string(),
                MemberRead {
                    super_pods: Some(BTreeMap::from([(0, "n1".to_string())])),
                    ..MemberRead::default()
                },
            ),
            ("c".to_string(), MemberRead::default()),
        ]),
    };
    let hosts = fetched.super_hosts();
    let on = |cluster: &str| hosts[cluster].iter().cloned().collect::<Vec<_>>();
    assert_eq!(on("a"), ["n1"]);
    assert_eq!(on("b"), ["b-n7"]);
    assert_eq!(on("c"), ["c-n7"]);
    assert_eq!(fetched.super_pod_node("a", 0), Some(&n1));
    assert_eq!(fetched.super_pod_node("a", 1), None);
    assert_eq!(fetched.super_pod_node("c", 0), None, "pods not read");
}

#[test]
fn a_super_holds_the_chain_once_its_replica_reports_a_committed_block() {
    let holds = |chain_height: Option<i64>| {
        let annotations = lease::Annotations {
            ledger: chain_height.map(|chain_height| LedgerHead {
                chain_height,
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut l = Lease::default();
        l.metadata.annotations = Some(annotations.to_map());
        lease_info(&l, &Seat::Super(0), &Err("not read".into()), None)
            .peer
            .holds_chain
    };
    assert!(holds(Some(3)));
    assert!(!holds(Some(0)), "a replica that applied no block");
    assert!(!holds(None), "no report");
}
