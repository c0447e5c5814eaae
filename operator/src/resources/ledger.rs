//! The network's chain in a member cluster: the super nodes' identities (one Secret, an
//! ed25519 seed per StatefulSet ordinal, so a super node keeps its key wherever it is
//! rescheduled), the `hsn-ledger` ConfigMap (the network's genesis and the validators' P2P
//! addresses, the last registry change, whether the chain has history) and the ledger container of each super-node pod (`hsn-ledger node`: the
//! replica and its CometBFT node). A super node's seed is its agent's key, its ledger key,
//! its CometBFT validator key and its P2P node key.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use ed25519_dalek::SigningKey;
use hsn_api::node::lease;
use hsn_core::SuperId;
use hsn_core::ports;
use hsn_ledger_api::genesis::node_id;
use hsn_ledger_api::keys::NodeKey;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, Secret, SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};

use super::routes::Peers;
use super::{Renderer, SUPER_GRPC_PORT, SUPER_NODE};
use crate::plan::Plan;

/// The Secret of the super nodes' seeds in a member: key `<pod name>`, a hex seed.
pub const IDENTITY_SECRET: &str = "hsn-super-identities";
pub use hsn_api::routes::{GENESIS_KEY, HISTORY_KEY, LEDGER_CONFIGMAP, PEERS_KEY, REGISTRY_KEY};
/// Where the identities are mounted in both containers of a super-node pod.
pub const IDENTITY_DIR: &str = "/etc/hsn/identity";
/// Where the ledger ConfigMap is mounted.
const LEDGER_CONFIG_DIR: &str = "/etc/hsn/ledger";
/// Where the super agent copies the ledger ConfigMap's genesis and peers for the ledger
/// (a volume of the pod, both containers).
pub const RELAY_DIR: &str = "/run/hsn/ledger-relay";
/// The Secret of the super nodes' ledger certificates in a member: `<pod>.crt`, `<pod>.key`.
pub const TLS_SECRET: &str = "hsn-ledger-tls";
/// The ConfigMap of the network's CA certificate (`ca.crt`), in every member of the network.
pub const CA_CONFIGMAP: &str = "hsn-ledger-ca";
/// Key of the CA certificate (PEM) in [`CA_CONFIGMAP`] and the hub's CA Secret.
pub const CA_CERT_KEY: &str = "ca.crt";
/// Where the ledger certificates are mounted in the ledger container.
const TLS_DIR: &str = "/etc/hsn/tls";
/// Where the CA ConfigMap is mounted in every agent container.
const CA_DIR: &str = "/etc/hsn/ledger-ca";
/// The user (and group) the ledger container runs as: the ledger image's own (`USER` in
/// `ledger/Dockerfile`, which `hack/images.sh` follows); the pod's `fsGroup`, so the
/// Secrets it reads are its group's.
pub const LEDGER_USER: i64 = 65532;
/// Where the ledger keeps its store and CometBFT home, in the pod's state directory.
const LEDGER_STATE_DIR: &str = "/var/lib/hsn/ledger";

/// The name every ledger of `network` carries in its certificate and agents check.
pub fn ledger_server_name(network: &str) -> String {
    format!("ledger.{network}.hsn.internal")
}

/// A ledger's server certificate and its key, PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerCert {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

/// TLS between agents and ledgers: the network's CA certificate, and per member cluster the
/// certificates of its super nodes by ordinal (a cluster missing here is one whose Secret
/// could not be read: nothing of it is rendered).
#[derive(Clone, Debug, Default)]
pub struct LedgerTls {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// Per member cluster, by ordinal.
    pub certs: BTreeMap<String, BTreeMap<u32, ServerCert>>,
}

impl LedgerTls {
    /// Key of a super node's certificate in [`TLS_SECRET`].
    pub fn cert_key(pod: &str) -> String {
        format!("{pod}.crt")
    }

    /// Key of a super node's private key in [`TLS_SECRET`].
    pub fn key_key(pod: &str) -> String {
        format!("{pod}.key")
    }

    /// The data of [`TLS_SECRET`] holding `certs` (by ordinal).
    pub fn secret_data(certs: &BTreeMap<u32, ServerCert>) -> BTreeMap<String, ByteString> {
        let mut data = BTreeMap::new();
        for (ordinal, cert) in certs {
            let pod = super_pod(*ordinal);
            let pem = |text: &str| ByteString(text.as_bytes().to_vec());
            data.insert(Self::cert_key(&pod), pem(&cert.cert_pem));
            data.insert(Self::key_key(&pod), pem(&cert.key_pem));
        }
        data
    }
}

/// The pod name of a super node: the StatefulSet's name and its ordinal.
pub fn super_pod(ordinal: u32) -> String {
    format!("{SUPER_NODE}-{ordinal}")
}

/// What the chain stage knows for rendering: every super node's seed (read from the
/// members, or new for ordinals that had none) and the genesis once the hub holds one.
#[derive(Clone, Debug, Default)]
pub struct Chain {
    /// Per member cluster, the seeds by ordinal. A cluster missing here is one whose
    /// Secret could not be read: nothing of it is rendered, so nothing is overwritten.
    pub seeds: BTreeMap<String, BTreeMap<u32, SigningKey>>,
    /// The network's genesis.json, fixed once written.
    pub genesis: Option<String>,
    /// The last registry change published, once there is one.
    pub registry: Option<String>,
    /// Once the chain has committed a block: what the operator saw then (kept for good).
    pub history: Option<String>,
    /// Certificates, when the network's ledgers speak TLS (`superNodes.ledgerTls`).
    pub tls: Option<LedgerTls>,
}

impl Chain {
    /// The public key of a super node, when its seed is known.
    pub fn key(&self, id: &SuperId) -> Option<NodeKey> {
        self.seeds
            .get(&id.cluster)?
            .get(&id.ordinal)
            .map(NodeKey::of)
    }
}

/// The identity Secret of `cluster`'s super nodes, when its seeds are known.
pub(super) fn identity_secret(
    render: &Renderer<'_>,
    chain: &Chain,
    cluster: &str,
) -> Option<Secret> {
    let seeds = chain.seeds.get(cluster)?;
    Some(Secret {
        metadata: render.meta(IDENTITY_SECRET),
        type_: Some("Opaque".into()),
        data: Some(
            seeds
                .iter()
                .map(|(ordinal, key)| {
                    (
                        super_pod(*ordinal),
                        ByteString(format!("{}\n", hex::encode(key.to_bytes())).into_bytes()),
                    )
                })
                .collect(),
        ),
        ..Default::default()
    })
}

/// The Secret of `cluster`'s super nodes' ledger certificates, when they are known.
pub(super) fn tls_secret(render: &Renderer<'_>, chain: &Chain, cluster: &str) -> Option<Secret> {
    let certs = chain.tls.as_ref()?.certs.get(cluster)?;
    Some(Secret {
        metadata: render.meta(TLS_SECRET),
        type_: Some("Opaque".into()),
        data: Some(LedgerTls::secret_data(certs)),
        ..Default::default()
    })
}

/// The CA ConfigMap every agent of the network mounts, when the network has a CA.
pub(super) fn ca_config_map(render: &Renderer<'_>, chain: &Chain) -> Option<ConfigMap> {
    let tls = chain.tls.as_ref()?;
    Some(ConfigMap {
        metadata: render.meta(CA_CONFIGMAP),
        data: Some(BTreeMap::from([(
            CA_CERT_KEY.to_owned(),
            tls.ca_pem.clone(),
        )])),
        ..Default::default()
    })
}

/// The agent's ledger TLS: its volume, its mount and its flags (`--ledger-ca`, the name to
/// check); empty when the network's ledgers speak plain text.
pub(super) fn agent_tls(render: &Renderer<'_>) -> (Vec<Volume>, Vec<VolumeMount>, Vec<String>) {
    if !render.network.spec.super_nodes.ledger_tls {
        return (Vec::new(), Vec::new(), Vec::new());
    }
    let volume = Volume {
        name: "ledger-ca".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: CA_CONFIGMAP.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mount = VolumeMount {
        name: "ledger-ca".into(),
        mount_path: CA_DIR.into(),
        read_only: Some(true),
        ..Default::default()
    };
    let args = vec![
        "--ledger-ca".into(),
        format!("{CA_DIR}/{CA_CERT_KEY}"),
        "--ledger-tls-domain".into(),
        ledger_server_name(&render.name),
    ];
    (vec![volume], vec![mount], args)
}

/// The super agent's ledger: the one in its pod, over TLS unless the network turned it off.
pub(super) fn local_endpoint(render: &Renderer<'_>) -> String {
    let scheme = if render.network.spec.super_nodes.ledger_tls {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://127.0.0.1:{}", ports::LEDGER)
}

/// The validators' P2P addresses: every live super node whose key is known and whose
/// agent advertised its address. Once the chain has history, only those whose replica
/// reports a committed block: a validator without its data may sync from them, and where
/// none holds the chain any more (every validator lost its data at once) the list is empty,
/// so none begins the chain again from the genesis (`hsn-ledger node --history-file` waits).
pub fn peers_file(plan: &Plan, chain: &Chain, peers: &Peers) -> String {
    let mut out = String::new();
    for id in &plan.live_supers {
        let Some(key) = chain.key(id) else { continue };
        let Some(address) = peers
            .get(&id.cluster)
            .and_then(|l| l.get(&lease::super_lease(id.ordinal)))
            .filter(|p| chain.history.is_none() || p.holds_chain)
            .and_then(|p| p.address)
        else {
            continue;
        };
        let at = SocketAddr::new(address, ports::COMETBFT_P2P);
        out.push_str(&format!("{}@{at}\n", node_id(&key)));
    }
    out
}

/// The ledger ConfigMap, once the genesis exists.
pub(super) fn config_map(
    render: &Renderer<'_>,
    plan: &Plan,
    chain: &Chain,
    peers: &Peers,
) -> Option<ConfigMap> {
    let genesis = chain.genesis.as_ref()?;
    let mut data = BTreeMap::from([
        (GENESIS_KEY.to_string(), genesis.clone()),
        (PEERS_KEY.to_string(), peers_file(plan, chain, peers)),
    ]);
    if let Some(tx) = &chain.registry {
        data.insert(REGISTRY_KEY.to_string(), format!("{tx}\n"));
    }
    if let Some(history) = &chain.history {
        data.insert(HISTORY_KEY.to_string(), format!("{history}\n"));
    }
    Some(ConfigMap {
        metadata: render.meta(LEDGER_CONFIGMAP),
        data: Some(data),
        ..Default::default()
    })
}

/// The volumes the ledger container (and the agent, for its identity) mounts: the seeds
/// readable by the pod's group only, the ledger ConfigMap, the certificates with TLS.
pub(super) fn volumes(tls: bool) -> Vec<Volume> {
    let mut volumes = vec![
        Volume {
            name: "identity".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(IDENTITY_SECRET.into()),
                default_mode: Some(0o440),
                ..Default::default()
            }),
            ..Default::default()
        },
        // Optional: the operator writes it once every super node's key is stored, and a
        // pod must not wait on the kubelet's mount retries for it (their backoff grows to
        // two minutes): the ledger waits for the genesis, which the agent relays at once.
        Volume {
            name: "ledger-config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: LEDGER_CONFIGMAP.into(),
                optional: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "ledger-relay".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    ];
    if tls {
        volumes.push(Volume {
            name: "ledger-tls".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(TLS_SECRET.into()),
                // The ledger reads its key as the pod's group (`fsGroup`).
                default_mode: Some(0o440),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    volumes
}

/// The identity mount of both containers.
pub(super) fn identity_mount() -> VolumeMount {
    VolumeMount {
        name: "identity".into(),
        mount_path: IDENTITY_DIR.into(),
        read_only: Some(true),
        ..Default::default()
    }
}

/// The relay directory's mount: the agent writes, the ledger reads.
pub(super) fn relay_mount(read_only: bool) -> VolumeMount {
    VolumeMount {
        name: "ledger-relay".into(),
        mount_path: RELAY_DIR.into(),
        read_only: Some(read_only),
        ..Default::default()
    }
}

/// `hsn-ledger node` in a super-node pod: its store and CometBFT home in the pod's state
/// directory on the node, its key from the identity Secret, genesis and peers from the
/// ledger ConfigMap or, fresher, the agent's copies of them; gRPC for the agents on the node's address, CometBFT's P2P for the
/// other validators, `/metrics` of both.
pub(super) fn container(image: &str, env: Vec<EnvVar>, tls: bool) -> Container {
    let mut args: Vec<String> = vec![
        "node".into(),
        "--db".into(),
        format!("{LEDGER_STATE_DIR}/ledger.redb"),
        "--cometbft-home".into(),
        format!("{LEDGER_STATE_DIR}/cometbft"),
        "--key-file".into(),
        format!("{IDENTITY_DIR}/$(POD_NAME)"),
        "--genesis".into(),
        format!("{LEDGER_CONFIG_DIR}/{GENESIS_KEY}"),
        "--peers-file".into(),
        format!("{LEDGER_CONFIG_DIR}/{PEERS_KEY}"),
        "--registry-file".into(),
        format!("{LEDGER_CONFIG_DIR}/{REGISTRY_KEY}"),
        "--history-file".into(),
        format!("{LEDGER_CONFIG_DIR}/{HISTORY_KEY}"),
        "--relayed-config".into(),
        RELAY_DIR.into(),
        "--p2p-external".into(),
        format!("$(POD_IP):{}", ports::COMETBFT_P2P),
        "--listen".into(),
        SocketAddr::new(IpAddr::from([0, 0, 0, 0]), ports::LEDGER).to_string(),
        "--metrics-listen".into(),
        SocketAddr::new(IpAddr::from([0, 0, 0, 0]), ports::LEDGER_METRICS).to_string(),
        "--cometbft-metrics".into(),
        SocketAddr::new(IpAddr::from([0, 0, 0, 0]), ports::COMETBFT_METRICS).to_string(),
    ];
    let mut mounts = vec![
        state_mount(),
        identity_mount(),
        VolumeMount {
            name: "ledger-config".into(),
            mount_path: LEDGER_CONFIG_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        },
        relay_mount(true),
        // CometBFT writes temporary files; the root filesystem is read-only.
        VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        },
    ];
    if tls {
        args.extend([
            "--tls-cert".into(),
            format!("{TLS_DIR}/$(POD_NAME).crt"),
            "--tls-key".into(),
            format!("{TLS_DIR}/$(POD_NAME).key"),
        ]);
        mounts.push(VolumeMount {
            name: "ledger-tls".into(),
            mount_path: TLS_DIR.into(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    let port = |name: &str, port: u16| ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(port),
        ..Default::default()
    };
    Container {
        name: "ledger".into(),
        image: Some(image.into()),
        args: Some(args),
        env: Some(env),
        ports: Some(vec![
            ContainerPort {
                name: Some("grpc".into()),
                container_port: SUPER_GRPC_PORT,
                ..Default::default()
            },
            port("p2p", ports::COMETBFT_P2P),
            port("ledger-metrics", ports::LEDGER_METRICS),
            port("comet-metrics", ports::COMETBFT_METRICS),
        ]),
        // Its own user, without any capability: it serves gRPC and CometBFT's P2P on the
        // node's network, and writes only its state directory, which the init container
        // ([`state_owner`]) hands to it.
        security_context: Some(SecurityContext {
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_user: Some(LEDGER_USER),
            run_as_group: Some(LEDGER_USER),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

/// The ledger's state directory: in the pod's state volume (the node's directory for the network,
/// or the super node's claim), under the pod's name.
fn state_mount() -> VolumeMount {
    VolumeMount {
        name: super::STATE_VOLUME.into(),
        mount_path: "/var/lib/hsn".into(),
        sub_path_expr: Some("$(POD_NAME)".into()),
        ..Default::default()
    }
}

/// The super pod's init container: creates the ledger's state directory on the node and
/// hands it (with whatever an older release wrote there as root) to [`LEDGER_USER`]. A
/// hostPath is the kubelet's, owned by root, and no `fsGroup` reaches it; this is the one
/// step that needs root, with `CAP_CHOWN` and nothing else, before the ledger starts.
pub(super) fn state_owner(image: &str, env: Vec<EnvVar>) -> Container {
    Container {
        name: "ledger-state".into(),
        image: Some(image.into()),
        args: Some(vec![
            "own-state".into(),
            "--dir".into(),
            LEDGER_STATE_DIR.into(),
            "--owner".into(),
            format!("{LEDGER_USER}:{LEDGER_USER}"),
        ]),
        env: Some(env),
        security_context: Some(SecurityContext {
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_user: Some(0),
            capabilities: Some(Capabilities {
                add: Some(vec!["CHOWN".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            ..Default::default()
        }),
        volume_mounts: Some(vec![state_mount()]),
        ..Default::default()
    }
}
