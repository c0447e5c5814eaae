//! `hsnctl keys`: the ledger's key registry from the keys in the HsnNodes the network
//! controls. An HsnNode that claims the network without being controlled by it was made by
//! hand, and its key is never registered.

use std::io::Write;

use hsn_api::{HsnNetwork, HsnNode};
use hsn_ledger_api::keys::{KeyError, NodeKey, RegisteredKey, RegistryFile};
use kube::ResourceExt;

use super::{ClusterError, KeysArgs, Scope, connect, list};
use crate::CliError;

/// `hsnctl keys`: the ledger's key registry (`hsn-ledger serve --keys`) from the public
/// keys the network's agents published (their Leases, copied into HsnNode status by the
/// operator when the Lease was written by the pod it placed). Agents that have not published
/// a key yet are left out and counted on stderr; so are HsnNodes the network does not
/// control (owner reference), whose keys are never listed.
pub async fn keys(args: &KeysArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let hub = connect(&args.hub).await?;
    let scope = Scope::new(&hub, args.hub.namespace.as_deref(), false);
    let networks = list::<HsnNetwork>(&hub, &scope).await?;
    let network = networks
        .iter()
        .find(|n| n.name_any() == args.network)
        .ok_or_else(|| ClusterError::NetworkNotFound {
            namespace: scope.namespace.clone().unwrap_or_else(|| "*".into()),
            name: args.network.clone(),
        })?;
    let uid = network.uid().unwrap_or_default();
    let mut nodes = list::<HsnNode>(&hub, &scope).await?;
    nodes.retain(|n| n.spec.network == args.network);
    let (nodes, foreign): (Vec<HsnNode>, Vec<HsnNode>) =
        nodes.into_iter().partition(|n| n.is_controlled_by(&uid));
    if !foreign.is_empty() {
        let names: Vec<String> = foreign.iter().map(|n| n.name_any()).collect();
        eprintln!(
            "hsnctl: ignoring {} HsnNodes not created by the operator for this network: {}",
            names.len(),
            names.join(", ")
        );
    }
    let (registry, missing) = registry(&nodes)?;
    if !missing.is_empty() {
        eprintln!(
            "hsnctl: {} of {} agents have not published a key yet: {}",
            missing.len(),
            nodes.len(),
            missing.join(", ")
        );
    }
    serde_json::to_writer_pretty(&mut *out, &registry).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// The registry of `nodes`' published keys, sorted by name, and the names of the nodes
/// without one.
pub fn registry(nodes: &[HsnNode]) -> Result<(RegistryFile, Vec<String>), ClusterError> {
    let mut registry = RegistryFile::default();
    let mut missing = Vec::new();
    for node in nodes {
        let name = node.name_any();
        let Some(key) = node.status.as_ref().and_then(|s| s.public_key.as_deref()) else {
            missing.push(name);
            continue;
        };
        let parsed: NodeKey = key.parse().map_err(|e: KeyError| ClusterError::BadKey {
            node: name.clone(),
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        let role = node.spec.role;
        registry.nodes.push(RegisteredKey {
            role,
            key: parsed,
            name,
            retired: false,
        });
    }
    registry.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    missing.sort();
    Ok((registry, missing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hsn_api::node::{HsnNodeSpec, HsnNodeStatus};
    use hsn_core::Role;

    fn node(name: &str, role: Role, key: Option<&str>) -> HsnNode {
        let mut n = HsnNode::new(
            name,
            HsnNodeSpec {
                network: "metro".into(),
                role,
                cluster: "a".into(),
                node_name: None,
                ordinal: None,
                assigned_super_node: None,
            },
        );
        n.status = Some(HsnNodeStatus {
            public_key: key.map(str::to_owned),
            ..Default::default()
        });
        n
    }

    #[test]
    fn a_registry_lists_published_keys_by_role_and_refuses_a_bad_one() {
        let (file, missing) = registry(&[
            node("s0", Role::Super, Some(&"5a".repeat(32))),
            node("e1", Role::Edge, Some(&"e1".repeat(32))),
            node("e2", Role::Edge, None),
        ])
        .unwrap();
        let roles: Vec<(Role, &str)> = file
            .nodes
            .iter()
            .map(|k| (k.role, k.name.as_str()))
            .collect();
        assert_eq!(roles, [(Role::Edge, "e1"), (Role::Super, "s0")]);
        assert_eq!(missing, ["e2"]);
        let err = registry(&[node("e3", Role::Edge, Some("zz"))]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HsnNode e3 has an invalid public key"),
            "{err}"
        );
    }
}
