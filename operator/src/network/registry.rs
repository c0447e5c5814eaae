//! The network's key registry follows the plan: its super nodes (the validators) are the
//! planned ones whose keys are stored, its edges every edge whose agent published a key in
//! its Lease (trusted only from the pod the operator placed), named by their HsnNode. An
//! edge once registered stays registered, so records it spooled while cut off are still
//! taken; a super node that leaves the plan stays registered, retired: its observations
//! still count, it is no longer a validator. When that set changes, the operator signs a replacement (the whole registry, the
//! next nonce of its own count) with the network's administrator key, keeps it in the
//! chain Secret, and publishes it in every member's ledger ConfigMap, where each super
//! node's ledger reads it and hands it to the chain.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use hsn_api::HsnNetwork;
use hsn_core::Role;
use hsn_ledger_api::genesis::AppState;
use hsn_ledger_api::keys::{NodeKey, RegisteredKey};
use hsn_ledger_api::registry::{sign_replacement, transaction};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde::{Deserialize, Serialize};

use super::Error;
use super::fetch::Fetched;
use super::nodes::{edge_node_name, super_node_name};
use crate::plan::Plan;
use crate::resources::Chain;

/// Key of the last published registry (nonce and nodes, JSON) in the chain Secret.
pub const PUBLISHED_KEY: &str = "registry.json";
/// Key of the last published registry change (the signed transaction, hex).
pub const TRANSACTION_KEY: &str = "registry.tx";

/// What the operator last published.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Published {
    nonce: u64,
    nodes: Vec<RegisteredKey>,
}

/// The registry the plan wants, in key order, each key once: the planned super nodes whose
/// keys are known, the edges whose agents published a valid key, and the edges of `before`.
pub fn desired(
    network: &HsnNetwork,
    plan: &Plan,
    chain: &Chain,
    fetched: &Fetched,
    before: &[RegisteredKey],
) -> Vec<RegisteredKey> {
    let name = network.name_any();
    let mut by_key: BTreeMap<NodeKey, RegisteredKey> = BTreeMap::new();
    let mut add = |node: RegisteredKey| {
        // A key named twice keeps its first (super before edge): the chain refuses a
        // registry with one key twice.
        by_key.entry(node.key).or_insert(node);
    };
    for id in plan.supers() {
        if let Some(key) = chain.key(&id) {
            add(RegisteredKey {
                role: Role::Super,
                key,
                name: super_node_name(&name, &id),
                retired: false,
            });
        }
    }
    for (cluster, leases) in fetched.peers() {
        for (lease, peer) in leases {
            let Some(node) = hsn_api::node::lease::edge_node_of(&lease) else {
                continue;
            };
            let Some(key) = peer
                .public_key
                .as_deref()
                .and_then(|k| k.parse::<NodeKey>().ok())
            else {
                continue;
            };
            if key.verifying_key().is_ok() {
                add(RegisteredKey {
                    role: Role::Edge,
                    key,
                    name: edge_node_name(&name, &cluster, node),
                    retired: false,
                });
            }
        }
    }
    // What was registered stays: edges (records they spooled while cut off are still
    // taken) and supers that left the plan, retired (the observations they made while
    // serving stay valid, shipped late or from a member that stopped answering; they are no
    // longer validators).
    for node in before {
        add(RegisteredKey {
            retired: node.role == Role::Super,
            ..node.clone()
        });
    }
    by_key.into_values().collect()
}

/// Publishes a new registry change when the desired registry differs from the last one
/// (the genesis's before any), signed by `admin` (the chain Secret's); returns the change
/// to hand to the members, if any.
pub async fn follow(
    network: &HsnNetwork,
    api: &Api<Secret>,
    secret: &Secret,
    admin: Option<SigningKey>,
    plan: &Plan,
    chain: &Chain,
    fetched: &Fetched,
) -> Result<Option<String>, Error> {
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
    };
    let published: Option<Published> = text(PUBLISHED_KEY)
        .map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| Error::Chain(format!("{PUBLISHED_KEY}: {e}")))?;
    let current_tx = text(TRANSACTION_KEY);
    let before = match &published {
        Some(p) => p.nodes.clone(),
        None => genesis_nodes(chain)?,
    };
    let want = desired(network, plan, chain, fetched, &before);
    let mut sorted_before = before.clone();
    sorted_before.sort_by_key(|n| n.key);
    if want == sorted_before || !want.iter().any(|n| n.role == Role::Super) {
        return Ok(current_tx);
    }
    let admin =
        admin.ok_or_else(|| Error::Chain("the chain Secret holds no administrator key".into()))?;
    let nonce = published.map_or(1, |p| p.nonce + 1);
    let change = sign_replacement(&network.name_any(), nonce, &want, &admin);
    let tx = hex::encode(transaction(change));
    let next = Published { nonce, nodes: want };
    let patch = serde_json::json!({"stringData": {
        PUBLISHED_KEY: serde_json::to_string(&next).expect("JSON serialises"),
        TRANSACTION_KEY: tx,
    }});
    api.patch(
        &secret.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(Error::Hub)?;
    let (supers, edges) = next.nodes.iter().fold((0, 0), |(s, e), n| match n.role {
        Role::Super => (s + 1, e),
        Role::Edge => (s, e + 1),
    });
    tracing::info!(nonce, supers, edges, "registry change published");
    Ok(Some(tx))
}

/// The registry the genesis starts from.
fn genesis_nodes(chain: &Chain) -> Result<Vec<RegisteredKey>, Error> {
    let genesis = chain
        .genesis
        .as_deref()
        .ok_or_else(|| Error::Chain("no genesis".into()))?;
    let json: serde_json::Value =
        serde_json::from_str(genesis).map_err(|e| Error::Chain(format!("genesis: {e}")))?;
    let state: AppState = serde_json::from_value(json["app_state"].clone())
        .map_err(|e| Error::Chain(format!("genesis app_state: {e}")))?;
    Ok(state.nodes)
}
