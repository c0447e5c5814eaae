//! Step 1b: the network's chain. The operator keeps one identity per super node in its
//! member (a Secret), writes the genesis once in the hub (a Secret in its own namespace)
//! when every planned super node's key is stored, with exactly those keys as validators and
//! the network's ledger settings, and gives every member the same genesis in the ledger
//! ConfigMap.

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use hsn_ledger_api::genesis::{AppState, validator_key_json};
use hsn_testkit::operator::{DEADLINE, OPERATOR_NS};
use hsn_testkit::wait_for;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, ResourceExt};

use crate::{MEMBER_NS, NET, Suite};

/// Checks the chain objects; returns the genesis Secret's resourceVersion.
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
    Ok(hub_secret.resource_version().unwrap_or_default())
}

/// The genesis never changes once written.
pub(crate) async fn unchanged(s: &Suite, version: &str) -> Result<()> {
    let net = s.nets().get(NET).await?;
    let secrets: Api<Secret> = Api::namespaced(s.hub(), OPERATOR_NS);
    let now = secrets
        .get(&format!("hsn-ledger-{}", net.uid().unwrap_or_default()))
        .await?;
    ensure!(
        now.resource_version().as_deref() == Some(version),
        "the genesis was rewritten"
    );
    Ok(())
}
