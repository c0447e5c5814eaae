//! A network's genesis, the one document every validator of its chain starts from:
//! CometBFT's `genesis.json` (chain id, genesis time, consensus parameters, the first
//! validators) with the ledger's [`AppState`] as its `app_state`, and the CometBFT key files
//! of a super node, whose ledger key is its validator key and its P2P node key.
//!
//! The operator writes genesis documents with [`GenesisDoc`]; `hsn-ledger` reads them.

use std::path::Path;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::keys::{KeyError, KeyRegistry, NodeKey, RegisteredKey};
use hsn_core::Role;

pub use hsn_core::epoch::DEFAULT_LATE_WINDOW_SECONDS;

/// Voting power of every validator (all super nodes weigh the same).
pub const VALIDATOR_POWER: i64 = 10;

/// How far a claim may be from the observation and still be attested: within either the
/// absolute or the relative bound. Same meaning as `HsnNetwork.spec.metering.ledger`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tolerance {
    /// Largest absolute difference in bytes.
    pub bytes: u64,
    /// Largest difference in basis points (1/10000) of the observed bytes.
    pub basis_points: u32,
}

impl Default for Tolerance {
    /// The `HsnNetwork` defaults: 4096 bytes or 1 %.
    fn default() -> Self {
        Self {
            bytes: 4096,
            basis_points: 100,
        }
    }
}

impl Tolerance {
    /// Whether a claim is close enough to the observation. The observation is the reference
    /// for the relative bound because it is the independent measurement.
    pub fn admits(&self, claimed: u64, observed: u64) -> bool {
        let diff = claimed.abs_diff(observed);
        diff <= self.bytes
            || u128::from(diff) * 10_000 <= u128::from(self.basis_points) * u128::from(observed)
    }
}

/// `app_state` of the genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppState {
    /// The network.
    pub network: String,
    /// Epoch length.
    #[serde(default = "default_epoch_seconds")]
    pub epoch_seconds: u64,
    /// How long after an epoch ends its records are still accepted; the epoch is sealed,
    /// and its rewards final, when the window is over (by block time).
    #[serde(default = "default_late_window")]
    pub late_window_seconds: u64,
    /// Attestation tolerance.
    #[serde(default)]
    pub tolerance: Tolerance,
    /// Most entries per ledger block.
    #[serde(default = "default_limit")]
    pub max_block_entries: usize,
    /// Most records plus observations per transaction.
    #[serde(default = "default_limit")]
    pub max_batch_items: usize,
    /// Keys whose signature changes the registry.
    #[serde(default)]
    pub admins: Vec<NodeKey>,
    /// The first registry.
    #[serde(default)]
    pub nodes: Vec<RegisteredKey>,
}

fn default_epoch_seconds() -> u64 {
    60
}

fn default_late_window() -> u64 {
    DEFAULT_LATE_WINDOW_SECONDS
}

fn default_limit() -> usize {
    10_000
}

/// Why a genesis is not usable.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// Not JSON, or no valid `app_state`.
    #[error("{path}: app_state: {source}")]
    Json {
        /// The file.
        path: String,
        /// What failed.
        source: serde_json::Error,
    },
    /// Values that cannot run.
    #[error("app_state: {0}")]
    Invalid(String),
}

impl AppState {
    /// The defaults for `network` with `nodes` registered.
    pub fn new(network: &str, admins: Vec<NodeKey>, nodes: Vec<RegisteredKey>) -> Self {
        Self {
            network: network.to_owned(),
            epoch_seconds: default_epoch_seconds(),
            late_window_seconds: default_late_window(),
            tolerance: Tolerance::default(),
            max_block_entries: default_limit(),
            max_batch_items: default_limit(),
            admins,
            nodes,
        }
    }

    /// Reads `app_state` from a CometBFT `genesis.json`.
    pub fn from_genesis_file(path: &Path) -> Result<Self, GenesisError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Io {
            path: shown.clone(),
            source,
        })?;
        let json = |source| GenesisError::Json {
            path: shown.clone(),
            source,
        };
        let genesis: serde_json::Value = serde_json::from_str(&text).map_err(json)?;
        let state: Self = serde_json::from_value(genesis["app_state"].clone()).map_err(json)?;
        state.check()?;
        Ok(state)
    }

    /// The canonical bytes of this state (what the chain's first app hash covers).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an app state serialises")
    }

    /// Refuses values no ledger can run with.
    pub fn check(&self) -> Result<(), GenesisError> {
        let invalid = |m: &str| Err(GenesisError::Invalid(m.to_owned()));
        if self.network.is_empty() {
            return invalid("network is empty");
        }
        if self.epoch_seconds == 0 {
            return invalid("epoch_seconds must be at least 1");
        }
        if self.max_block_entries == 0 || self.max_batch_items == 0 {
            return invalid("max_block_entries and max_batch_items must be at least 1");
        }
        if !self.nodes.iter().any(|n| n.role == Role::Super) {
            return invalid("no super node: a chain needs at least one validator");
        }
        self.registry()
            .map(drop)
            .map_err(|e| GenesisError::Invalid(e.to_string()))
    }

    /// The first registry.
    pub fn registry(&self) -> Result<KeyRegistry, KeyError> {
        let mut registry = KeyRegistry::default();
        for node in &self.nodes {
            registry.insert(node.key, node.role)?;
        }
        Ok(registry)
    }
}

/// CometBFT's address of a validator key: the first 20 bytes of its SHA-256.
pub fn validator_address(key: &NodeKey) -> [u8; 20] {
    let digest = Sha256::digest(key.0);
    let mut address = [0; 20];
    address.copy_from_slice(&digest[..20]);
    address
}

/// CometBFT's P2P node id of a key (the address, lower-case hex): what `persistent_peers`
/// entries `<id>@<host>:<port>` start with. A super node's node key is its ledger key.
pub fn node_id(key: &NodeKey) -> String {
    hex::encode(validator_address(key))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn public_key_json(key: &NodeKey) -> serde_json::Value {
    serde_json::json!({"type": "tendermint/PubKeyEd25519", "value": b64(&key.0)})
}

fn private_key_json(key: &SigningKey) -> serde_json::Value {
    let private = [key.to_bytes(), key.verifying_key().to_bytes()].concat();
    serde_json::json!({"type": "tendermint/PrivKeyEd25519", "value": b64(&private)})
}

/// CometBFT's `priv_validator_key.json` for a super node's key: the super node's key is
/// its validator key, so the validator set and the registry's supers are the same keys.
pub fn validator_key_json(key: &SigningKey) -> String {
    let public = NodeKey::of(key);
    let json = serde_json::json!({
        "address": hex::encode_upper(validator_address(&public)),
        "pub_key": public_key_json(&public),
        "priv_key": private_key_json(key),
    });
    serde_json::to_string_pretty(&json).expect("JSON serialises")
}

/// CometBFT's `node_key.json` for a super node's key: its P2P identity is its ledger key,
/// so its peers' ids follow from the keys in the registry ([`node_id`]).
pub fn node_key_json(key: &SigningKey) -> String {
    let json = serde_json::json!({"priv_key": private_key_json(key)});
    serde_json::to_string_pretty(&json).expect("JSON serialises")
}

/// A whole `genesis.json`: fixed once per network, identical on every validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenesisDoc {
    /// CometBFT's chain id (at most 50 characters).
    pub chain_id: String,
    /// RFC 3339 time, e.g. `2026-12-03T16:00:00Z`: consensus starts no earlier.
    pub genesis_time: String,
    /// The ledger's state; its super nodes are the first validators.
    pub app_state: AppState,
}

impl GenesisDoc {
    /// The document CometBFT and every replica read: the first validators are the supers
    /// of the app state's registry at equal power, vote extensions (the endorsements) from
    /// height 1, CometBFT's default block, evidence and key-type parameters.
    pub fn to_json(&self) -> Result<String, GenesisError> {
        self.app_state.check()?;
        if self.chain_id.is_empty() || self.chain_id.len() > 50 {
            return Err(GenesisError::Invalid(format!(
                "chain id {:?} must be 1 to 50 characters",
                self.chain_id
            )));
        }
        let validators: Vec<serde_json::Value> = self
            .app_state
            .nodes
            .iter()
            .filter(|n| n.role == Role::Super)
            .map(|n| {
                serde_json::json!({
                    "address": hex::encode_upper(validator_address(&n.key)),
                    "pub_key": public_key_json(&n.key),
                    "power": VALIDATOR_POWER.to_string(),
                    "name": n.name,
                })
            })
            .collect();
        let json = serde_json::json!({
            "genesis_time": self.genesis_time,
            "chain_id": self.chain_id,
            "initial_height": "1",
            "consensus_params": {
                "block": {"max_bytes": "22020096", "max_gas": "-1"},
                "evidence": {
                    "max_age_num_blocks": "100000",
                    "max_age_duration": "172800000000000",
                    "max_bytes": "1048576"
                },
                "validator": {"pub_key_types": ["ed25519"]},
                "version": {"app": "0"},
                "abci": {"vote_extensions_enable_height": "1"}
            },
            "validators": validators,
            "app_hash": "",
            "app_state": self.app_state,
        });
        Ok(serde_json::to_string_pretty(&json).expect("JSON serialises"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    #[test]
    fn defaults_fill_in_and_nonsense_is_refused() {
        let key = NodeKey::of(&key(3));
        let json = serde_json::json!({
            "network": "n",
            "nodes": [{"role": "super", "key": key.to_string(), "name": "super-0"}],
        });
        let state: AppState = serde_json::from_value(json).unwrap();
        state.check().unwrap();
        assert_eq!(state.late_window_seconds, DEFAULT_LATE_WINDOW_SECONDS);
        let no_super = AppState::new("n", vec![], vec![]);
        assert!(
            no_super
                .check()
                .unwrap_err()
                .to_string()
                .contains("no super node")
        );
        let typo = serde_json::json!({"network": "n", "late_window": 5});
        assert!(serde_json::from_value::<AppState>(typo).is_err());
    }

    #[test]
    fn genesis_lists_the_supers_as_validators_and_reads_back() {
        let (s1, s2, edge) = (key(1), key(2), key(9));
        let node = |k: &SigningKey, role, name: &str| RegisteredKey {
            role,
            key: NodeKey::of(k),
            name: name.into(),
            retired: false,
        };
        let doc = GenesisDoc {
            chain_id: "hsn-test".into(),
            genesis_time: "2026-12-03T16:00:00Z".into(),
            app_state: AppState::new(
                "n",
                vec![],
                vec![
                    node(&s1, Role::Super, "a/super-0"),
                    node(&edge, Role::Edge, "e"),
                    node(&s2, Role::Super, "b/super-0"),
                ],
            ),
        };
        let text = doc.to_json().unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let validators = json["validators"].as_array().unwrap();
        assert_eq!(validators.len(), 2, "the edge is no validator");
        let s1_key: serde_json::Value = serde_json::from_str(&validator_key_json(&s1)).unwrap();
        assert_eq!(validators[0]["address"], s1_key["address"]);
        assert_eq!(validators[0]["pub_key"], s1_key["pub_key"]);
        assert_eq!(validators[0]["power"], "10");
        assert_eq!(
            json["consensus_params"]["abci"]["vote_extensions_enable_height"],
            "1"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(AppState::from_genesis_file(&path).unwrap(), doc.app_state);
        let node_key: serde_json::Value = serde_json::from_str(&node_key_json(&s1)).unwrap();
        assert_eq!(node_key["priv_key"], s1_key["priv_key"]);
        assert_eq!(
            node_id(&NodeKey::of(&s1)),
            s1_key["address"].as_str().unwrap().to_lowercase()
        );
        let long = GenesisDoc {
            chain_id: "x".repeat(51),
            ..doc
        };
        assert!(long.to_json().unwrap_err().to_string().contains("chain id"));
    }
}
