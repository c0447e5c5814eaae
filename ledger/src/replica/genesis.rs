//! The application state of a network's genesis (`app_state` in CometBFT's
//! `genesis.json`): the ledger settings every validator must share, the administrator keys
//! that may change the registry, and the first registry (its supers are the first
//! validators).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::attest::Tolerance;
use crate::ledger::LedgerConfig;
use hsn_core::Role;
use hsn_ledger_api::keys::{KeyRegistry, NodeKey, RegisteredKey};

pub use crate::ledger::DEFAULT_LATE_WINDOW_SECONDS;

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

    /// The ledger settings.
    pub fn ledger_config(&self) -> LedgerConfig {
        LedgerConfig {
            network: self.network.clone(),
            epoch_seconds: self.epoch_seconds,
            grace_seconds: self.late_window_seconds,
            tolerance: self.tolerance,
            max_block_entries: self.max_block_entries,
            max_batch_items: self.max_batch_items,
        }
    }

    /// The first registry.
    pub fn registry(&self) -> Result<KeyRegistry, hsn_ledger_api::keys::KeyError> {
        let mut registry = KeyRegistry::default();
        for node in &self.nodes {
            registry.insert(node.key, node.role)?;
        }
        Ok(registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_and_nonsense_is_refused() {
        let key = NodeKey::of(&ed25519_dalek::SigningKey::from_bytes(&[3; 32]));
        let json = serde_json::json!({
            "network": "n",
            "nodes": [{"role": "super", "key": key.to_string(), "name": "super-0"}],
        });
        let state: AppState = serde_json::from_value(json).unwrap();
        state.check().unwrap();
        assert_eq!(state.late_window_seconds, DEFAULT_LATE_WINDOW_SECONDS);
        assert_eq!(
            state.ledger_config().grace_seconds,
            DEFAULT_LATE_WINDOW_SECONDS
        );
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
}
