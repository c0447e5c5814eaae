//! Registry changes as an administrator signs them (the operator, tests): the bytes signed,
//! the signed `RegistryChange`, and the transaction that carries it to a replicated ledger.
//! The ledger checks them (`hsn_ledger::replica::registry`).

use ed25519_dalek::{Signer as _, SigningKey};
use prost::Message as _;

use crate::canonical::Canonical;
use crate::keys::{NodeKey, RegisteredKey};
use crate::pb;
use hsn_core::Role;

/// Domain tag of the bytes an administrator signs.
pub const REGISTRY_CHANGE_DOMAIN: &str = "HSN-LEDGER/REGISTRY-CHANGE/V2";

/// The bytes an administrator signs: network, nonce, whether the change replaces the whole
/// registry, the keys put (role: 1 edge, 2 super, 3 retired super; key, name) and removed,
/// in the order given.
pub fn signing_bytes(
    network: &str,
    nonce: u64,
    replace: bool,
    put: &[RegisteredKey],
    remove: &[NodeKey],
) -> Vec<u8> {
    let mut c = Canonical::new(REGISTRY_CHANGE_DOMAIN)
        .str(network)
        .u64(nonce)
        .u8(u8::from(replace))
        .u32(u32::try_from(put.len()).unwrap_or(u32::MAX));
    for node in put {
        let role = match (node.role, node.retired) {
            (Role::Edge, _) => 1,
            (Role::Super, false) => 2,
            (Role::Super, true) => 3,
        };
        c = c.u8(role).fixed(&node.key.0).str(&node.name);
    }
    c = c.u32(u32::try_from(remove.len()).unwrap_or(u32::MAX));
    for key in remove {
        c = c.fixed(&key.0);
    }
    c.finish()
}

fn signed(
    network: &str,
    nonce: u64,
    replace: bool,
    put: &[RegisteredKey],
    remove: &[NodeKey],
    admin: &SigningKey,
) -> pb::RegistryChange {
    let signature = admin.sign(&signing_bytes(network, nonce, replace, put, remove));
    pb::RegistryChange {
        nonce,
        put: put
            .iter()
            .map(|n| pb::RegistryNode {
                role: n.role.to_string(),
                key: n.key.0.to_vec(),
                name: n.name.clone(),
                retired: n.retired,
            })
            .collect(),
        remove: remove.iter().map(|k| k.0.to_vec()).collect(),
        admin_key: NodeKey::of(admin).0.to_vec(),
        signature: signature.to_bytes().to_vec(),
        replace,
    }
}

/// A change that puts and removes keys, signed by `admin`.
pub fn sign_change(
    network: &str,
    nonce: u64,
    put: &[RegisteredKey],
    remove: &[NodeKey],
    admin: &SigningKey,
) -> pb::RegistryChange {
    signed(network, nonce, false, put, remove, admin)
}

/// A change after which the registry is exactly `nodes`, signed by `admin`.
pub fn sign_replacement(
    network: &str,
    nonce: u64,
    nodes: &[RegisteredKey],
    admin: &SigningKey,
) -> pb::RegistryChange {
    signed(network, nonce, true, nodes, &[], admin)
}

/// The transaction carrying `change` (what a replica's CometBFT node takes).
pub fn transaction(change: pb::RegistryChange) -> Vec<u8> {
    pb::LedgerTx {
        kind: Some(pb::ledger_tx::Kind::Registry(change)),
    }
    .encode_to_vec()
}

/// A published registry change as the operator writes it (a ConfigMap value or a file): one
/// transaction, hex; blank means none yet.
pub fn parse_published(text: &str) -> Result<Option<Vec<u8>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    hex::decode(text)
        .map(Some)
        .map_err(|e| format!("not a hex transaction: {e}"))
}

/// Whether `tx` is a transaction carrying a registry change (and nothing else).
pub fn is_registry_change(tx: &[u8]) -> bool {
    matches!(
        pb::LedgerTx::decode(tx),
        Ok(pb::LedgerTx {
            kind: Some(pb::ledger_tx::Kind::Registry(_))
        })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retiring_a_super_is_signed() {
        let key = NodeKey::of(&SigningKey::from_bytes(&[1; 32]));
        let active = RegisteredKey {
            role: Role::Super,
            key,
            name: "s".into(),
            retired: false,
        };
        let retired = RegisteredKey {
            retired: true,
            ..active.clone()
        };
        assert_ne!(
            signing_bytes("n", 1, true, &[active], &[]),
            signing_bytes("n", 1, true, &[retired], &[])
        );
    }

    #[test]
    fn a_published_change_is_one_hex_transaction_or_nothing() {
        assert_eq!(parse_published(""), Ok(None));
        assert_eq!(parse_published("  \n"), Ok(None));
        assert_eq!(parse_published("0a01\n"), Ok(Some(vec![0x0a, 0x01])));
        assert!(parse_published("zz").is_err());
    }

    #[test]
    fn only_a_registry_transaction_is_a_registry_change() {
        let admin = SigningKey::from_bytes(&[2; 32]);
        let tx = transaction(sign_replacement("n", 1, &[], &admin));
        assert!(is_registry_change(&tx));
        let submit = pb::LedgerTx {
            kind: Some(pb::ledger_tx::Kind::Submit(
                pb::SubmitRecordsRequest::default(),
            )),
        }
        .encode_to_vec();
        assert!(!is_registry_change(&submit));
        assert!(!is_registry_change(b"\xff\xff"));
        assert!(!is_registry_change(&[]));
    }

    #[test]
    fn replacing_and_editing_sign_different_bytes() {
        let key = NodeKey::of(&SigningKey::from_bytes(&[1; 32]));
        let node = RegisteredKey {
            role: Role::Super,
            key,
            name: "s".into(),
            retired: false,
        };
        let edit = signing_bytes("n", 3, false, std::slice::from_ref(&node), &[]);
        let replace = signing_bytes("n", 3, true, std::slice::from_ref(&node), &[]);
        assert_ne!(edit, replace);
        assert_ne!(edit, signing_bytes("m", 3, false, &[node], &[]));
        let admin = SigningKey::from_bytes(&[2; 32]);
        let tx = transaction(sign_replacement("n", 7, &[], &admin));
        let back = <pb::LedgerTx as prost::Message>::decode(tx.as_slice()).unwrap();
        match back.kind {
            Some(pb::ledger_tx::Kind::Registry(c)) => assert!(c.replace && c.nonce == 7),
            other => panic!("{other:?}"),
        }
    }
}
