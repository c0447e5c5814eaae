//! Every rule of the schema, each with a bad object and the API server's message for it.

use serde_json::{Value, json};

pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) kind: &'static str,
    /// (pointer, value) edits applied to a valid object on create.
    pub(crate) edits: Vec<(&'static str, Value)>,
    /// Edits applied in an update after a valid create, for transition rules.
    pub(crate) update: Vec<(&'static str, Value)>,
    pub(crate) want: &'static str,
}

fn case(
    name: &'static str,
    kind: &'static str,
    edits: Vec<(&'static str, Value)>,
    want: &'static str,
) -> Case {
    Case {
        name,
        kind,
        edits,
        update: vec![],
        want,
    }
}

fn update_case(
    name: &'static str,
    kind: &'static str,
    update: Vec<(&'static str, Value)>,
    want: &'static str,
) -> Case {
    Case {
        name,
        kind,
        edits: vec![],
        update,
        want,
    }
}

pub(crate) fn cases() -> Vec<Case> {
    let exactly_one =
        "set exactly one of spec.local: true (the hub cluster itself) and spec.kubeconfigSecretRef";
    vec![
        // MecCluster
        case(
            "mec-both",
            "MecCluster",
            vec![("/spec/kubeconfigSecretRef", json!({"name": "s"}))],
            exactly_one,
        ),
        case(
            "mec-neither",
            "MecCluster",
            vec![("/spec/local", json!(false))],
            exactly_one,
        ),
        case(
            "mec-region-pattern",
            "MecCluster",
            vec![("/spec/region", json!("EU West"))],
            "spec.region: Invalid value",
        ),
        case(
            "mec-latitude",
            "MecCluster",
            vec![(
                "/spec/location",
                json!({"latitude": 91.0, "longitude": 0.0}),
            )],
            "spec.location.latitude: Invalid value: 91: spec.location.latitude in body should be less than or equal to 90",
        ),
        case(
            "mec-capacity",
            "MecCluster",
            vec![("/spec/capacity", json!({"maxSuperNodes": -1}))],
            "spec.capacity.maxSuperNodes in body should be greater than or equal to 0",
        ),
        update_case(
            "mec-region-immutable",
            "MecCluster",
            vec![("/spec/region", json!("us-east"))],
            "region is immutable: a cluster does not move",
        ),
        update_case(
            "mec-zone-immutable",
            "MecCluster",
            vec![("/spec/zone", json!("eu-west-1b"))],
            "zone is immutable: a cluster does not move",
        ),
        // HsnNetwork: cross-field CEL rules
        case(
            "net-dup-pools",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/1",
                json!({"name": "a", "sliceType": "URLLC"}),
            )],
            "edge pool names must be unique within a network",
        ),
        case(
            "net-dup-tenant-names",
            "HsnNetwork",
            vec![(
                "/spec/metering/tenants/1",
                json!({"name": "t1", "id": 2, "prefixes": ["10.21.0.0/16"]}),
            )],
            "tenant names must be unique within a network",
        ),
        case(
            "net-dup-tenant-ids",
            "HsnNetwork",
            vec![(
                "/spec/metering/tenants/1",
                json!({"name": "t2", "id": 1, "prefixes": ["10.21.0.0/16"]}),
            )],
            "tenant ids must be unique within a network",
        ),
        case(
            "net-bad-cidr",
            "HsnNetwork",
            vec![("/spec/metering/tenants/0/prefixes/0", json!("10.20.0.0/33"))],
            "must be an IPv4 or IPv6 prefix in CIDR notation",
        ),
        case(
            "net-not-cidr",
            "HsnNetwork",
            vec![("/spec/metering/tenants/0/prefixes/0", json!("acme-video"))],
            "must be an IPv4 or IPv6 prefix in CIDR notation",
        ),
        case(
            "net-host-bits",
            "HsnNetwork",
            vec![(
                "/spec/metering/tenants/0/prefixes/1",
                json!("2001:db8:20::1/48"),
            )],
            "must be the network address with host bits zero",
        ),
        case(
            "net-heartbeat",
            "HsnNetwork",
            vec![(
                "/spec/routing",
                json!({"failover": {"heartbeatSeconds": 20, "leaseDurationSeconds": 15}}),
            )],
            "heartbeatSeconds must be shorter than leaseDurationSeconds",
        ),
        case(
            "net-selector-in-empty",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/0/nodeSelector",
                json!({"matchExpressions": [{"key": "k", "operator": "In"}]}),
            )],
            "operators In and NotIn need at least one value",
        ),
        case(
            "net-selector-exists-values",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/0/clusterSelector",
                json!({"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["x"]}]}),
            )],
            "Exists and DoesNotExist take no values",
        ),
        case(
            "net-name-too-long-for-member-namespaces",
            "HsnNetwork",
            vec![],
            "network name must be at most 40 characters",
        ),
        update_case(
            "net-epoch-immutable",
            "HsnNetwork",
            vec![("/spec/metering/epochSeconds", json!(120))],
            "epochSeconds is immutable",
        ),
        update_case(
            "net-storage-fixed",
            "HsnNetwork",
            vec![("/spec/superNodes/storage", json!({"size": "1Gi"}))],
            "superNodes.storage is fixed at creation",
        ),
        case(
            "net-storage-size",
            "HsnNetwork",
            vec![("/spec/superNodes/storage", json!({"size": "ten gigs"}))],
            "spec.superNodes.storage.size: Invalid value",
        ),
        case(
            "net-storage-class",
            "HsnNetwork",
            vec![(
                "/spec/superNodes/storage",
                json!({"storageClassName": "Fast SSD"}),
            )],
            "spec.superNodes.storage.storageClassName: Invalid value",
        ),
        update_case(
            "net-ledger-immutable",
            "HsnNetwork",
            vec![("/spec/metering/ledger/toleranceBytes", json!(1))],
            "metering.ledger is immutable",
        ),
        // HsnNetwork: enums and bounds
        case(
            "net-slice-enum",
            "HsnNetwork",
            vec![("/spec/edgePools/0/sliceType", json!("5G"))],
            "spec.edgePools[0].sliceType: Unsupported value: \"5G\": supported values: \"eMBB\", \"mMTC\", \"URLLC\"",
        ),
        case(
            "net-spread-enum",
            "HsnNetwork",
            vec![("/spec/superNodes/placement", json!({"spreadBy": "Planet"}))],
            "spec.superNodes.placement.spreadBy: Unsupported value: \"Planet\"",
        ),
        case(
            "net-datapath-enum",
            "HsnNetwork",
            vec![("/spec/routing", json!({"datapath": "DPDK"}))],
            "spec.routing.datapath: Unsupported value: \"DPDK\"",
        ),
        case(
            "net-operator-enum",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/0/nodeSelector",
                json!({"matchExpressions": [{"key": "k", "operator": "Like", "values": ["x"]}]}),
            )],
            "operator: Unsupported value: \"Like\"",
        ),
        case(
            "net-replicas-min",
            "HsnNetwork",
            vec![("/spec/superNodes/replicas", json!(0))],
            "spec.superNodes.replicas in body should be greater than or equal to 1",
        ),
        case(
            "net-replicas-max",
            "HsnNetwork",
            vec![("/spec/superNodes/replicas", json!(65))],
            "spec.superNodes.replicas in body should be less than or equal to 64",
        ),
        case(
            "net-max-per-cluster",
            "HsnNetwork",
            vec![("/spec/superNodes/placement", json!({"maxPerCluster": 0}))],
            "spec.superNodes.placement.maxPerCluster in body should be greater than or equal to 1",
        ),
        case(
            "net-epoch-min",
            "HsnNetwork",
            vec![("/spec/metering/epochSeconds", json!(5))],
            "spec.metering.epochSeconds in body should be greater than or equal to 10",
        ),
        case(
            "net-edges-per-super",
            "HsnNetwork",
            vec![("/spec/edgePools/0/maxEdgesPerSuperNode", json!(0))],
            "spec.edgePools[0].maxEdgesPerSuperNode in body should be greater than or equal to 1",
        ),
        case(
            "net-tolerance-bp",
            "HsnNetwork",
            vec![(
                "/spec/metering/ledger",
                json!({"toleranceBasisPoints": 10001}),
            )],
            "spec.metering.ledger.toleranceBasisPoints in body should be less than or equal to 10000",
        ),
        case(
            "net-tolerance-bytes",
            "HsnNetwork",
            vec![("/spec/metering/ledger", json!({"toleranceBytes": -1}))],
            "spec.metering.ledger.toleranceBytes in body should be greater than or equal to 0",
        ),
        case(
            "net-no-pools",
            "HsnNetwork",
            vec![("/spec/edgePools", json!([]))],
            "spec.edgePools in body should have at least 1 items",
        ),
        case(
            "net-pool-name",
            "HsnNetwork",
            vec![("/spec/edgePools/0/name", json!("Pool_1"))],
            "spec.edgePools[0].name in body should match",
        ),
        case(
            "net-tenant-id",
            "HsnNetwork",
            vec![("/spec/metering/tenants/0/id", json!(0))],
            "spec.metering.tenants[0].id in body should be greater than or equal to 1",
        ),
        // HsnNetwork: what the agents cannot do, names that make bad member objects
        case(
            "net-default-route-v4",
            "HsnNetwork",
            vec![("/spec/metering/tenants/0/prefixes/0", json!("0.0.0.0/0"))],
            "must not be a default route (0.0.0.0/0 or ::/0)",
        ),
        case(
            "net-default-route-v6",
            "HsnNetwork",
            vec![("/spec/metering/tenants/0/prefixes/1", json!("::/0"))],
            "must not be a default route (0.0.0.0/0 or ::/0)",
        ),
        case(
            "net-datapath-unknown",
            "HsnNetwork",
            vec![("/spec/routing", json!({"datapath": "DPDK"}))],
            "supported values: \"XDP\", \"TC\"",
        ),
        case(
            "net-image-space",
            "HsnNetwork",
            vec![(
                "/spec/superNodes/image",
                json!("ghcr.io/hsn-io/hsn agent:0.1.0"),
            )],
            "spec.superNodes.image: Invalid value: \"ghcr.io/hsn-io/hsn agent:0.1.0\": must be a container image reference",
        ),
        case(
            "net-image-uppercase",
            "HsnNetwork",
            vec![("/spec/superNodes/image", json!("ghcr.io/HSN/agent"))],
            "must be a container image reference",
        ),
        case(
            "net-image-scheme",
            "HsnNetwork",
            vec![("/spec/superNodes/image", json!("https://ghcr.io/hsn-agent"))],
            "must be a container image reference",
        ),
        case(
            "net-image-empty-tag",
            "HsnNetwork",
            vec![("/spec/superNodes/image", json!("hsn-agent:"))],
            "must be a container image reference",
        ),
        case(
            "net-image-short-digest",
            "HsnNetwork",
            vec![("/spec/superNodes/image", json!("hsn-agent@sha256:abc"))],
            "must be a container image reference",
        ),
        case(
            "net-name-dots",
            "HsnNetwork",
            vec![("/metadata/name", json!("net.with.dots"))],
            "network name must be a DNS label",
        ),
        // Bounds on every string, list and map, also of embedded Kubernetes types
        case(
            "net-image-too-long",
            "HsnNetwork",
            vec![("/spec/superNodes/image", json!("a".repeat(513)))],
            "spec.superNodes.image: Too long: may not be more than 512 bytes",
        ),
        case(
            "net-toleration-value",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/0/tolerations",
                json!([{"key": "k", "operator": "Equal", "value": "v".repeat(64)}]),
            )],
            "spec.edgePools[0].tolerations[0].value: Too long: may not be more than 63 bytes",
        ),
        case(
            "net-toleration-count",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/0/tolerations",
                json!(vec![json!({"key": "k", "operator": "Exists"}); 17]),
            )],
            "spec.edgePools[0].tolerations: Too many: 17: must have at most 16 items",
        ),
        case(
            "net-selector-key",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/0/nodeSelector",
                json!({"matchLabels": {"k".repeat(318): "v"}}),
            )],
            "spec.edgePools[0].nodeSelector.matchLabels: Invalid value: keys must be at most 317 characters",
        ),
        case(
            "net-selector-value",
            "HsnNetwork",
            vec![(
                "/spec/edgePools/0/nodeSelector",
                json!({"matchLabels": {"k": "not a label value"}}),
            )],
            "spec.edgePools[0].nodeSelector.matchLabels.k in body should match",
        ),
        case(
            "net-resources-count",
            "HsnNetwork",
            vec![(
                "/spec/superNodes/resources",
                json!({"limits": (0..17).map(|i| (format!("r{i}"), json!("1"))).collect::<serde_json::Map<_, _>>()}),
            )],
            "spec.superNodes.resources.limits: Too many: 17: must have at most 16 items",
        ),
        case(
            "net-quantity-length",
            "HsnNetwork",
            vec![(
                "/spec/superNodes/resources",
                json!({"requests": {"cpu": "1".repeat(65)}}),
            )],
            "spec.superNodes.resources.requests.cpu: Too long: may not be more than 64 bytes",
        ),
        case(
            "net-claims-count",
            "HsnNetwork",
            vec![(
                "/spec/superNodes/resources",
                json!({"claims": (0..9).map(|i| json!({"name": format!("c{i}")})).collect::<Vec<_>>()}),
            )],
            "spec.superNodes.resources.claims: Too many: 9: must have at most 8 items",
        ),
        // HsnNode
        case(
            "node-super-assigned",
            "HsnNode",
            vec![("/spec/role", json!("Super"))],
            "only edge nodes have an assigned super node",
        ),
        case(
            "node-role-enum",
            "HsnNode",
            vec![("/spec/role", json!("Relay"))],
            "spec.role: Unsupported value: \"Relay\"",
        ),
        update_case(
            "node-role-immutable",
            "HsnNode",
            vec![
                ("/spec/role", json!("Super")),
                ("/spec/assignedSuperNode", Value::Null),
            ],
            "role is immutable",
        ),
        update_case(
            "node-cluster-immutable",
            "HsnNode",
            vec![("/spec/cluster", json!("other"))],
            "cluster is immutable",
        ),
        update_case(
            "node-name-immutable",
            "HsnNode",
            vec![("/spec/nodeName", json!("node-2"))],
            "nodeName is immutable",
        ),
        update_case(
            "node-network-immutable",
            "HsnNode",
            vec![("/spec/network", json!("other"))],
            "network is immutable",
        ),
    ]
}
