//! Stable ids of super nodes and edge nodes across a network's clusters.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A super node: replica `ordinal` of the network's super-node StatefulSet in `cluster`.
///
/// Text form `<cluster>/super-<ordinal>` (routes tables, HsnNode specs, logs); within its
/// cluster (its agent's Lease) it is [`SuperId::local_name`], `super-<ordinal>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SuperId {
    /// MecCluster name.
    pub cluster: String,
    /// StatefulSet ordinal.
    pub ordinal: u32,
}

const SUPER_PREFIX: &str = "super-";

impl SuperId {
    /// Replica `ordinal` in `cluster`.
    pub fn new(cluster: impl Into<String>, ordinal: u32) -> Self {
        Self {
            cluster: cluster.into(),
            ordinal,
        }
    }

    /// The name of super node `ordinal` within its cluster: `super-<ordinal>`.
    pub fn local_name(ordinal: u32) -> String {
        format!("{SUPER_PREFIX}{ordinal}")
    }

    /// The ordinal in a name [`SuperId::local_name`] made.
    pub fn ordinal_of(name: &str) -> Option<u32> {
        let digits = name.strip_prefix(SUPER_PREFIX)?;
        // `u32::from_str` takes a leading '+'; an ordinal is digits only.
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    }
}

impl fmt::Display for SuperId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{SUPER_PREFIX}{}", self.cluster, self.ordinal)
    }
}

/// Text that is not `<cluster>/super-<ordinal>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("super node id {0:?} is not <cluster>/super-<ordinal>")]
pub struct ParseSuperIdError(pub String);

impl FromStr for SuperId {
    type Err = ParseSuperIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseSuperIdError(s.to_owned());
        let (cluster, name) = s.rsplit_once('/').ok_or_else(bad)?;
        if cluster.is_empty() || cluster.contains('/') {
            return Err(bad());
        }
        let ordinal = Self::ordinal_of(name).ok_or_else(bad)?;
        Ok(Self::new(cluster, ordinal))
    }
}

impl PartialEq<str> for SuperId {
    fn eq(&self, other: &str) -> bool {
        other.parse::<Self>().is_ok_and(|o| o == *self)
    }
}

impl PartialEq<&str> for SuperId {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Serialize for SuperId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SuperId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An edge node: the agent on Kubernetes node `node` in `cluster`. Text form
/// `<cluster>/<node>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EdgeId {
    /// MecCluster name.
    pub cluster: String,
    /// Node name.
    pub node: String,
}

impl EdgeId {
    /// The edge on `node` in `cluster`.
    pub fn new(cluster: impl Into<String>, node: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            node: node.into(),
        }
    }
}

impl fmt::Display for EdgeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn super_ids_round_trip() {
        let id = SuperId::new("mec-eu-west", 12);
        assert_eq!(id.to_string(), "mec-eu-west/super-12");
        assert_eq!("mec-eu-west/super-12".parse::<SuperId>(), Ok(id.clone()));
        assert_eq!(SuperId::local_name(12), "super-12");
        assert_eq!(SuperId::ordinal_of("super-12"), Some(12));
        assert_eq!(id, "mec-eu-west/super-12");
        assert_ne!(id, "mec-eu-west/super-1");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"mec-eu-west/super-12\"");
        assert_eq!(serde_json::from_str::<SuperId>(&json).unwrap(), id);
    }

    #[test]
    fn malformed_super_ids_are_refused() {
        for bad in [
            "",
            "super-1",
            "/super-1",
            "a/super-",
            "a/super-x",
            "a/super-+1",
            "a/edge-1",
            "a/b/super-1",
            "a/super-99999999999",
        ] {
            assert!(bad.parse::<SuperId>().is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<SuperId>("\"a/edge-1\"").is_err());
    }

    #[test]
    fn edge_ids_print_cluster_and_node() {
        assert_eq!(EdgeId::new("a", "n1").to_string(), "a/n1");
    }
}
