//! The agents' workloads: the super-node StatefulSet and Service, one edge DaemonSet per pool.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HostPathVolumeSource,
    NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity,
    PodSecurityContext, PodSpec, PodTemplateSpec, PreferredSchedulingTerm, SecurityContext,
    Service, ServicePort, ServiceSpec, Toleration, Volume, VolumeMount, VolumeResourceRequirements,
    WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{
    MemberObject, POOL_LABEL, ROLE_LABEL, ROUTES_CONFIGMAP, Renderer, STATE_VOLUME,
    SUPER_GRPC_PORT, SUPER_NODE, agent_identity, edge_daemonset, ledger,
};
use hsn_api::cluster::EDGE_CAPABLE_LABEL;
use hsn_core::Role;

use hsn_core::ports::{EDGE_METRICS as EDGE_METRICS_PORT, SUPER_METRICS as SUPER_METRICS_PORT};

/// The super-node StatefulSet and the Service in front of its gRPC port. Each pod runs the
/// agent and the ledger (`hsn-ledger node`), both with the super node's key from the
/// identity Secret; the agent ships its observations to the ledger beside it and copies
/// the ledger ConfigMap's genesis and peers to it as soon as they change.
pub(super) fn super_nodes(render: &Renderer<'_>, replicas: u32) -> Vec<MemberObject> {
    let selector = selector_labels(render, "super", None);
    let spec = &render.network.spec.super_nodes;
    let mut container = agent_container(render, &spec.image, "super");
    container.resources = spec.resources.clone();
    container.args.get_or_insert_with(Vec::new).extend([
        "--identity-file".into(),
        format!("{}/$(POD_NAME)", ledger::IDENTITY_DIR),
        "--ledger-endpoint".into(),
        ledger::local_endpoint(render),
        "--ledger-relay-dir".into(),
        ledger::RELAY_DIR.into(),
    ]);
    container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .extend([ledger::identity_mount(), ledger::relay_mount(false)]);
    let ledger_container = ledger::container(
        &spec.ledger_image,
        vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_IP", "status.podIP"),
        ],
        spec.ledger_tls,
    );
    let mut template = pod_template(
        render,
        Role::Super,
        &selector,
        vec![container, ledger_container],
        ledger::volumes(spec.ledger_tls),
        away_from_edges(render),
        Vec::new(),
    );
    let claims = spec.storage.as_ref().map(|storage| {
        // The pods' "state" volume is then each one's claim, not the node's directory.
        if let Some(volumes) = template.spec.as_mut().and_then(|p| p.volumes.as_mut()) {
            volumes.retain(|v| v.name != STATE_VOLUME);
        }
        vec![state_claim(render, storage)]
    });
    if let Some(pod) = template.spec.as_mut() {
        pod.init_containers = Some(vec![ledger::state_owner(
            &spec.ledger_image,
            vec![field_env("POD_NAME", "metadata.name")],
        )]);
        // The Secrets the ledger reads (its seed, its TLS key) are its group's.
        pod.security_context = Some(PodSecurityContext {
            fs_group: Some(ledger::LEDGER_USER),
            ..Default::default()
        });
    }
    let statefulset = StatefulSet {
        metadata: render.meta(SUPER_NODE),
        spec: Some(StatefulSetSpec {
            replicas: Some(i32::try_from(replicas).unwrap_or(i32::MAX)),
            service_name: Some(SUPER_NODE.into()),
            // Super nodes are independent peers: start and replace them in parallel.
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template,
            volume_claim_templates: claims,
            // A super node scaled away keeps its claim (its chain data, its unshipped
            // observations) should its ordinal return; the network's namespace takes them
            // with it when the network is deleted.
            persistent_volume_claim_retention_policy: spec.storage.as_ref().map(|_| {
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Delete".into()),
                    when_scaled: Some("Retain".into()),
                }
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let service = Service {
        metadata: render.meta(SUPER_NODE),
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some("grpc".into()),
                port: SUPER_GRPC_PORT,
                target_port: Some(IntOrString::String("grpc".into())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    vec![render.object(&statefulset), render.object(&service)]
}

/// The DaemonSet of one edge pool, pinned to exactly the nodes the plan chose for it.
pub(super) fn edge_pool(render: &Renderer<'_>, pool: &str, nodes: &[String]) -> MemberObject {
    let selector = selector_labels(render, "edge", Some(pool));
    let spec = render
        .network
        .spec
        .edge_pools
        .iter()
        .find(|p| p.name == pool);
    let tolerations = spec.map(|p| p.tolerations.clone()).unwrap_or_default();
    let mut container = agent_container(render, &render.network.spec.super_nodes.image, "edge");
    container
        .args
        .get_or_insert_with(Vec::new)
        .extend(["--pool".into(), pool.into()]);
    // The plan already resolved selectors, readiness and pools that overlap; pinning by
    // node name keeps the DaemonSet and the plan from ever disagreeing.
    let affinity = Affinity {
        node_affinity: Some(NodeAffinity {
            required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                // metadata.name field selectors take one value each; terms are ORed.
                node_selector_terms: nodes
                    .iter()
                    .map(|node| NodeSelectorTerm {
                        match_fields: Some(vec![NodeSelectorRequirement {
                            key: "metadata.name".into(),
                            operator: "In".into(),
                            values: Some(vec![node.clone()]),
                        }]),
                        ..Default::default()
                    })
                    .collect(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    render.object(&DaemonSet {
        metadata: render.meta(&edge_daemonset(pool)),
        spec: Some(DaemonSetSpec {
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template: pod_template(
                render,
                Role::Edge,
                &selector,
                vec![container],
                Vec::new(),
                affinity,
                tolerations,
            ),
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDaemonSet {
                    max_unavailable: Some(IntOrString::String("10%".into())),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn selector_labels(
    render: &Renderer<'_>,
    role: &str,
    pool: Option<&str>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (
            super::NETWORK_UID_LABEL.to_string(),
            render.labels[super::NETWORK_UID_LABEL].clone(),
        ),
        (ROLE_LABEL.to_string(), role.to_string()),
    ]);
    if let Some(pool) = pool {
        labels.insert(POOL_LABEL.to_string(), pool.to_string());
    }
    labels
}

/// The claim template of a super node's state (`spec.superNodes.storage`).
fn state_claim(
    render: &Renderer<'_>,
    storage: &hsn_api::network::SuperNodeStorage,
) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(STATE_VOLUME.into()),
            labels: Some(render.labels.clone()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(storage.size.clone()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Required anti-affinity to the agent pods of every other network, in any namespace: two
/// networks' agents on one node would fight over its host ports and its XDP hook. It binds
/// both ways (the scheduler honours the anti-affinity of pods already placed), so a super
/// node never lands where another network's agent runs, nor another network's agent where
/// a super node of this one runs.
fn apart_from_other_networks(render: &Renderer<'_>) -> PodAntiAffinity {
    let uid = render.labels[super::NETWORK_UID_LABEL].clone();
    let requirement =
        |key: &str, operator: &str, values: Option<Vec<String>>| LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values,
        };
    PodAntiAffinity {
        required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_expressions: Some(vec![
                    requirement(ROLE_LABEL, "Exists", None),
                    requirement(super::NETWORK_UID_LABEL, "NotIn", Some(vec![uid])),
                ]),
                ..Default::default()
            }),
            // Every namespace: each network has its own.
            namespace_selector: Some(LabelSelector::default()),
            topology_key: HOSTNAME_LABEL.into(),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// Super nodes prefer nodes that are not edge-capable (`hsn.io/edge=true`, what edge pools
/// usually select), and nodes without this network's edge agents: one agent per node (the
/// XDP hook). Where a super node lands on an edge's node anyway, the plan takes the edge off
/// it (the edge yields: the scheduler, not the plan, places super nodes). Preferences, not
/// requirements: a pool that selects every node must not leave the super nodes unplaced.
/// The label comes first because it is there before any pod: when a network is created,
/// its super pods are often placed before its edge pods exist.
fn away_from_edges(render: &Renderer<'_>) -> Affinity {
    let selector = selector_labels(render, "edge", None);
    Affinity {
        node_affinity: Some(NodeAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                PreferredSchedulingTerm {
                    weight: 100,
                    preference: NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: EDGE_CAPABLE_LABEL.into(),
                            operator: "NotIn".into(),
                            values: Some(vec!["true".into()]),
                        }]),
                        ..Default::default()
                    },
                },
            ]),
            ..Default::default()
        }),
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: Some(selector),
                            ..Default::default()
                        }),
                        topology_key: HOSTNAME_LABEL.into(),
                        ..Default::default()
                    },
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The node label that names each node.
const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

fn pod_template(
    render: &Renderer<'_>,
    role: Role,
    selector: &BTreeMap<String, String>,
    containers: Vec<Container>,
    extra_volumes: Vec<Volume>,
    mut affinity: Affinity,
    tolerations: Vec<Toleration>,
) -> PodTemplateSpec {
    let own = affinity.pod_anti_affinity.take().unwrap_or_default();
    affinity.pod_anti_affinity = Some(PodAntiAffinity {
        preferred_during_scheduling_ignored_during_execution: own
            .preferred_during_scheduling_ignored_during_execution,
        ..apart_from_other_networks(render)
    });
    let mut labels = render.labels.clone();
    labels.extend(selector.clone());
    PodTemplateSpec {
        metadata: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            labels: Some(labels),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            // Each role its own ServiceAccount: its token renews only that role's Leases.
            service_account_name: Some(agent_identity(role).into()),
            // XDP attaches to the node's own interfaces.
            host_network: Some(true),
            // An agent the network no longer places on its node closes the epoch open when
            // it is stopped, at its end, and ships it before it removes its programs.
            termination_grace_period_seconds: Some(termination_grace_seconds(render)),
            dns_policy: Some("ClusterFirstWithHostNet".into()),
            affinity: Some(affinity),
            tolerations: (!tolerations.is_empty()).then_some(tolerations),
            containers,
            volumes: Some(
                [
                    host_path("bpffs", "/sys/fs/bpf", "DirectoryOrCreate"),
                    host_path(
                        STATE_VOLUME,
                        &format!("/var/lib/hsn/{}", render.name),
                        "DirectoryOrCreate",
                    ),
                ]
                .into_iter()
                .chain(extra_volumes)
                .chain(ledger::agent_tls(render).0)
                .collect(),
            ),
            ..Default::default()
        }),
    }
}

/// The agents' termination grace period: the epoch and the drain past its end
/// (`hsn-agent`'s shutdown; a stop that is a restart takes well under a second).
fn termination_grace_seconds(render: &Renderer<'_>) -> i64 {
    let epoch = i64::from(render.network.spec.metering.epoch_seconds.max(1));
    epoch + i64::try_from(hsn_core::epoch::DRAIN_SECONDS).unwrap_or(i64::MAX - epoch)
}

fn host_path(name: &str, path: &str, type_: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: Some(type_.into()),
        }),
        ..Default::default()
    }
}

/// An environment variable from the pod's own fields (downward API).
fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn agent_container(render: &Renderer<'_>, image: &str, role: &str) -> Container {
    let failover = &render.network.spec.routing.failover;
    let mut args = vec![
        "--role".into(),
        role.into(),
        "--network".into(),
        render.name.clone(),
        "--routes-configmap".into(),
        ROUTES_CONFIGMAP.into(),
        "--datapath".into(),
        datapath_flag(render).into(),
        // The failover settings: how often the agent renews its Lease, and how long the
        // Lease stands for it (the operator re-homes edges of a super whose Lease lapsed).
        "--heartbeat-seconds".into(),
        failover.heartbeat_seconds.to_string(),
        "--lease-seconds".into(),
        failover.lease_duration_seconds.to_string(),
    ];
    // Both roles use the host network and may share a node: a super node serves its
    // metrics on the next port, and each agent gets its own state and pin directories
    // (its identity key, spool and pinned maps are its alone). A super node's are named
    // after its pod, stable in a StatefulSet; an edge's after its role (one per node).
    let (metrics_port, sub_path, sub_path_expr) = match role {
        "super" => (SUPER_METRICS_PORT, None, Some("$(POD_NAME)".to_string())),
        _ => (EDGE_METRICS_PORT, Some("edge".to_string()), None),
    };
    args.extend(["--metrics-addr".into(), format!("0.0.0.0:{metrics_port}")]);
    let (_, tls_mounts, tls_args) = ledger::agent_tls(render);
    args.extend(tls_args);
    Container {
        name: "agent".into(),
        image: Some(image.into()),
        args: Some(args),
        // Named for the chart's PodMonitor (`metrics.podMonitor`).
        ports: Some(vec![ContainerPort {
            name: Some("metrics".into()),
            container_port: i32::from(metrics_port),
            ..Default::default()
        }]),
        env: Some(vec![
            field_env("NODE_NAME", "spec.nodeName"),
            // The agent holds its Lease as this pod (name and UID), which the operator
            // checks against the pods it placed before trusting what the Lease says.
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_UID", "metadata.uid"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
            field_env("POD_IP", "status.podIP"),
        ]),
        // Loading and attaching eBPF needs BPF, NET_ADMIN (XDP/TC attach) and PERFMON
        // (map and helper access); nothing else, and never privileged.
        security_context: Some(SecurityContext {
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                add: Some(vec!["BPF".into(), "NET_ADMIN".into(), "PERFMON".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            ..Default::default()
        }),
        volume_mounts: Some(
            vec![
                VolumeMount {
                    name: "bpffs".into(),
                    mount_path: "/sys/fs/bpf".into(),
                    sub_path: sub_path.clone(),
                    sub_path_expr: sub_path_expr.clone(),
                    ..Default::default()
                },
                VolumeMount {
                    name: STATE_VOLUME.into(),
                    mount_path: "/var/lib/hsn".into(),
                    sub_path,
                    sub_path_expr,
                    ..Default::default()
                },
            ]
            .into_iter()
            .chain(tls_mounts)
            .collect(),
        ),
        ..Default::default()
    }
}

fn datapath_flag(render: &Renderer<'_>) -> &'static str {
    match render.network.spec.routing.datapath {
        hsn_api::network::DatapathMode::Xdp => "xdp",
        hsn_api::network::DatapathMode::Tc => "tc",
    }
}
