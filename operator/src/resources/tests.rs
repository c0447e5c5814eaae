use std::collections::BTreeMap;

use hsn_api::HsnNetwork;
use hsn_api::routes::{ROUTES_KEY, RoutesTable};

use super::*;
use crate::plan::{ClusterPlan, EdgeId, Plan, SuperId};

pub(crate) fn network() -> HsnNetwork {
    let mut n: HsnNetwork = serde_json::from_value(serde_json::json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": "metro", "namespace": "edge-net", "uid": "0000-1111"},
        "spec": {
            "superNodes": {"replicas": 2, "image": "agent:1"},
            "edgePools": [{"name": "bb", "sliceType": "eMBB"}, {"name": "iot", "sliceType": "mMTC"}],
            "metering": {"tenants": [{"name": "acme", "id": 1, "prefixes": ["10.20.0.0/16"]}]}
        }
    }))
    .unwrap();
    n.spec.edge_pools[1].tolerations = vec![Default::default()];
    n
}

pub(crate) fn plan() -> Plan {
    Plan {
        clusters: BTreeMap::from([
            (
                "a".to_string(),
                ClusterPlan {
                    super_replicas: 1,
                    edge_pools: BTreeMap::from([
                        ("bb".to_string(), vec!["n1".to_string(), "n2".to_string()]),
                        ("iot".to_string(), vec![]),
                    ]),
                },
            ),
            (
                "b".to_string(),
                ClusterPlan {
                    super_replicas: 1,
                    edge_pools: BTreeMap::from([("iot".to_string(), vec!["m1".to_string()])]),
                },
            ),
        ]),
        live_supers: vec![SuperId::new("a", 0), SuperId::new("b", 0)],
        assignment: BTreeMap::from([
            (EdgeId::new("a", "n1"), SuperId::new("a", 0)),
            (EdgeId::new("a", "n2"), SuperId::new("b", 0)),
            (EdgeId::new("b", "m1"), SuperId::new("b", 0)),
        ]),
        ..Default::default()
    }
}

pub(crate) fn owner(cluster: &str) -> Owner {
    Owner {
        hub: "hub-uid".into(),
        cluster: cluster.into(),
    }
}

/// The objects of [`network`] in cluster "a" under [`plan`].
pub(crate) fn rendered() -> Vec<MemberObject> {
    member_objects(
        &network(),
        &owner("a"),
        &plan(),
        &Peers::new(),
        &Chain::default(),
    )
}

fn kinds(objs: &[MemberObject]) -> Vec<(String, String)> {
    objs.iter()
        .map(|d| (d.resource.kind.clone(), d.name.clone()))
        .collect()
}

#[test]
fn a_cluster_gets_namespace_identity_routes_supers_and_one_daemonset_per_nonempty_pool() {
    let objs = rendered();
    let want: Vec<(String, String)> = [
        ("Namespace", "hsn-metro"),
        ("ServiceAccount", "hsn-super-agent"),
        ("Role", "hsn-super-agent"),
        ("RoleBinding", "hsn-super-agent"),
        ("ServiceAccount", "hsn-edge-agent"),
        ("Role", "hsn-edge-agent"),
        ("RoleBinding", "hsn-edge-agent"),
        ("Lease", "super-0"),
        ("Lease", "edge-n1"),
        ("Lease", "edge-n2"),
        ("ConfigMap", "hsn-routes"),
        ("StatefulSet", "hsn-super-node"),
        ("Service", "hsn-super-node"),
        ("DaemonSet", "hsn-edge-bb"),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(kinds(&objs), want);
    for d in &objs {
        let labels = &d.body()["metadata"]["labels"];
        assert_eq!(labels[NETWORK_UID_LABEL], "0000-1111", "{}", d.name);
        assert_eq!(
            d.body()["metadata"]["annotations"][OWNER_ANNOTATION],
            "edge-net/metro"
        );
        let want_ns = (d.resource.kind != "Namespace").then_some("hsn-metro");
        assert_eq!(d.namespace.as_deref(), want_ns);
    }
}

/// The rules of the Role named `name` among `objs`.
fn rules(objs: &[MemberObject], name: &str) -> Vec<serde_json::Value> {
    let role = objs
        .iter()
        .find(|d| d.resource.kind == "Role" && d.name == name)
        .unwrap();
    role.body()["rules"].as_array().unwrap().clone()
}

#[test]
fn each_role_renews_only_its_own_leases_by_name_and_creates_none() {
    let objs = rendered();
    let leases = |name: &str| {
        let rules = rules(&objs, name);
        let lease_rules: Vec<_> = rules
            .iter()
            .filter(|r| r["resources"][0] == "leases")
            .collect();
        assert_eq!(lease_rules.len(), 1, "{name}: one Lease rule");
        assert_eq!(
            lease_rules[0]["verbs"],
            serde_json::json!(["get", "update", "patch"])
        );
        lease_rules[0]["resourceNames"].clone()
    };
    assert_eq!(leases(SUPER_AGENT_IDENTITY), serde_json::json!(["super-0"]));
    assert_eq!(
        leases(EDGE_AGENT_IDENTITY),
        serde_json::json!(["edge-n1", "edge-n2"])
    );
    for d in objs.iter().filter(|d| d.resource.kind == "Role") {
        for rule in d.body()["rules"].as_array().unwrap() {
            let names = rule["resourceNames"].as_array();
            assert!(names.is_some_and(|n| !n.is_empty()), "{}: {rule}", d.name);
            assert!(!rule["verbs"].as_array().unwrap().contains(&"create".into()));
        }
    }
    // The Leases are the operator's, labelled with their role.
    let lease = objs.iter().find(|d| d.name == "edge-n1").unwrap();
    assert_eq!(lease.body()["metadata"]["labels"][ROLE_LABEL], "edge");
    assert!(
        lease.body().get("spec").is_none(),
        "the agent writes the spec"
    );
}

#[test]
fn a_cluster_without_edges_gets_no_edge_identity() {
    let objs = member_objects(
        &network(),
        &owner("b"),
        &plan(),
        &Peers::new(),
        &Chain::default(),
    );
    assert!(objs.iter().any(|d| d.name == EDGE_AGENT_IDENTITY));
    let mut no_edges = plan();
    no_edges.clusters.get_mut("b").unwrap().edge_pools.clear();
    let objs = member_objects(
        &network(),
        &owner("b"),
        &no_edges,
        &Peers::new(),
        &Chain::default(),
    );
    assert!(
        objs.iter()
            .all(|d| d.name != EDGE_AGENT_IDENTITY && !d.name.starts_with("edge-"))
    );
    assert!(objs.iter().any(|d| d.name == SUPER_AGENT_IDENTITY));
}

#[test]
fn each_workload_runs_as_its_roles_account_and_knows_its_pod_uid() {
    let objs = rendered();
    for (kind, account) in [
        ("StatefulSet", SUPER_AGENT_IDENTITY),
        ("DaemonSet", EDGE_AGENT_IDENTITY),
    ] {
        let d = objs.iter().find(|d| d.resource.kind == kind).unwrap();
        let pod = &d.body()["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], account);
        let env = pod["containers"][0]["env"].as_array().unwrap();
        let uid = env.iter().find(|e| e["name"] == "POD_UID").unwrap();
        assert_eq!(uid["valueFrom"]["fieldRef"]["fieldPath"], "metadata.uid");
    }
}

/// The pod template of every agent workload (the super nodes' StatefulSet, the edge pools'
/// DaemonSets), with its kind.
fn agent_pods() -> Vec<(String, serde_json::Value)> {
    rendered()
        .iter()
        .filter(|d| ["StatefulSet", "DaemonSet"].contains(&d.resource.kind.as_str()))
        .map(|d| {
            let pod = d.body()["spec"]["template"]["spec"].clone();
            (d.resource.kind.clone(), pod)
        })
        .collect()
}

#[test]
fn agents_get_ebpf_capabilities_but_never_privileged() {
    for (_, pod) in agent_pods() {
        assert_eq!(pod["hostNetwork"], true);
        let sc = &pod["containers"][0]["securityContext"];
        assert_eq!(sc["privileged"], false);
        assert_eq!(
            sc["capabilities"]["add"],
            serde_json::json!(["BPF", "NET_ADMIN", "PERFMON"])
        );
        assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    }
}

/// Host ports that node daemons of usual clusters hold on every node: Prometheus'
/// node-exporter, the kubelet, kube-proxy, Calico's felix, Cilium's agent and envoy, the
/// NodeLocal DNS cache, the EBS CSI node plugin.
const NODE_DAEMON_PORTS: [u16; 15] = [
    9100, 10248, 10250, 10255, 10249, 10256, 9091, 9099, 9962, 9963, 9964, 9965, 4240, 9253, 9808,
];

#[test]
fn host_network_pods_claim_no_port_a_usual_node_daemon_holds() {
    let mut seen = 0;
    for (kind, pod) in agent_pods() {
        assert_eq!(pod["hostNetwork"], true);
        for container in pod["containers"].as_array().unwrap() {
            for port in container["ports"].as_array().into_iter().flatten() {
                let number = u16::try_from(port["containerPort"].as_u64().unwrap()).unwrap();
                assert!(
                    !NODE_DAEMON_PORTS.contains(&number),
                    "{kind} {}: port {port} is a node daemon's",
                    container["name"]
                );
                seen += 1;
            }
        }
    }
    assert!(
        seen >= 3,
        "the agents' and the ledger's ports were checked ({seen})"
    );
}

#[test]
fn an_edge_and_a_super_node_on_one_node_do_not_share_state_pins_or_ports() {
    let objs = rendered();
    let agent = |kind: &str| {
        let d = objs.iter().find(|d| d.resource.kind == kind).unwrap();
        d.body()["spec"]["template"]["spec"]["containers"][0].clone()
    };
    let (sup, edge) = (agent("StatefulSet"), agent("DaemonSet"));
    let metrics = |c: &serde_json::Value| {
        let args: Vec<String> = serde_json::from_value(c["args"].clone()).unwrap();
        let i = args.iter().position(|a| a == "--metrics-addr").unwrap();
        args[i + 1].clone()
    };
    assert_eq!(metrics(&sup), "0.0.0.0:7445");
    assert_eq!(metrics(&edge), "0.0.0.0:7444");
    // What lives on the node (pins, state) is the pod's own; the key comes from a Secret,
    // the relay directory is the pod's (an emptyDir).
    for mount in sup["volumeMounts"].as_array().unwrap() {
        if !["identity", "ledger-ca", "ledger-relay"].contains(&mount["name"].as_str().unwrap()) {
            assert_eq!(mount["subPathExpr"], "$(POD_NAME)", "{mount}");
        }
    }
    for mount in edge["volumeMounts"].as_array().unwrap() {
        if mount["name"] != "ledger-ca" {
            assert_eq!(mount["subPath"], "edge", "{mount}");
        }
    }
}

#[test]
fn the_edge_daemonset_is_pinned_to_the_planned_nodes() {
    let objs = rendered();
    let ds = objs
        .iter()
        .find(|d| d.name == "hsn-edge-bb")
        .unwrap()
        .body();
    let terms = ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        .as_array()
        .unwrap();
    let pinned: Vec<&serde_json::Value> = terms
        .iter()
        .map(|t| &t["matchFields"][0]["values"][0])
        .collect();
    assert_eq!(pinned, vec!["n1", "n2"]);
    let args = &ds["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(args.as_array().unwrap().contains(&"--pool".into()));
}

#[test]
fn routes_list_this_clusters_edges_and_every_live_super() {
    let table = routes_of("a", &Peers::new());
    assert_eq!(table.cluster, "a");
    assert_eq!(table.supers.len(), 2);
    assert_eq!(table.edges.len(), 2);
    assert_eq!(table.super_of("n2").unwrap().id, "b/super-0");
    assert_eq!(table.tenants[0].name, "acme");
    // Nothing advertised yet: no addresses, and the table still validates.
    assert!(table.supers.iter().all(|s| s.address.is_none()));
}

fn routes_of(cluster: &str, peers: &Peers) -> RoutesTable {
    let objs = member_objects(
        &network(),
        &owner(cluster),
        &plan(),
        peers,
        &Chain::default(),
    );
    let cm = objs
        .iter()
        .find(|d| d.resource.kind == "ConfigMap")
        .unwrap();
    RoutesTable::parse(cm.body()["data"][ROUTES_KEY].as_str().unwrap()).unwrap()
}

#[test]
fn routes_carry_what_agents_advertise_and_a_supers_edges_from_other_clusters() {
    let peer = |addr: &str, key: &str| Peer {
        address: Some(addr.parse().unwrap()),
        public_key: Some(key.to_string()),
        ..Default::default()
    };
    let peers = Peers::from([
        (
            "a".to_string(),
            BTreeMap::from([
                ("super-0".to_string(), peer("10.9.0.1", "aa")),
                ("edge-n2".to_string(), peer("10.9.1.2", "b2")),
            ]),
        ),
        (
            "b".to_string(),
            BTreeMap::from([("super-0".to_string(), peer("fd00::b0", "bb"))]),
        ),
    ]);
    let a = routes_of("a", &peers);
    let address = |t: &RoutesTable, id: &str| {
        t.supers
            .iter()
            .find(|s| s.id == id)
            .and_then(|s| s.address)
            .map(|a| a.to_string())
    };
    assert_eq!(address(&a, "a/super-0").as_deref(), Some("10.9.0.1"));
    assert_eq!(address(&a, "b/super-0").as_deref(), Some("fd00::b0"));

    // b's super serves n2 of cluster a: b's table lists it with a's cluster name, address
    // and key, and does not route it as one of b's own edges.
    let b = routes_of("b", &peers);
    let n2 = b.edges.iter().find(|e| e.node == "n2").unwrap();
    assert_eq!(n2.cluster, "a");
    assert_eq!(n2.address.unwrap().to_string(), "10.9.1.2");
    assert_eq!(n2.public_key.as_deref(), Some("b2"));
    assert!(b.super_of("n2").is_none());
    assert_eq!(b.super_of("m1").unwrap().id, "b/super-0");
    // a's own edge n1 goes to a's super; nothing of a's is listed twice.
    assert_eq!(a.edges.iter().filter(|e| e.node == "n2").count(), 1);
    assert!(a.edges.iter().all(|e| e.cluster.is_empty()));
}

#[test]
fn hashes_are_stable_and_follow_content() {
    let first = member_objects(
        &network(),
        &owner("b"),
        &plan(),
        &Peers::new(),
        &Chain::default(),
    );
    let again = member_objects(
        &network(),
        &owner("b"),
        &plan(),
        &Peers::new(),
        &Chain::default(),
    );
    assert_eq!(first, again);
    let mut changed = plan();
    changed.clusters.get_mut("b").unwrap().super_replicas = 2;
    let after = member_objects(
        &network(),
        &owner("b"),
        &changed,
        &Peers::new(),
        &Chain::default(),
    );
    let hash = |objs: &[MemberObject], kind: &str, name: &str| {
        objs.iter()
            .find(|d| d.resource.kind == kind && d.name == name)
            .unwrap()
            .hash()
            .to_string()
    };
    let sts = |objs: &[MemberObject]| hash(objs, "StatefulSet", SUPER_NODE);
    assert_ne!(sts(&first), sts(&after));
    // A second super node's Lease is the super nodes' to renew, not the edges'.
    let role = |objs: &[MemberObject], name: &str| hash(objs, "Role", name);
    assert_ne!(
        role(&first, SUPER_AGENT_IDENTITY),
        role(&after, SUPER_AGENT_IDENTITY)
    );
    assert_eq!(
        role(&first, EDGE_AGENT_IDENTITY),
        role(&after, EDGE_AGENT_IDENTITY)
    );
}

#[test]
fn a_cluster_the_plan_leaves_out_gets_nothing() {
    assert!(
        member_objects(
            &network(),
            &owner("c"),
            &plan(),
            &Peers::new(),
            &Chain::default()
        )
        .is_empty()
    );
}

#[test]
fn the_namespace_names_its_network_hub_and_meccluster() {
    let objs = rendered();
    let ns = &objs[0];
    assert_eq!(ns.resource.kind, "Namespace");
    let meta: ObjectMeta = serde_json::from_value(ns.body()["metadata"].clone()).unwrap();
    assert_eq!(
        meta.labels.as_ref().unwrap()[NETWORK_UID_LABEL],
        "0000-1111"
    );
    assert_eq!(owner("a").ownership(&meta), Ownership::Ours);
    assert_ne!(owner("b").ownership(&meta), Ownership::Ours);
    // Only the namespace is marked: the objects in it go with it.
    assert!(
        objs[1..]
            .iter()
            .all(|d| d.body()["metadata"]["labels"][HUB_LABEL].is_null())
    );
}

#[test]
fn failover_settings_reach_every_agent() {
    let mut net = network();
    net.spec.routing.failover.heartbeat_seconds = 3;
    net.spec.routing.failover.lease_duration_seconds = 11;
    for d in member_objects(&net, &owner("a"), &plan(), &Peers::new(), &Chain::default()) {
        if !matches!(d.resource.kind.as_str(), "StatefulSet" | "DaemonSet") {
            continue;
        }
        let args: Vec<String> = serde_json::from_value(
            d.body()["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
        )
        .unwrap();
        let joined = args.join(" ");
        assert!(joined.contains("--heartbeat-seconds 3"), "{joined}");
        assert!(joined.contains("--lease-seconds 11"), "{joined}");
    }
}
