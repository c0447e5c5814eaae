//! A ledger's files in one directory: its signing key, the key registry it accepts and its
//! store, as `hsn-ledger serve` and `hsn_ledger::server::run` read them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use hsn_core::Role;
use hsn_ledger_api::keys::{self, KeyError, NodeKey, RegisteredKey, RegistryFile};

/// Where a test ledger's files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerFiles {
    /// The ledger's signing key (hex seed).
    pub key_file: PathBuf,
    /// The key registry (JSON).
    pub registry_file: PathBuf,
    /// The store (redb); the ledger creates it.
    pub db: PathBuf,
}

impl LedgerFiles {
    /// Writes `ledger_key` into `dir`, unless a key is there already (a restarted ledger
    /// keeps its key), and a registry accepting `nodes` (role, key, name).
    pub fn write(
        dir: &Path,
        ledger_key: &SigningKey,
        nodes: &[(Role, &SigningKey, &str)],
    ) -> Result<Self, KeyError> {
        let files = Self {
            key_file: dir.join("ledger.key"),
            registry_file: dir.join("keys.json"),
            db: dir.join("ledger.redb"),
        };
        if !files.key_file.exists() {
            keys::write_signing_key(&files.key_file, ledger_key)?;
        }
        let registry = RegistryFile {
            nodes: nodes
                .iter()
                .map(|(role, key, name)| RegisteredKey {
                    role: *role,
                    key: NodeKey::of(key),
                    name: (*name).into(),
                    retired: false,
                })
                .collect(),
        };
        let path = &files.registry_file;
        let json = serde_json::to_vec_pretty(&registry).map_err(|source| KeyError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(path, json).map_err(|source| KeyError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(files)
    }

    /// `hsn-ledger serve` arguments for these files, serving `network` on `listen`.
    pub fn serve_args(&self, network: &str, listen: SocketAddr) -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        vec![
            "serve".into(),
            "--listen".into(),
            listen.to_string(),
            "--db".into(),
            path(&self.db),
            "--key-file".into(),
            path(&self.key_file),
            "--keys".into(),
            path(&self.registry_file),
            "--network".into(),
            network.to_owned(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger_fixtures::signing_key;
    use hsn_ledger_api::keys::KeyRegistry;

    #[test]
    fn files_hold_the_key_and_the_registry_and_a_restart_keeps_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, edge) = (signing_key(1), signing_key(2));
        let nodes = [(Role::Super, &ledger, "super-0"), (Role::Edge, &edge, "e")];
        let files = LedgerFiles::write(dir.path(), &ledger, &nodes).unwrap();
        let key = keys::read_signing_key(&files.key_file).unwrap();
        assert_eq!(key.to_bytes(), ledger.to_bytes());
        let registry = KeyRegistry::load(&files.registry_file).unwrap();
        assert!(registry.has(&NodeKey::of(&edge), Role::Edge));
        assert!(registry.has(&NodeKey::of(&ledger), Role::Super));

        let again = LedgerFiles::write(dir.path(), &signing_key(3), &nodes[1..]).unwrap();
        let key = keys::read_signing_key(&again.key_file).unwrap();
        assert_eq!(key.to_bytes(), ledger.to_bytes(), "the first key stays");
        let registry = KeyRegistry::load(&again.registry_file).unwrap();
        assert_eq!(registry.len(), 1, "the registry is rewritten");
    }
}
