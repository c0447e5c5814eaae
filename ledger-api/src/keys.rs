//! Node keys: ed25519 public keys as stored in records, signing-key files, and the registry
//! of keys the ledger accepts.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ed25519_dalek::{SigningKey, VerifyingKey};
use hsn_core::Role;
use serde::{Deserialize, Serialize};

/// An ed25519 public key as it appears in records: 32 raw bytes, not yet checked to be a
/// curve point. Cheap to copy, order and hash; [`NodeKey::verifying_key`] validates it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey(pub [u8; 32]);

impl NodeKey {
    /// The key of a signing key.
    pub fn of(signing: &SigningKey) -> Self {
        Self(signing.verifying_key().to_bytes())
    }

    /// Reads a key from wire bytes, which must be exactly 32 long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeyError> {
        let array: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Length {
            expected: 32,
            got: bytes.len(),
        })?;
        Ok(Self(array))
    }

    /// The key as a curve point, refusing encodings that are not one and weak (small-order)
    /// keys, for which a signature proves nothing.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::NotAPoint)?;
        if key.is_weak() {
            return Err(KeyError::Weak);
        }
        Ok(key)
    }

    /// Lowercase hex, the form used in files, CLI output and `HsnNode` status.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 bytes in hex, for tables.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..8])
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({})", self.short())
    }
}

impl FromStr for NodeKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s.trim()).map_err(|_| KeyError::Hex)?;
        Self::from_slice(&bytes)
    }
}

impl Serialize for NodeKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for NodeKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a key could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Wrong number of bytes.
    #[error("key must be {expected} bytes, got {got}")]
    Length {
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// Not hexadecimal.
    #[error("key is not hex")]
    Hex,
    /// 32 bytes that do not encode a curve point.
    #[error("key is not an ed25519 curve point")]
    NotAPoint,
    /// A small-order point: signatures under it prove nothing.
    #[error("key is a weak (small-order) ed25519 key")]
    Weak,
    /// The operating system's random source failed.
    #[error("no randomness for a new key: {0}")]
    Random(getrandom::Error),
    /// A key or registry file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A registry file is not the expected JSON.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: serde_json::Error,
    },
}

impl KeyError {
    /// Short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Length { .. } | Self::Hex | Self::NotAPoint | Self::Weak => "bad_key",
            Self::Random(_) => "random",
            Self::Io { .. } => "io",
            Self::Json { .. } => "json",
        }
    }
}

/// A new signing key from the operating system's random source.
pub fn generate_signing_key() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(KeyError::Random)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Reads a signing key file: the 32-byte seed in hex, surrounding whitespace ignored.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| io(path, source))?;
    let bytes = hex::decode(text.trim()).map_err(|_| KeyError::Hex)?;
    let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Length {
        expected: 32,
        got: bytes.len(),
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes a new signing key file readable by its owner only; refuses to overwrite one.
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<(), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| io(path, source))?;
    writeln!(file, "{}", hex::encode(key.to_bytes())).map_err(|source| io(path, source))
}

fn io(path: &Path, source: std::io::Error) -> KeyError {
    KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One registered key, as written in a registry file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisteredKey {
    /// What the key may sign.
    pub role: Role,
    /// The public key, hex.
    pub key: NodeKey,
    /// A name for people, e.g. the Kubernetes node.
    #[serde(default)]
    pub name: String,
    /// A super node that left the network's plan: it still signs the observations of what
    /// it witnessed (those of epochs it served, shipped late, stay valid), but it is no
    /// longer a validator. Only supers retire.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

/// The registry file: `{"nodes": [{"role": "edge", "key": "<hex>", "name": "edge-a"}]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryFile {
    /// Every accepted key.
    pub nodes: Vec<RegisteredKey>,
}

/// The keys the ledger accepts and their roles, with the curve points already decoded so
/// verification does not decompress a key per record.
#[derive(Clone, Debug, Default)]
pub struct KeyRegistry {
    keys: HashMap<NodeKey, (Role, VerifyingKey)>,
    /// Names for people (the HsnNode), where the registry file gives them.
    names: HashMap<NodeKey, String>,
}

impl KeyRegistry {
    /// Adds a key; a key registered twice keeps its last role.
    pub fn insert(&mut self, key: NodeKey, role: Role) -> Result<(), KeyError> {
        let point = key.verifying_key()?;
        self.keys.insert(key, (role, point));
        Ok(())
    }

    /// The role and curve point of a key, if registered.
    pub fn get(&self, key: &NodeKey) -> Option<(Role, &VerifyingKey)> {
        self.keys.get(key).map(|(role, point)| (*role, point))
    }

    /// Whether a key is registered with a role.
    pub fn has(&self, key: &NodeKey, role: Role) -> bool {
        self.get(key).is_some_and(|(r, _)| r == role)
    }

    /// Every key with its role and name (empty when unnamed), in key order.
    pub fn entries(&self) -> Vec<(NodeKey, Role, String)> {
        let name = |k: &NodeKey| self.names.get(k).cloned().unwrap_or_default();
        let mut all: Vec<_> = self
            .keys
            .iter()
            .map(|(k, (r, _))| (*k, *r, name(k)))
            .collect();
        all.sort_unstable_by_key(|(k, _, _)| *k);
        all
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is registered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Builds a registry from its file form.
    pub fn from_file_form(file: &RegistryFile) -> Result<Self, KeyError> {
        let mut registry = Self::default();
        for node in &file.nodes {
            registry.insert(node.key, node.role)?;
            if !node.name.is_empty() {
                registry.names.insert(node.key, node.name.clone());
            }
        }
        Ok(registry)
    }

    /// Loads a registry file.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| io(path, source))?;
        let file: RegistryFile = serde_json::from_str(&text).map_err(|source| KeyError::Json {
            path: path.to_owned(),
            source,
        })?;
        Self::from_file_form(&file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn hex_round_trip() {
        let k = NodeKey::of(&key(1));
        assert_eq!(k.to_hex().parse::<NodeKey>().unwrap(), k);
        assert!("abcd".parse::<NodeKey>().is_err());
        assert!("zz".parse::<NodeKey>().is_err());
    }

    #[test]
    fn weak_and_invalid_keys_are_refused() {
        // The identity point (y = 1) is small-order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            NodeKey(identity).verifying_key(),
            Err(KeyError::Weak)
        ));
        // y = 2 is not on the curve.
        let mut off_curve = [0u8; 32];
        off_curve[0] = 2;
        assert!(matches!(
            NodeKey(off_curve).verifying_key(),
            Err(KeyError::NotAPoint)
        ));
    }

    #[test]
    fn registry_file_round_trip_and_roles() {
        let edge = NodeKey::of(&key(2));
        let sup = NodeKey::of(&key(3));
        let json = format!(
            r#"{{"nodes":[{{"role":"edge","key":"{edge}","name":"e"}},{{"role":"super","key":"{sup}"}}]}}"#
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(&path, json).unwrap();
        let registry = KeyRegistry::load(&path).unwrap();
        assert_eq!(registry.len(), 2);
        assert!(registry.has(&edge, Role::Edge));
        assert!(!registry.has(&edge, Role::Super));
        assert!(registry.has(&sup, Role::Super));
        assert!(registry.get(&NodeKey::of(&key(4))).is_none());
    }

    #[test]
    fn signing_key_file_round_trip_refuses_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("super.key");
        let k = generate_signing_key().unwrap();
        write_signing_key(&path, &k).unwrap();
        assert_eq!(read_signing_key(&path).unwrap().to_bytes(), k.to_bytes());
        assert!(matches!(
            write_signing_key(&path, &k),
            Err(KeyError::Io { .. })
        ));
    }
}
