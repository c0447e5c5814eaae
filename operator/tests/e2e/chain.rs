//! Step 1b: the network's chain. The operator keeps one identity per super node in its
//! member (a Secret), writes the genesis once in the hub (a Secret in its own namespace)
//! when every planned super node's key is stored, with exactly those keys as validators and
//! the network's ledger settings, and gives every member the same genesis in the ledger
//! ConfigMap; a key an edge publishes reaches the registry through a signed change there.

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use hsn_ledger_api::genesis::{AppState, validator_key_json};
use hsn_ledger_api::keys::{NodeKey, RegisteredKey};
use hsn_ledger_api::pb;
use hsn_ledger_api::registry::signing_bytes;
use hsn_testkit::operator::{DEADLINE, OPERATOR_NS};
use hsn_testkit::operator::{LeaseWrite, edge_pod, put_lease};
use hsn_testkit::wait_for;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};

use crate::{MEMBER_NS, NET, Suite};

/// Checks the chain objects; returns the genesis as written.
pub(crate) async fn chain(s: &Suite) -> Result<String> {
    let net = s.nets().get(NET).await?;
    let secrets: Api<Secret> = Api::namespaced(s.hub(), OPERATOR_NS);
    let name = format!("hsn-ledger-{}", net.uid().unwrap_or_default());
    let hub_secret = wait_for("the genesis in the hub", DEADLINE, || async {
        secrets.get_opt(&name).await.ok().flatten()
    })
    .await?;
    let data = hub_secret.data.clone().context("genesis Secret data")?;
    let genesis = String::from_utf8(data["genesis.json"].0.clone())?;
    ensure!(data.contains_key("admin.key"), "the registry's admin key");
    let json: serde_json::Value = serde_json::from_str(&genesis)?;
    ensure!(
        json["chain_id"] == format!("hsn-{}", net.uid().unwrap_or_default()),
        "{}",
        json["chain_id"]
    );
    let state: AppState = serde_json::from_value(json["app_state"].clone())?;
    ensure!(
        state.network == NET && state.epoch_seconds == 60,
        "{state:?}"
    );
    ensure!(
        state.late_window_seconds == 6 * 3600,
        "the default late window"
    );
    ensure!(state.admins.len() == 1);
    ensure!(
        hub_secret
            .labels()
            .get("hsn.io/network")
            .map(String::as_str)
            == Some(NET),
        "labelled with the network"
    );

    // The validators are the super nodes' keys as their members store them.
    let mut stored = BTreeSet::new();
    for member in [&s.a, &s.b] {
        let ids: Api<Secret> = Api::namespaced(member.client(), MEMBER_NS);
        let ids = ids.get("hsn-super-identities").await?;
        for (pod, seed) in ids.data.iter().flatten() {
            let seed: [u8; 32] = hex::decode(String::from_utf8(seed.0.clone())?.trim())?
                .try_into()
                .map_err(|_| anyhow::anyhow!("{pod}: not a seed"))?;
            let key: serde_json::Value = serde_json::from_str(&validator_key_json(
                &ed25519_dalek::SigningKey::from_bytes(&seed),
            ))?;
            stored.insert(
                key["pub_key"]["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        let cm: Api<ConfigMap> = Api::namespaced(member.client(), MEMBER_NS);
        let cm = wait_for("the ledger ConfigMap", DEADLINE, || async {
            cm.get_opt("hsn-ledger").await.ok().flatten()
        })
        .await?;
        ensure!(
            cm.data.as_ref().and_then(|d| d.get("genesis.json")) == Some(&genesis),
            "{}: the hub's genesis, byte for byte",
            member.name
        );
    }
    let validators: BTreeSet<String> = json["validators"]
        .as_array()
        .context("validators")?
        .iter()
        .map(|v| {
            v["pub_key"]["value"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    ensure!(validators.len() == 4, "four super nodes: {validators:?}");
    ensure!(
        validators == stored,
        "validators {validators:?} are the stored keys {stored:?}"
    );
    ledger_certificates(s, &net.uid().unwrap_or_default()).await?;
    registry_follows_published_keys(s, &state).await?;
    Ok(genesis)
}

/// TLS by default: the network's CA in the hub, its certificate in every member, and one
/// certificate per super node in its member, signed by that CA for the network's ledger
/// name, with the key beside it.
async fn ledger_certificates(s: &Suite, uid: &str) -> Result<()> {
    use x509_parser::prelude::{FromDer as _, GeneralName, SubjectPublicKeyInfo};
    let secrets: Api<Secret> = Api::namespaced(s.hub(), OPERATOR_NS);
    let ca = secrets
        .get(&format!("hsn-ledger-ca-{uid}"))
        .await
        .context("the network's CA in the hub")?;
    let ca_data = ca.data.context("CA data")?;
    ensure!(
        ca_data.contains_key("ca.key"),
        "the CA's key stays in the hub"
    );
    let ca_pem = String::from_utf8(ca_data["ca.crt"].0.clone())?;
    let (_, ca_cert) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes())?;
    let ca_cert = ca_cert.parse_x509()?;
    let (_, ca_key) = SubjectPublicKeyInfo::from_der(ca_cert.public_key().raw)?;
    let name = format!("ledger.{NET}.hsn.internal");
    let mut certificates = 0;
    for member in [&s.a, &s.b] {
        let cms: Api<ConfigMap> = Api::namespaced(member.client(), MEMBER_NS);
        let cm = wait_for("the CA ConfigMap", DEADLINE, || async {
            cms.get_opt("hsn-ledger-ca").await.ok().flatten()
        })
        .await?;
        ensure!(
            cm.data.as_ref().and_then(|d| d.get("ca.crt")) == Some(&ca_pem),
            "{}: the hub's CA certificate",
            member.name
        );
        let ids: Api<Secret> = Api::namespaced(member.client(), MEMBER_NS);
        let pods: Vec<String> = ids
            .get("hsn-super-identities")
            .await?
            .data
            .unwrap_or_default()
            .into_keys()
            .collect();
        let tls = ids.get("hsn-ledger-tls").await?.data.unwrap_or_default();
        for pod in &pods {
            let pem = &tls
                .get(&format!("{pod}.crt"))
                .with_context(|| format!("{}: {pod}'s certificate", member.name))?
                .0;
            ensure!(tls.contains_key(&format!("{pod}.key")), "{pod}'s key");
            let (_, cert) = x509_parser::pem::parse_x509_pem(pem)?;
            let cert = cert.parse_x509()?;
            cert.verify_signature(Some(&ca_key))
                .map_err(|e| anyhow::anyhow!("{pod}: not signed by the CA: {e}"))?;
            let names = cert
                .subject_alternative_name()?
                .map(|san| san.value.general_names.clone())
                .unwrap_or_default();
            ensure!(
                names
                    .iter()
                    .any(|n| matches!(n, GeneralName::DNSName(d) if *d == name)),
                "{pod}: {names:?}"
            );
            certificates += 1;
        }
    }
    ensure!(
        certificates == 4,
        "one certificate per super node: {certificates}"
    );
    println!(
        "ledger TLS: the network's CA in the hub and every member, {certificates} super-node certificates for {name}"
    );
    Ok(())
}

/// An edge's agent publishes its key in its Lease: the operator signs a registry change
/// with the network's administrator key (the whole registry: the four super nodes and that
/// edge, named by their HsnNodes) and every member's ledger ConfigMap carries it.
async fn registry_follows_published_keys(s: &Suite, genesis: &AppState) -> Result<()> {
    if s.live_agents() {
        // Real agents publish their own keys; the check below is for the suite's Leases.
        return Ok(());
    }
    let member = s.a.client();
    let table = crate::reads::routes(&member).await?;
    // The last of A's own edges: step 3c works on the first two.
    let mut own: Vec<&str> = table
        .edges
        .iter()
        .filter(|e| e.cluster.is_empty())
        .map(|e| e.node.as_str())
        .collect();
    own.sort_unstable();
    let node = own.last().context("an edge of A")?.to_string();
    let pod = edge_pod(&member, MEMBER_NS, &node, None).await?;
    let key = NodeKey::of(&ed25519_dalek::SigningKey::from_bytes(&[77; 32]));
    let write = LeaseWrite {
        public_key: Some(key.to_string()),
        ..LeaseWrite::by(pod)
    };
    put_lease(&member, MEMBER_NS, &format!("edge-{node}"), &write).await?;
    for m in [&s.a, &s.b] {
        let cms: Api<ConfigMap> = Api::namespaced(m.client(), MEMBER_NS);
        let tx = wait_for(
            "the registry change in the ledger ConfigMap",
            DEADLINE,
            || async {
                let cm = cms.get_opt("hsn-ledger").await.ok()??;
                let tx = cm.data?.get("registry")?.trim().to_owned();
                let bytes = hex::decode(&tx).ok()?;
                let ledger_tx = <pb::LedgerTx as prost::Message>::decode(bytes.as_slice()).ok()?;
                match ledger_tx.kind? {
                    pb::ledger_tx::Kind::Registry(change)
                        if change.put.iter().any(|n| n.key == key.0) =>
                    {
                        Some(change)
                    }
                    _ => None,
                }
            },
        )
        .await?;
        ensure!(
            tx.replace && tx.nonce >= 1 && tx.remove.is_empty(),
            "{tx:?}"
        );
        ensure!(
            tx.put.iter().filter(|n| n.role == "super").count() == 4,
            "the four super nodes stay: {tx:?}"
        );
        let edge = tx.put.iter().find(|n| n.key == key.0).context("the edge")?;
        ensure!(
            edge.role == "edge" && edge.name == format!("{NET}.{}.edge.{node}", s.a.name),
            "{edge:?}"
        );
        // Signed by the genesis's administrator, over the bytes the ledger checks.
        let put: Vec<RegisteredKey> = tx
            .put
            .iter()
            .map(|n| RegisteredKey {
                role: n.role.parse().expect("a role"),
                key: NodeKey::from_slice(&n.key).expect("a key"),
                name: n.name.clone(),
                retired: n.retired,
            })
            .collect();
        let admin = genesis.admins[0].verifying_key()?;
        let signature = ed25519_dalek::Signature::from_slice(&tx.signature)?;
        ed25519_dalek::Verifier::verify(
            &admin,
            &signing_bytes(NET, tx.nonce, true, &put, &[]),
            &signature,
        )?;
    }
    // The reconcile that published it also mirrors the Lease into the edge's HsnNode: wait
    // for that too, so the steps after this one start from a settled network.
    let nodes: Api<hsn_api::HsnNode> = Api::namespaced(s.hub(), crate::NS);
    let hsn_node = format!("{NET}.{}.edge.{node}", s.a.name);
    let want = key.to_string();
    wait_for("the edge's HsnNode showing its key", DEADLINE, || async {
        let n = nodes.get_opt(&hsn_node).await.ok()??;
        (n.status?.public_key? == want).then_some(())
    })
    .await?;
    Ok(())
}

/// The genesis never changes once written (the Secret holding it does: each registry
/// change published is kept there too).
pub(crate) async fn unchanged(s: &Suite, genesis: &str) -> Result<()> {
    let net = s.nets().get(NET).await?;
    let secrets: Api<Secret> = Api::namespaced(s.hub(), OPERATOR_NS);
    let now = secrets
        .get(&format!("hsn-ledger-{}", net.uid().unwrap_or_default()))
        .await?;
    let now = now.data.unwrap_or_default();
    ensure!(
        now.get("genesis.json").map(|g| g.0.as_slice()) == Some(genesis.as_bytes()),
        "the genesis was rewritten"
    );
    Ok(())
}

/// Step 5b: `superNodes.ledgerTls` turned off. The network's CA leaves the hub (its key kept
/// for nothing would be a key to lose) and the members' TLS Secret and CA ConfigMap are
/// pruned; the genesis stays as written.
pub(crate) async fn plaintext(s: &Suite, genesis: &str) -> Result<()> {
    let nets = s.nets();
    let uid = nets.get(NET).await?.uid().unwrap_or_default();
    let off = serde_json::json!({"spec": {"superNodes": {"ledgerTls": false}}});
    nets.patch(NET, &PatchParams::default(), &Patch::Merge(&off))
        .await?;
    let secrets: Api<Secret> = Api::namespaced(s.hub(), OPERATOR_NS);
    let ca = format!("hsn-ledger-ca-{uid}");
    wait_for("the network's CA gone from the hub", DEADLINE, || async {
        secrets.get_opt(&ca).await.ok()?.is_none().then_some(())
    })
    .await?;
    for member in [&s.a, &s.b] {
        let tls: Api<Secret> = Api::namespaced(member.client(), MEMBER_NS);
        let cms: Api<ConfigMap> = Api::namespaced(member.client(), MEMBER_NS);
        let what = format!(
            "{}: the TLS Secret and the CA ConfigMap pruned",
            member.name
        );
        wait_for(&what, DEADLINE, || async {
            let secret_gone = tls.get_opt("hsn-ledger-tls").await.ok()?.is_none();
            let cm_gone = cms.get_opt("hsn-ledger-ca").await.ok()?.is_none();
            (secret_gone && cm_gone).then_some(())
        })
        .await?;
    }
    unchanged(s, genesis).await?;
    println!("ledger TLS off: the CA left the hub, every member's TLS objects were pruned");
    Ok(())
}
