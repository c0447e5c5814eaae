//! The chain stage, between plan and apply: read every member's super-node identities
//! (new seeds for ordinals without one, written by apply), and the network's genesis from
//! the hub, writing it once when every planned super node's key is stored in its member.
//!
//! The genesis lives in a hub Secret in the operator's own namespace, `hsn-ledger-<network
//! uid>` (labelled with the network), with the registry's administrator key: the operator
//! reads and writes Secrets there only, never in the networks' namespaces. It never changes
//! after it is written (every validator must start from the same document); the network's
//! cleanup deletes it. Its validators are the super nodes planned then; edges and later
//! super nodes join the registry through administrator-signed registry changes
//! ([`super::registry`]).

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use hsn_api::HsnNetwork;
use hsn_ledger_api::genesis::{AppState, GenesisDoc, Tolerance};
use hsn_ledger_api::keys::{NodeKey, generate_signing_key};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::Error;
use super::fetch::Fetched;
use crate::context::Context;
use crate::plan::Plan;
use crate::resources::{Chain, IDENTITY_SECRET, LedgerTls, TLS_SECRET, member_namespace};

/// Key of the genesis document in the hub Secret.
pub const GENESIS_KEY: &str = "genesis.json";
/// Key of the registry administrator's seed (hex) in the hub Secret.
pub const ADMIN_KEY: &str = "admin.key";
/// Key of what the operator saw when the chain first reported a committed block, in the
/// hub Secret; written once, then published in every member's ledger ConfigMap.
pub const HISTORY_KEY: &str = "history";

/// The hub Secret holding a network's genesis and administrator key (in the operator's
/// namespace), named after the network's UID.
pub fn genesis_secret(network: &HsnNetwork) -> String {
    format!("hsn-ledger-{}", network.uid().unwrap_or_default())
}

/// Label of the chain Secret: the network's `<namespace>/<name>` does not fit a label
/// value, so its namespace and name are two labels.
const NETWORK_NAMESPACE_LABEL: &str = "hsn.io/network-namespace";

/// Deletes the network's chain Secret (cleanup); one already gone is fine.
pub async fn forget(network: &HsnNetwork, ctx: &Context) -> Result<(), Error> {
    for name in [genesis_secret(network), super::tls::ca_secret(network)] {
        super::tls::delete_hub_secret(ctx, &name).await?;
    }
    Ok(())
}

/// Metadata of a hub Secret of `network` in the operator's namespace: labelled with the
/// network (namespace, name, UID), so it can be told whose it is.
fn hub_meta(network: &HsnNetwork, name: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(BTreeMap::from([
            (
                "app.kubernetes.io/managed-by".to_owned(),
                crate::resources::FIELD_MANAGER.to_owned(),
            ),
            (
                crate::resources::NETWORK_LABEL.to_owned(),
                network.name_any(),
            ),
            (
                NETWORK_NAMESPACE_LABEL.to_owned(),
                network.namespace().unwrap_or_default(),
            ),
            (
                crate::resources::NETWORK_UID_LABEL.to_owned(),
                network.uid().unwrap_or_default(),
            ),
        ])),
        ..Default::default()
    }
}

/// Reads identities and the genesis; writes the genesis when it is due.
pub async fn prepare(
    network: &HsnNetwork,
    ctx: &Context,
    plan: &Plan,
    fetched: &Fetched,
) -> Result<Chain, Error> {
    let mut chain = Chain::default();
    let now = Timestamp::now();
    let ca = if network.spec.super_nodes.ledger_tls {
        let ns = &ctx.settings.operator_namespace;
        let meta = hub_meta(network, &super::tls::ca_secret(network), ns);
        super::tls::ca(network, ctx, meta).await?
    } else {
        if !network.spec.paused {
            super::tls::forget_ca(network, ctx).await?;
        }
        None
    };
    chain.tls = ca.as_ref().map(|ca| LedgerTls {
        ca_pem: ca.cert_pem().to_owned(),
        certs: BTreeMap::new(),
    });
    // Whether every planned super node's seed is stored (not only generated just now).
    let mut stored = true;
    let namespace = member_namespace(&network.name_any());
    // Each member's Secrets are read at the same time (they are different API servers),
    // then judged in order.
    let reads = fetched.members.iter().filter_map(|(mec, member)| {
        let replicas = plan
            .clusters
            .get(&mec.name_any())
            .map_or(0, |p| p.super_replicas);
        (replicas > 0 && member.view.ready).then(|| {
            let want_tls = ca.is_some();
            let namespace = namespace.as_str();
            async move {
                let read = match ctx.members.client(mec).await {
                    Ok(client) => {
                        let secrets = Api::<Secret>::namespaced(client, namespace);
                        let tls = async {
                            if want_tls {
                                Some(secrets.get_opt(TLS_SECRET).await)
                            } else {
                                None
                            }
                        };
                        let identity = secrets.get_opt(IDENTITY_SECRET);
                        let (tls, identity) = tokio::join!(tls, identity);
                        Ok((tls, identity.map_err(|e| e.to_string())))
                    }
                    Err(error) => Err(error),
                };
                (mec.name_any(), replicas, read)
            }
        })
    });
    for (cluster, replicas, read) in futures::future::join_all(reads).await {
        let (tls_read, identity_read) = match read {
            Ok(reads) => reads,
            Err(error) => {
                // Unknown is not empty: nothing is rendered for it, so nothing is replaced.
                tracing::warn!(%cluster, %error, "super-node identities unreadable");
                stored = false;
                continue;
            }
        };
        if let (Some(ca), Some(tls), Some(tls_read)) = (&ca, chain.tls.as_mut(), tls_read) {
            match tls_read {
                Ok(existing) => {
                    let name = network.name_any();
                    let (certs, issued) =
                        super::tls::certificates(ca, &name, existing.as_ref(), replicas, now)?;
                    if issued > 0 {
                        tracing::info!(%cluster, issued, "ledger certificates issued");
                    }
                    tls.certs.insert(cluster.clone(), certs);
                }
                Err(error) => {
                    tracing::warn!(%cluster, %error, "ledger certificates unreadable; left alone");
                }
            }
        }
        let existing = match identity_read {
            Ok(existing) => existing,
            Err(error) => {
                // Unknown is not empty: nothing is rendered for it, so nothing is replaced.
                tracing::warn!(%cluster, %error, "super-node identities unreadable");
                stored = false;
                continue;
            }
        };
        let mut seeds = match existing.as_ref().map(seeds_of).transpose() {
            Ok(seeds) => seeds.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%cluster, %error, "super-node identities damaged; left alone");
                stored = false;
                continue;
            }
        };
        for ordinal in 0..replicas {
            if let std::collections::btree_map::Entry::Vacant(slot) = seeds.entry(ordinal) {
                let key = generate_signing_key()
                    .map_err(|e| Error::Chain(format!("a new super-node key: {e}")))?;
                slot.insert(key);
                stored = false;
            }
        }
        chain.seeds.insert(cluster, seeds);
    }

    let api: Api<Secret> = Api::namespaced(ctx.hub.clone(), &ctx.settings.operator_namespace);
    let name = genesis_secret(network);
    let existing = match api.get_opt(&name).await.map_err(Error::Hub)? {
        Some(secret) => Some(secret),
        None if stored && !network.spec.paused && plan.supers().next().is_some() => {
            let secret = new_genesis(
                network,
                plan,
                &chain,
                fetched,
                &name,
                &ctx.settings.operator_namespace,
            )?;
            match api.create(&PostParams::default(), &secret).await {
                Ok(created) => {
                    tracing::info!(secret = %name, "genesis written");
                    Some(created)
                }
                // Another writer was first: its genesis is the one.
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    api.get_opt(&name).await.map_err(Error::Hub)?
                }
                Err(e) => return Err(Error::Hub(e)),
            }
        }
        None => None,
    };
    chain.genesis = existing.as_ref().and_then(|s| text(s, GENESIS_KEY));
    if let Some(secret) = existing.as_ref().filter(|_| chain.genesis.is_some()) {
        chain.history = history(network, &api, secret, fetched, now).await?;
        chain.registry = if network.spec.paused {
            text(secret, super::registry::TRANSACTION_KEY)
        } else {
            let admin = text(secret, ADMIN_KEY)
                .and_then(|t| hex::decode(t.trim()).ok())
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(|seed| SigningKey::from_bytes(&seed));
            super::registry::follow(network, &api, secret, admin, plan, &chain, fetched).await?
        };
    }
    Ok(chain)
}

/// Whether the chain has history: kept in the chain Secret from the first time a trusted
/// super node reported a committed block (one hub write in a network's life), so a super
/// node rescheduled to a node without its chain data does not begin the chain again
/// (`hsn-ledger node --history-file`) even while no super node reports anything.
async fn history(
    network: &HsnNetwork,
    api: &Api<Secret>,
    secret: &Secret,
    fetched: &Fetched,
    now: Timestamp,
) -> Result<Option<String>, Error> {
    if let Some(seen) = text(secret, HISTORY_KEY) {
        return Ok(Some(seen.trim().to_owned()));
    }
    let Some(head) =
        super::head::ledger_head(fetched, &network.name_any(), now).filter(|h| h.chain_height > 0)
    else {
        return Ok(None);
    };
    if network.spec.paused {
        return Ok(None);
    }
    let seen = format!(
        "chain height {} reported by {} at {now}",
        head.chain_height,
        head.reported_by.as_deref().unwrap_or("a super node")
    );
    let patch = serde_json::json!({"stringData": {HISTORY_KEY: seen}});
    api.patch(
        &secret.name_any(),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .map_err(Error::Hub)?;
    tracing::info!(%seen, "the chain has history");
    Ok(Some(seen))
}

/// The seeds of an identity Secret by ordinal.
fn seeds_of(secret: &Secret) -> Result<BTreeMap<u32, SigningKey>, String> {
    let mut seeds = BTreeMap::new();
    for (name, value) in secret.data.iter().flatten() {
        let ordinal = name
            .strip_prefix(crate::resources::SUPER_NODE)
            .and_then(|n| n.strip_prefix('-'))
            .and_then(|n| n.parse::<u32>().ok())
            .ok_or_else(|| format!("key {name:?} names no super-node pod"))?;
        let text = String::from_utf8_lossy(&value.0);
        let bytes = hex::decode(text.trim()).map_err(|_| format!("{name}: not hex"))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("{name}: not a 32-byte seed"))?;
        seeds.insert(ordinal, SigningKey::from_bytes(&seed));
    }
    Ok(seeds)
}

fn text(secret: &Secret, key: &str) -> Option<String> {
    let value = secret.data.as_ref()?.get(key)?;
    String::from_utf8(value.0.clone()).ok()
}

/// The genesis of `network` now: its ledger settings, a new administrator key, and the
/// registry the plan wants ([`super::registry::desired`]): the planned super nodes
/// (validators) and the edges whose agents already published a key.
fn new_genesis(
    network: &HsnNetwork,
    plan: &Plan,
    chain: &Chain,
    fetched: &Fetched,
    name: &str,
    namespace: &str,
) -> Result<Secret, Error> {
    let admin = generate_signing_key().map_err(|e| Error::Chain(format!("admin key: {e}")))?;
    let nodes = super::registry::desired(network, plan, chain, fetched, &[]);
    let spec = &network.spec.metering;
    let mut app_state = AppState::new(&network.name_any(), vec![NodeKey::of(&admin)], nodes);
    app_state.epoch_seconds = u64::try_from(spec.epoch_seconds).unwrap_or(60).max(1);
    app_state.late_window_seconds = u64::try_from(spec.ledger.late_window_seconds).unwrap_or(0);
    app_state.tolerance = Tolerance {
        bytes: u64::try_from(spec.ledger.tolerance_bytes).unwrap_or(0),
        basis_points: u32::try_from(spec.ledger.tolerance_basis_points).unwrap_or(0),
    };
    app_state.max_block_entries = usize::try_from(spec.ledger.max_records_per_block)
        .unwrap_or(1)
        .max(1);
    let doc = GenesisDoc {
        chain_id: format!("hsn-{}", network.uid().unwrap_or_default()),
        genesis_time: Timestamp::now().to_string(),
        app_state,
    };
    let json = doc
        .to_json()
        .map_err(|e| Error::Chain(format!("genesis: {e}")))?;
    Ok(Secret {
        metadata: hub_meta(network, name, namespace),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (GENESIS_KEY.to_owned(), ByteString(json.into_bytes())),
            (
                ADMIN_KEY.to_owned(),
                ByteString(format!("{}\n", hex::encode(admin.to_bytes())).into_bytes()),
            ),
        ])),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::super_pod;

    #[test]
    fn identity_secrets_read_back_and_foreign_keys_are_refused() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let secret = Secret {
            data: Some(BTreeMap::from([(
                super_pod(3),
                ByteString(format!("{}\n", hex::encode(key.to_bytes())).into_bytes()),
            )])),
            ..Default::default()
        };
        let seeds = seeds_of(&secret).unwrap();
        assert_eq!(seeds[&3].to_bytes(), key.to_bytes());
        let foreign = Secret {
            data: Some(BTreeMap::from([(
                "other".into(),
                ByteString(b"00".to_vec()),
            )])),
            ..Default::default()
        };
        assert!(
            seeds_of(&foreign)
                .unwrap_err()
                .contains("names no super-node pod")
        );
        let short = Secret {
            data: Some(BTreeMap::from([(
                super_pod(0),
                ByteString(b"abcd".to_vec()),
            )])),
            ..Default::default()
        };
        assert!(seeds_of(&short).unwrap_err().contains("32-byte"));
    }
}
