//! The key registry as replicated state: which keys may sign records (edges) and
//! observations (supers), with names for people. The supers are the validators (equal
//! power), except retired ones: supers that left the plan, whose observations stay valid.
//! It changes only through `RegistryChange` transactions signed by an administrator key of
//! the genesis, each with a nonce at least the registry's next, so a
//! change applies once; a change either edits (puts and removes keys) or replaces the
//! whole registry.

use ed25519_dalek::{Signature, Verifier};
use serde::{Deserialize, Serialize};

use super::genesis::AppState;
use hsn_core::Role;
use hsn_ledger_api::keys::{KeyError, KeyRegistry, NodeKey, RegisteredKey};
use hsn_ledger_api::pb;

pub use hsn_ledger_api::registry::{
    REGISTRY_CHANGE_DOMAIN, sign_change, sign_replacement, signing_bytes,
};

pub use hsn_ledger_api::genesis::VALIDATOR_POWER;

/// The registry at one height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// The nonce the next change must carry.
    pub nonce: u64,
    /// Keys that sign changes.
    pub admins: Vec<NodeKey>,
    /// Registered keys, in key order.
    pub nodes: Vec<RegisteredKey>,
}

/// Why a registry change is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChangeRefusal {
    /// A nonce below the next one: the change, or a later one, already applied.
    #[error("nonce {got} is stale: the registry expects {want} or later")]
    Nonce {
        /// Expected.
        want: u64,
        /// Sent.
        got: u64,
    },
    /// Not signed by an administrator of the genesis.
    #[error("{0} is not an administrator key")]
    NotAdmin(String),
    /// The signature does not verify.
    #[error("the administrator signature does not verify")]
    BadSignature,
    /// A key or role that is not one.
    #[error("{0}")]
    Malformed(String),
    /// The change would leave no validator.
    #[error("the change leaves no super node; a chain needs at least one validator")]
    NoValidator,
}

impl Registry {
    /// The registry of a genesis.
    pub fn genesis(state: &AppState) -> Self {
        let mut nodes = state.nodes.clone();
        nodes.sort_by_key(|n| n.key);
        nodes.dedup_by_key(|n| n.key);
        Self {
            nonce: 0,
            admins: state.admins.clone(),
            nodes,
        }
    }

    /// The registry the ledger checks items against.
    pub fn keys(&self) -> Result<KeyRegistry, KeyError> {
        let mut registry = KeyRegistry::default();
        for node in &self.nodes {
            registry.insert(node.key, node.role)?;
        }
        Ok(registry)
    }

    /// The validators: every super key that is not retired, in key order.
    pub fn validators(&self) -> Vec<NodeKey> {
        let supers = self
            .nodes
            .iter()
            .filter(|n| n.role == Role::Super && !n.retired);
        supers.map(|n| n.key).collect()
    }

    /// A registered key's name, when it has one.
    pub fn name_of(&self, key: &NodeKey) -> Option<&str> {
        let i = self.nodes.binary_search_by_key(key, |n| n.key).ok()?;
        Some(self.nodes[i].name.as_str()).filter(|n| !n.is_empty())
    }

    /// The registry after `change`, or why it is refused.
    pub fn apply(&self, network: &str, change: &pb::RegistryChange) -> Result<Self, ChangeRefusal> {
        if change.nonce < self.nonce {
            let (want, got) = (self.nonce, change.nonce);
            return Err(ChangeRefusal::Nonce { want, got });
        }
        let admin = NodeKey::from_slice(&change.admin_key)
            .map_err(|e| ChangeRefusal::Malformed(format!("admin key: {e}")))?;
        if !self.admins.contains(&admin) {
            return Err(ChangeRefusal::NotAdmin(admin.to_string()));
        }
        let signature =
            Signature::from_slice(&change.signature).map_err(|_| ChangeRefusal::BadSignature)?;
        let point = admin
            .verifying_key()
            .map_err(|e| ChangeRefusal::Malformed(format!("admin key: {e}")))?;
        let (put, remove) = parse(change)?;
        point
            .verify(
                &signing_bytes(network, change.nonce, change.replace, &put, &remove),
                &signature,
            )
            .map_err(|_| ChangeRefusal::BadSignature)?;
        if change.replace && !remove.is_empty() {
            return Err(ChangeRefusal::Malformed(
                "a replacement removes nothing: it names the whole registry".into(),
            ));
        }
        let kept = self.nodes.iter().filter(|n| {
            !change.replace && !remove.contains(&n.key) && !put.iter().any(|p| p.key == n.key)
        });
        let mut nodes: Vec<RegisteredKey> = kept.cloned().collect();
        nodes.extend(put);
        nodes.sort_by_key(|n| n.key);
        if nodes.windows(2).any(|w| w[0].key == w[1].key) {
            return Err(ChangeRefusal::Malformed("a key put twice".into()));
        }
        let next = Self {
            nonce: change.nonce.saturating_add(1),
            admins: self.admins.clone(),
            nodes,
        };
        if next.validators().is_empty() {
            return Err(ChangeRefusal::NoValidator);
        }
        next.keys()
            .map_err(|e| ChangeRefusal::Malformed(e.to_string()))?;
        Ok(next)
    }

    /// CometBFT validator updates from this registry to `next`: power 0 for supers that
    /// left, [`VALIDATOR_POWER`] for supers that joined.
    pub fn validator_updates(&self, next: &Self) -> Vec<(NodeKey, i64)> {
        let (before, after) = (self.validators(), next.validators());
        let left = before
            .iter()
            .filter(|k| !after.contains(k))
            .map(|k| (*k, 0));
        let joined = after.iter().filter(|k| !before.contains(k));
        left.chain(joined.map(|k| (*k, VALIDATOR_POWER))).collect()
    }
}

fn parse(change: &pb::RegistryChange) -> Result<(Vec<RegisteredKey>, Vec<NodeKey>), ChangeRefusal> {
    let malformed =
        |what: &str, e: &dyn std::fmt::Display| ChangeRefusal::Malformed(format!("{what}: {e}"));
    let mut put = Vec::with_capacity(change.put.len());
    for node in &change.put {
        let key = NodeKey::from_slice(&node.key).map_err(|e| malformed("key", &e))?;
        key.verifying_key().map_err(|e| malformed("key", &e))?;
        let role: Role = node.role.parse().map_err(|e| malformed("role", &e))?;
        if node.retired && role != Role::Super {
            return Err(malformed("retired", &"only a super node retires"));
        }
        put.push(RegisteredKey {
            role,
            key,
            name: node.name.clone(),
            retired: node.retired,
        });
    }
    let remove = change.remove.iter().map(|k| NodeKey::from_slice(k));
    let remove = remove
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed("removed key", &e))?;
    Ok((put, remove))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;

    fn node(seed: u8, role: Role) -> (SigningKey, RegisteredKey) {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let key = NodeKey::of(&sk);
        let name = format!("{role}-{seed}");
        (
            sk,
            RegisteredKey {
                role,
                key,
                name,
                retired: false,
            },
        )
    }

    #[test]
    fn a_retired_super_still_witnesses_but_no_longer_validates() {
        let admin = SigningKey::from_bytes(&[9; 32]);
        let (_, s1) = node(1, Role::Super);
        let (_, s2) = node(2, Role::Super);
        let state = AppState::new("n", vec![NodeKey::of(&admin)], vec![s1.clone(), s2.clone()]);
        let r0 = Registry::genesis(&state);
        let retired = RegisteredKey {
            retired: true,
            ..s2.clone()
        };
        let change = sign_replacement("n", 0, &[s1.clone(), retired.clone()], &admin);
        let r1 = r0.apply("n", &change).unwrap();
        assert_eq!(r1.validators(), [s1.key]);
        assert_eq!(r0.validator_updates(&r1), [(s2.key, 0)]);
        let keys = r1.keys().unwrap();
        assert!(
            keys.has(&s2.key, Role::Super),
            "its observations still count"
        );
        // Back in the plan: a validator again.
        let back = sign_replacement("n", 1, &[s1.clone(), s2.clone()], &admin);
        let r2 = r1.apply("n", &back).unwrap();
        assert_eq!(r1.validator_updates(&r2), [(s2.key, VALIDATOR_POWER)]);
        // Retiring every super leaves no validator; only supers retire.
        let s1_retired = RegisteredKey {
            retired: true,
            ..s1.clone()
        };
        let none = sign_replacement("n", 2, &[s1_retired, retired], &admin);
        assert_eq!(r2.apply("n", &none), Err(ChangeRefusal::NoValidator));
        let (_, e1) = node(3, Role::Edge);
        let edge = RegisteredKey {
            retired: true,
            ..e1
        };
        let bad = sign_replacement("n", 2, &[s1, edge], &admin);
        assert!(matches!(
            r2.apply("n", &bad),
            Err(ChangeRefusal::Malformed(_))
        ));
    }

    #[test]
    fn changes_apply_once_signed_by_an_admin_and_move_validators() {
        let admin = SigningKey::from_bytes(&[9; 32]);
        let (_, s1) = node(1, Role::Super);
        let (_, s2) = node(2, Role::Super);
        let (_, e1) = node(3, Role::Edge);
        let state = AppState::new("n", vec![NodeKey::of(&admin)], vec![s1.clone()]);
        let r0 = Registry::genesis(&state);
        let change = sign_change("n", 0, &[s2.clone(), e1.clone()], &[], &admin);
        let r1 = r0.apply("n", &change).unwrap();
        assert_eq!(r1.nonce, 1);
        assert_eq!(r1.name_of(&e1.key), Some("edge-3"));
        assert_eq!(r0.validator_updates(&r1), [(s2.key, VALIDATOR_POWER)]);
        assert_eq!(r0.apply("n", &change), Ok(r1.clone()), "deterministic");
        assert!(matches!(
            r1.apply("n", &change),
            Err(ChangeRefusal::Nonce { want: 1, got: 0 })
        ));
        assert_eq!(
            r0.apply("m", &change),
            Err(ChangeRefusal::BadSignature),
            "another network's"
        );
        let stranger = SigningKey::from_bytes(&[8; 32]);
        let forged = sign_change("n", 1, &[], &[s1.key], &stranger);
        assert!(matches!(
            r1.apply("n", &forged),
            Err(ChangeRefusal::NotAdmin(_))
        ));
        let r2 = r1
            .apply("n", &sign_change("n", 1, &[], &[s1.key], &admin))
            .unwrap();
        assert_eq!(r1.validator_updates(&r2), [(s1.key, 0)]);
        let last = sign_change("n", 2, &[], &[s2.key], &admin);
        assert_eq!(r2.apply("n", &last), Err(ChangeRefusal::NoValidator));
    }

    #[test]
    fn a_replacement_states_the_whole_registry_and_nonces_may_skip() {
        let admin = SigningKey::from_bytes(&[9; 32]);
        let (_, s1) = node(1, Role::Super);
        let (_, s2) = node(2, Role::Super);
        let (_, e1) = node(3, Role::Edge);
        let state = AppState::new("n", vec![NodeKey::of(&admin)], vec![s1.clone(), e1.clone()]);
        let r0 = Registry::genesis(&state);
        // The writer numbers its own changes: nonce 5 on a registry expecting 0 applies.
        let whole = sign_replacement("n", 5, &[s2.clone(), e1.clone()], &admin);
        let r1 = r0.apply("n", &whole).unwrap();
        assert_eq!(r1.nonce, 6);
        assert_eq!(r1.nodes, {
            let mut n = vec![s2.clone(), e1.clone()];
            n.sort_by_key(|n| n.key);
            n
        });
        assert_eq!(
            r0.validator_updates(&r1),
            [(s1.key, 0), (s2.key, VALIDATOR_POWER)]
        );
        // The same replacement again, or an older one, is stale.
        assert!(matches!(
            r1.apply("n", &whole),
            Err(ChangeRefusal::Nonce { want: 6, got: 5 })
        ));
        // A replacement that removes, or names a key twice, is malformed; one without a
        // super leaves no validator.
        let mut removing = sign_replacement("n", 6, std::slice::from_ref(&s2), &admin);
        removing.remove.push(e1.key.0.to_vec());
        assert!(matches!(
            r1.apply("n", &removing),
            Err(ChangeRefusal::BadSignature | ChangeRefusal::Malformed(_))
        ));
        let twice = sign_replacement("n", 6, &[s2.clone(), s2.clone()], &admin);
        assert!(matches!(
            r1.apply("n", &twice),
            Err(ChangeRefusal::Malformed(_))
        ));
        let edges_only = sign_replacement("n", 6, std::slice::from_ref(&e1), &admin);
        assert_eq!(r1.apply("n", &edges_only), Err(ChangeRefusal::NoValidator));
    }
}
