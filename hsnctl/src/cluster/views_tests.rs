use serde_json::json;

use super::*;

fn now() -> Timestamp {
    "2026-05-01T12:00:00Z".parse().unwrap()
}

fn network(name: &str) -> HsnNetwork {
    serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": name, "namespace": "default",
                     "creationTimestamp": "2026-05-01T11:55:00Z"},
        "spec": {"superNodes": {"replicas": 2},
                 "edgePools": [{"name": "a", "sliceType": "eMBB"}],
                 "metering": {"epochSeconds": 30}},
        "status": {
            "conditions": [{"type": "Ready", "status": "False", "reason": "AgentsNotReady",
                            "message": "1 of 2 super nodes ready",
                            "lastTransitionTime": "2026-05-01T11:56:00Z"}],
            "superNodes": {"desired": 2, "ready": 1},
            "edgeNodes": {"desired": 3, "ready": 3},
            "clusterCount": 2,
            "clusters": [
                {"cluster": "a", "superNodes": {"desired": 1, "ready": 1}, "edgeNodes": {"desired": 2, "ready": 2}},
                {"cluster": "b", "superNodes": {"desired": 1, "ready": 0}, "edgeNodes": {"desired": 1, "ready": 1}}
            ]
        }
    }))
    .unwrap()
}

fn node(name: &str, spec: serde_json::Value, status: serde_json::Value) -> HsnNode {
    serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNode",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec, "status": status
    }))
    .unwrap()
}

fn nodes() -> Vec<HsnNode> {
    vec![
        node(
            "metro-edge-a-n1",
            json!({"network": "metro", "role": "Edge", "cluster": "a", "nodeName": "n1",
                   "assignedSuperNode": "metro-super-a-0"}),
            json!({"conditions": [{"type": "Ready", "status": "True", "reason": "LeaseCurrent",
                                   "message": "", "lastTransitionTime": "2026-05-01T11:56:00Z"}],
                   "publicKey": "0fd6".repeat(16), "lastHeartbeat": "2026-05-01T11:59:55Z",
                   "lastEpoch": 58_666_665}),
        ),
        node(
            "metro-edge-b-n2",
            json!({"network": "metro", "role": "Edge", "cluster": "b", "nodeName": "n2"}),
            json!({}),
        ),
        node(
            "metro-super-a-0",
            json!({"network": "metro", "role": "Super", "cluster": "a", "ordinal": 0}),
            json!({"conditions": [{"type": "Ready", "status": "False", "reason": "LeaseExpired",
                                   "message": "", "lastTransitionTime": "2026-05-01T11:56:00Z"}],
                   "nodeName": "a-node-1", "lastHeartbeat": "2026-05-01T09:00:00Z",
                   "lastEpoch": 58_666_666}),
        ),
        node(
            "other-super-a-0",
            json!({"network": "other", "role": "Super", "cluster": "a", "ordinal": 0}),
            json!({"lastEpoch": 99_999_999}),
        ),
    ]
}

#[test]
fn a_network_counts_its_own_agents() {
    let view = NetworkView::new(&network("metro"), &nodes(), now());
    assert_eq!(view.ready.as_deref(), Some("False"));
    assert_eq!(view.reason.as_deref(), Some("AgentsNotReady"));
    assert_eq!(
        view.super_nodes,
        Counts {
            desired: 2,
            ready: 1
        }
    );
    assert_eq!((view.edges_assigned, view.edges_total), (1, 2));
    assert_eq!(view.clusters, ["a", "b"]);
    // The other network's newer epoch does not count.
    assert_eq!(view.latest_epoch, Some(58_666_666));
    assert_eq!(view.epoch_seconds, 30);
    assert_eq!(view.age_seconds, Some(300));
}

#[test]
fn networks_table_reads_well() {
    let views = vec![
        NetworkView::new(&network("metro"), &nodes(), now()),
        NetworkView::new(&network("empty"), &[], now()),
    ];
    let expected = "\
NAMESPACE  NAME   READY                   SUPERS  EDGES  ASSIGNED  CLUSTERS  EPOCH     AGE
default    metro  False (AgentsNotReady)  1/2     3/3    1/2       2         58666666  5m
default    empty  False (AgentsNotReady)  1/2     3/3    0/0       2         -         5m
";
    assert_eq!(NetworkView::table(&views, "in namespace default"), expected);
    assert_eq!(
        NetworkView::table(&[], "in namespace x"),
        "no HsnNetworks in namespace x\n"
    );
}

#[test]
fn nodes_table_reads_well() {
    let mut views: Vec<NodeView> = nodes().iter().map(|n| NodeView::new(n, now())).collect();
    NodeView::sort(&mut views);
    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "metro-super-a-0",
            "metro-edge-a-n1",
            "metro-edge-b-n2",
            "other-super-a-0"
        ]
    );
    let expected = "\
NAME             NETWORK  ROLE   CLUSTER  NODE         SUPER            READY                 HEARTBEAT  EPOCH     KEY
metro-super-a-0  metro    super  a        #0 a-node-1  -                False (LeaseExpired)  3h         58666666  -
metro-edge-a-n1  metro    edge   a        n1           metro-super-a-0  True                  5s         58666665  0fd60fd60fd60fd6
metro-edge-b-n2  metro    edge   b        n2           -                -                     -          -         -
other-super-a-0  other    super  a        #0           -                -                     -          99999999  -
";
    assert_eq!(NodeView::table(&views, "", false), expected);
    let wide = NodeView::table(&views[..1], "", true);
    assert!(wide.starts_with("NAMESPACE  NAME"), "{wide}");
    assert!(wide.contains("\ndefault    metro-super-a-0"), "{wide}");
    // JSON keeps the whole key and the exact times.
    let json = serde_json::to_value(&views[1]).unwrap();
    assert_eq!(json["public_key"], "0fd6".repeat(16));
    assert_eq!(json["last_heartbeat"], "2026-05-01T11:59:55Z");
    assert_eq!(json["heartbeat_age_seconds"], 5);
    assert_eq!(json["role"], "Edge");
}

fn routes_json() -> String {
    json!({
        "version": 1, "network": "metro", "cluster": "a", "epochSeconds": 30,
        "supers": [{"id": "a/super-0", "address": "10.0.0.5"}, {"id": "b/super-0"}],
        "edges": [
            {"node": "n1", "superId": "a/super-0", "address": "10.1.0.1",
             "publicKey": "ab".repeat(32)},
            {"node": "n9", "cluster": "b", "superId": "a/super-0"},
            {"node": "n7", "superId": "c/super-3"}
        ],
        "tenants": [{"name": "acme", "id": 1, "prefixes": ["10.20.0.0/16"]}],
        "futureField": {"kept": true}
    })
    .to_string()
}

#[test]
fn routes_table_shows_each_cluster_and_each_failure() {
    let view = RoutesView {
        namespace: "default".into(),
        network: "metro".into(),
        member_namespace: "hsn-metro".into(),
        clusters: vec![
            ClusterRoutes::parse("a", &routes_json()).unwrap(),
            ClusterRoutes::absent("c"),
        ],
        failed: vec![ClusterFailure {
            cluster: "b".into(),
            error: "unreachable: connection refused".into(),
        }],
    };
    let table = view.table();
    assert!(
        table.starts_with("network default/metro: routes ConfigMap hsn-metro/hsn-routes\n\n"),
        "{table}"
    );
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[2..],
        [
            "cluster a: super nodes 2, edges 3, tenants 1, epoch 30s",
            "SUPER      ADDRESS",
            "a/super-0  10.0.0.5",
            "b/super-0  -",
            "",
            "EDGE  CLUSTER  SUPER                ADDRESS   KEY",
            "n1    a        a/super-0            10.1.0.1  abababababababab",
            "n9    b        a/super-0            -         -",
            "n7    a        c/super-3 (unknown)  -         -",
            "",
            "cluster b: not read: unreachable: connection refused",
            "",
            "cluster c: no routes ConfigMap yet",
        ]
    );
    // JSON is the stored table, unknown fields included, plus the failures.
    let json = serde_json::to_value(&view).unwrap();
    assert_eq!(json["clusters"][0]["routes"]["futureField"]["kept"], true);
    assert_eq!(json["clusters"][1]["routes"], serde_json::Value::Null);
    assert_eq!(json["failed"][0]["cluster"], "b");
}

#[test]
fn routes_of_an_older_operator_still_show() {
    // No cluster, no addresses, and an edge's MAC (which edges no longer publish).
    let old = r#"{"version":1,"network":"metro","epochSeconds":60,"supers":[{"id":"a/super-0"}],
        "edges":[{"node":"n1","superId":"a/super-0","mac":"02:00:00:00:00:01"}],"tenants":[]}"#;
    let routes = ClusterRoutes::parse("a", old).unwrap();
    let section = cluster_section(&routes);
    assert!(
        section.contains("\nn1    a        a/super-0  -        -\n"),
        "{section}"
    );
    assert!(ClusterRoutes::parse("a", "[1]").is_err());
    assert!(ClusterRoutes::parse("a", "{").is_err());
}

#[test]
fn ages_read_like_kubectl() {
    assert_eq!(age(-3), "0s");
    assert_eq!(age(59), "59s");
    assert_eq!(age(119), "119s");
    assert_eq!(age(120), "2m");
    assert_eq!(age(7_199), "119m");
    assert_eq!(age(7_200), "2h");
    assert_eq!(age(172_800), "2d");
}

#[test]
fn the_operators_routes_table_reads_in_full() {
    use hsn_api::routes::{EdgeRoute, ROUTES_VERSION, RoutesTable, SuperRoute};
    let table = RoutesTable {
        version: ROUTES_VERSION,
        network: "metro".into(),
        cluster: "a".into(),
        epoch_seconds: 60,
        supers: vec![SuperRoute {
            id: hsn_core::SuperId::new("a", 0),
            address: Some("10.0.0.5".parse().unwrap()),
        }],
        edges: vec![EdgeRoute {
            node: "n3".into(),
            cluster: "b".into(),
            super_id: hsn_core::SuperId::new("a", 0),
            address: Some("fd00::3".parse().unwrap()),
            public_key: Some("ab".repeat(32)),
        }],
        tenants: Vec::new(),
    };
    let routes = ClusterRoutes::parse("a", &serde_json::to_string(&table).unwrap()).unwrap();
    let doc = routes.doc.unwrap();
    assert_eq!(doc.cluster, "a");
    assert_eq!(doc.supers[0].address.as_deref(), Some("10.0.0.5"));
    let edge = &doc.edges[0];
    let got = (
        edge.cluster.as_str(),
        edge.super_id.as_str(),
        edge.address.as_deref(),
    );
    assert_eq!(got, ("b", "a/super-0", Some("fd00::3")));
    assert_eq!(edge.public_key, Some("ab".repeat(32)));
}
