//! The super pod's ledger container (`hsn-ledger node` from the ledger image, CometBFT
//! beside it) runs its network's chain: one super node, one validator, committing, over TLS
//! only; the operator's genesis and the pod's identity make it the validator. The super
//! agent relays the ledger ConfigMap's genesis and peers to it, reports its replica's head in its Lease, and the HsnNetwork's `status.ledger` shows
//! it. The ledger and CometBFT run as the ledger image's user, their data in the super
//! node's claim. A deleted super pod comes back with its claim and its chain goes on from
//! where it was.

use anyhow::{Context as _, Result, ensure};
use hsn_api::HsnNetwork;
use hsn_ledger_api::client::{ClientTls, connect};
use hsn_ledger_api::pb::{StatusRequest, StatusResponse};
use hsn_testkit::node::RealNode;
use hsn_testkit::operator::DEADLINE;
use hsn_testkit::{wait_for, wait_for_ok};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, LogParams};
use kube::{Api, Client, ResourceExt};

use crate::{MEMBER_NS, NETWORK, all_ready};

/// The ledger's `Status` over TLS once it is replicated and at least at `app_height`.
async fn status_at(url: &str, tls: &ClientTls, app_height: u64) -> Result<StatusResponse> {
    let status = wait_for_ok("the super node's chain committing", DEADLINE, || async {
        let mut client = connect(url, Some(tls)).await.map_err(|e| e.to_string())?;
        let status = client
            .status(StatusRequest {})
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        if status.replicated && status.app_height >= app_height {
            Ok(status)
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await?;
    Ok(status)
}

/// The class of the super node's claim, and the path of the volume the test makes for it
/// on the super's node.
pub(crate) const STATE_CLASS: &str = "hsn-real-node";
pub(crate) const STATE_VOLUME_PATH: &str = "/var/lib/hsn-volumes/state-0";

/// The super node's state is in its claim: bound to the volume on its node, where the
/// ledger's directory (the pod's own under the volume) belongs to the ledger's user.
fn state_in_claim(node: &RealNode) -> Result<String> {
    use std::os::unix::fs::MetadataExt as _;
    let ledger = node
        .dir()
        .join("root")
        .join(STATE_VOLUME_PATH.trim_start_matches('/'))
        .join("hsn-super-node-0/ledger");
    let meta = std::fs::metadata(&ledger).with_context(|| {
        format!(
            "the ledger's directory in the claim's volume, {}",
            ledger.display()
        )
    })?;
    ensure!(
        (meta.uid(), meta.gid()) == (65532, 65532),
        "{} belongs to {}:{}",
        ledger.display(),
        meta.uid(),
        meta.gid()
    );
    ensure!(
        ledger.join("cometbft/data").is_dir() && ledger.join("ledger.redb").is_file(),
        "no chain data in {}",
        ledger.display()
    );
    Ok(ledger.display().to_string())
}

/// `hsn-ledger node` and its `cometbft` child, as this machine's `/proc` shows them: the
/// program's name and the uid it runs as (real and effective equal, else `u32::MAX`).
fn ledger_users() -> Result<Vec<(String, u32)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let dir = entry?.path();
        let Ok(cmdline) = std::fs::read(dir.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let program = args.first().map(|a| a.rsplit('/').next().unwrap_or(a));
        let ours = match program {
            Some("hsn-ledger") => args.iter().any(|a| a == "--cometbft-home"),
            Some("cometbft") => args.iter().any(|a| a.contains("/var/lib/hsn/ledger")),
            _ => false,
        };
        if !ours {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(dir.join("status")) else {
            continue;
        };
        let uids: Vec<u32> = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|u| u.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let uid = match uids[..] {
            [real, effective, ..] if real == effective => real,
            _ => u32::MAX,
        };
        out.push((program.unwrap_or_default().to_owned(), uid));
    }
    Ok(out)
}

pub(crate) async fn super_ledger(
    hub: &Client,
    member: &Client,
    pod: &Pod,
    node: &RealNode,
) -> Result<()> {
    let ledger = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == "ledger"))
        .context("a ledger container in the super pod")?;
    ensure!(ledger.ready, "ledger container not ready: {ledger:?}");
    // TLS by default: the ledger proves the network's ledger name with a certificate from
    // the network's CA, which every member carries.
    let (_ca, tls) = hsn_testkit::operator::ledger_tls(member, MEMBER_NS, NETWORK).await?;
    let plain = format!("http://{}:{}", node.ip(), hsn_core::ports::LEDGER);
    let refused = match connect(&plain, None).await {
        Ok(mut c) => c.status(StatusRequest {}).await.is_err(),
        Err(_) => true,
    };
    ensure!(refused, "the ledger answered in plain text");
    let url = format!("https://{}:{}", node.ip(), hsn_core::ports::LEDGER);
    let status = status_at(&url, &tls, 3).await?;
    // The agent copied the genesis and peers for its ledger from its watch of the ledger
    // ConfigMap (the kubelet's mounted copy may lag by a minute).
    let pods: Api<Pod> = Api::namespaced(member.clone(), MEMBER_NS);
    let agent_log = pods
        .logs(
            &pod.name_any(),
            &LogParams {
                container: Some("agent".into()),
                ..LogParams::default()
            },
        )
        .await?;
    for file in ["genesis.json", "peers"] {
        ensure!(
            agent_log
                .lines()
                .any(|l| l.contains("relayed to the ledger") && l.contains(file)),
            "the super agent relayed no {file}; its log:\n{agent_log}"
        );
    }
    ensure!(
        status.validators.len() == 1,
        "one validator: {:?}",
        status.validators
    );
    // The ledger and its CometBFT run as the ledger image's user, not root (the init
    // container handed them their state directory on the node).
    let users = ledger_users()?;
    ensure!(
        users.len() == 2 && users.iter().all(|(_, uid)| *uid == 65532),
        "the ledger's processes (command, real and effective uid): {users:?}"
    );
    println!("the ledger's processes run as uid 65532: {users:?}");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(member.clone(), MEMBER_NS);
    let claim = claims.get("state-hsn-super-node-0").await?;
    let bound = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
    ensure!(
        bound.as_deref() == Some("hsn-state-0")
            && claim.status.and_then(|s| s.phase).as_deref() == Some("Bound"),
        "the super node's claim is not bound to the node's volume: {bound:?}"
    );
    println!(
        "the super node's state is in its claim state-hsn-super-node-0 (volume hsn-state-0): {}",
        state_in_claim(node)?
    );
    println!(
        "the super pod's ledger: replicated, app height {}, {} validator",
        status.app_height,
        status.validators.len()
    );
    let networks: Api<HsnNetwork> = Api::namespaced(hub.clone(), "default");
    let head = wait_for("status.ledger from the super's Lease", DEADLINE, || async {
        let network = networks.get(NETWORK).await.ok()?;
        network
            .status?
            .ledger
            .filter(|l| u64::try_from(l.chain_height).is_ok_and(|h| h >= status.app_height))
    })
    .await?;
    ensure!(
        head.validators == 1
            && head.reported_by.as_deref() == Some(&format!("{NETWORK}.mec-a.super-0")[..]),
        "status.ledger: {head:?}"
    );
    println!(
        "status.ledger: chain height {}, {} ledger blocks, {} validator, reported by {}",
        head.chain_height,
        head.height,
        head.validators,
        head.reported_by.unwrap_or_default()
    );

    // The operator saw the chain commit: the member's ledger ConfigMap says the chain has
    // history (a ledger started on a node without its chain data then waits rather than
    // beginning a second chain; this one, on its own node, goes on).
    let configmaps: Api<ConfigMap> = Api::namespaced(member.clone(), MEMBER_NS);
    let history = wait_for("history in the ledger ConfigMap", DEADLINE, || async {
        let cm = configmaps.get_opt("hsn-ledger").await.ok()??;
        cm.data?.get("history").cloned()
    })
    .await?;
    println!("the ledger ConfigMap's history: {}", history.trim());
    // With history, the peers are the validators whose replica reports a committed block:
    // this one, from the chain height its agent put in its Lease.
    let peers = wait_for("the chain's holder in the peers", DEADLINE, || async {
        let cm = configmaps.get_opt("hsn-ledger").await.ok()??;
        cm.data?
            .get("peers")
            .filter(|p| !p.trim().is_empty())
            .cloned()
    })
    .await?;
    println!("the ledger ConfigMap's peers: {}", peers.trim());

    // The super pod deleted: the StatefulSet brings it back under its name, with its claim
    // (its state there), and the chain goes on from its height, with the same validator.
    let before = status_at(&url, &tls, 0).await?;
    let pods: Api<Pod> = Api::namespaced(member.clone(), MEMBER_NS);
    pods.delete(&pod.name_any(), &DeleteParams::default())
        .await?;
    let old_uid = pod.uid();
    let replaced = wait_for("the super pod replaced", DEADLINE, || async {
        let list = pods
            .list(&ListParams::default().labels("hsn.io/role=super"))
            .await
            .ok()?;
        list.items
            .into_iter()
            .find(|p| p.uid() != old_uid && p.metadata.deletion_timestamp.is_none() && all_ready(p))
    })
    .await?;
    let after = status_at(&url, &tls, before.app_height + 3).await?;
    ensure!(
        after.network == before.network
            && after.validators.first().map(|v| &v.key)
                == before.validators.first().map(|v| &v.key),
        "another chain after the replacement: {after:?}"
    );
    println!(
        "super pod replaced by {} ({}): the chain went on from app height {} to {}",
        replaced.name_any(),
        replaced.uid().unwrap_or_default(),
        before.app_height,
        after.app_height
    );
    Ok(())
}
