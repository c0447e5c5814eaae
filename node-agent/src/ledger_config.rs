//! Super nodes: the member's ledger ConfigMap (`hsn-ledger`), followed by a watch and
//! passed to this pod's ledger as soon as it changes. The ledger also reads the ConfigMap's
//! mounted copy, but the kubelet refreshes that about once a minute (and mounts nothing
//! while the operator has not written it yet), so:
//! - registry changes (key `registry`) are handed over through `SubmitRegistryChange`: a
//!   new edge's records would otherwise be refused as from an unknown key (kept in its
//!   spool, retried) for that long;
//! - the genesis, the validators' addresses and whether the chain has history
//!   (`genesis.json`, `peers`, `history`) are copied into a directory the ledger container
//!   shares (`--ledger-relay-dir`), which it reads when its copy is the fresher one: a new
//!   network's validators meet a minute sooner.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt as _;
use hsn_api::routes::{GENESIS_KEY, HISTORY_KEY, LEDGER_CONFIGMAP, PEERS_KEY, REGISTRY_KEY};
use hsn_ledger_api::client::{self, ClientTls};
use hsn_ledger_api::pb::{self, ledger_client::LedgerClient};
use hsn_ledger_api::registry::parse_published;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::{WatchStreamExt as _, watcher};
use tonic::Code;
use tonic::transport::Channel;

use crate::status::StatusTx;

/// Time between attempts while the ledger cannot take a change.
pub const RETRY: Duration = Duration::from_secs(2);

/// Where this super node's ledger is.
#[derive(Clone, Debug)]
pub struct LedgerTarget {
    /// gRPC endpoint (`--ledger-endpoint`).
    pub endpoint: String,
    /// TLS toward it, as the shipper uses.
    pub tls: Option<ClientTls>,
    /// Where the genesis and peers are copied for it (`--ledger-relay-dir`).
    pub relay_dir: Option<PathBuf>,
}

/// Follows the ledger ConfigMap through `api`, copies its genesis and peers into the relay
/// directory and delivers each new registry change to the ledger at `target`, until the
/// status channel closes. A change the ledger took or refused for good (a used nonce) is
/// not sent again; one it could not answer is retried every [`RETRY`].
pub async fn follow(api: Api<ConfigMap>, target: LedgerTarget, status: StatusTx) {
    let config = watcher::Config::default().fields(&format!("metadata.name={LEDGER_CONFIGMAP}"));
    let mut changes = watcher(api, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut latest: Option<Vec<u8>> = None;
    let mut delivered: Option<Vec<u8>> = None;
    let mut client: Option<LedgerClient<Channel>> = None;
    let mut failing = false;
    loop {
        let pending = latest.is_some() && latest != delivered;
        tokio::select! {
            event = changes.next() => match event {
                None => return,
                Some(Ok(cm)) => {
                    if let Some(dir) = &target.relay_dir {
                        relay(&cm, dir);
                    }
                    match published(&cm) {
                        Ok(tx) => latest = tx,
                        Err(error) => tracing::warn!(%error, "the ledger ConfigMap's registry change"),
                    }
                }
                // Transient (API down, watch expired): the backoff retries.
                Some(Err(error)) => tracing::warn!(%error, "watching the ledger ConfigMap"),
            },
            () = tokio::time::sleep(RETRY), if pending => {}
            () = status.closed() => return,
        }
        let Some(tx) = latest.clone().filter(|tx| delivered.as_ref() != Some(tx)) else {
            continue;
        };
        match deliver(&target, &mut client, tx.clone()).await {
            Ok(Some(reply)) if reply.taken => {
                tracing::info!(tx = %reply.detail, "registry change handed to the ledger");
                delivered = Some(tx);
                failing = false;
            }
            Ok(reply) => {
                let why = reply.map_or_else(|| "refused".to_owned(), |r| r.detail);
                tracing::info!(%why, "registry change not taken (applied already, or refused)");
                delivered = Some(tx);
                failing = false;
            }
            Err(error) => {
                client = None;
                if !failing {
                    tracing::warn!(endpoint = %target.endpoint, %error,
                        "cannot hand the registry change to the ledger; retrying");
                    failing = true;
                }
            }
        }
    }
}

/// The ConfigMap's files the ledger reads (registry changes go over gRPC), copied into `dir` where they differ from the
/// copy there; a failure is logged (the ledger still has the kubelet's mount).
fn relay(cm: &ConfigMap, dir: &Path) {
    let Some(data) = cm.data.as_ref() else {
        return;
    };
    for key in [GENESIS_KEY, PEERS_KEY, HISTORY_KEY] {
        let Some(text) = data.get(key) else { continue };
        match relay_file(&dir.join(key), text) {
            Ok(true) => tracing::info!(file = key, "relayed to the ledger"),
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(file = key, dir = %dir.display(), %error, "cannot relay to the ledger");
            }
        }
    }
}

/// Writes `text` to `path` whole (a temporary file renamed over it), unless it holds that
/// already; whether it wrote.
fn relay_file(path: &Path, text: &str) -> std::io::Result<bool> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let tmp = path.with_extension("relaying");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

/// The change the ConfigMap holds (none while it has no registry yet).
fn published(cm: &ConfigMap) -> Result<Option<Vec<u8>>, String> {
    match cm.data.as_ref().and_then(|d| d.get(REGISTRY_KEY)) {
        Some(text) => parse_published(text),
        None => Ok(None),
    }
}

/// The ledger's answer; `None` when it refuses the call for good (not a registry change,
/// or a ledger that keeps no chain); an error when it should be asked again.
async fn deliver(
    target: &LedgerTarget,
    client: &mut Option<LedgerClient<Channel>>,
    transaction: Vec<u8>,
) -> Result<Option<pb::SubmitRegistryChangeResponse>, String> {
    if client.is_none() {
        let connected = client::connect(&target.endpoint, target.tls.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        *client = Some(connected);
    }
    let ledger = client.as_mut().expect("connected above");
    match ledger
        .submit_registry_change(pb::SubmitRegistryChangeRequest { transaction })
        .await
    {
        Ok(reply) => Ok(Some(reply.into_inner())),
        Err(s) if matches!(s.code(), Code::InvalidArgument | Code::FailedPrecondition) => {
            tracing::warn!(status = %s, "the ledger refuses registry changes");
            Ok(None)
        }
        Err(s) => Err(s.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configmap(registry: Option<&str>) -> ConfigMap {
        ConfigMap {
            data: registry.map(|r| [(REGISTRY_KEY.to_owned(), r.to_owned())].into()),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn genesis_peers_and_history_are_relayed_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let cm = |peers: &str| ConfigMap {
            data: Some(
                [
                    (
                        GENESIS_KEY.to_owned(),
                        "{\"chain_id\":\"hsn-1\"}".to_owned(),
                    ),
                    (PEERS_KEY.to_owned(), peers.to_owned()),
                    (HISTORY_KEY.to_owned(), "chain height 1\n".to_owned()),
                    (REGISTRY_KEY.to_owned(), "0a00\n".to_owned()),
                ]
                .into(),
            ),
            ..ConfigMap::default()
        };
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).ok();
        relay(&ConfigMap::default(), dir.path());
        assert_eq!(read(GENESIS_KEY), None, "nothing to relay yet");

        relay(&cm(""), dir.path());
        assert_eq!(
            read(GENESIS_KEY).as_deref(),
            Some("{\"chain_id\":\"hsn-1\"}")
        );
        assert_eq!(read(PEERS_KEY).as_deref(), Some(""));
        assert_eq!(read(HISTORY_KEY).as_deref(), Some("chain height 1\n"));
        assert_eq!(read(REGISTRY_KEY), None, "registry changes go over gRPC");
        let written = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .modified()
                .unwrap()
        };
        let genesis_at = written(GENESIS_KEY);

        let peer = "0123456789abcdef0123456789abcdef01234567@10.0.0.1:26656\n";
        std::thread::sleep(Duration::from_millis(20));
        relay(&cm(peer), dir.path());
        assert_eq!(read(PEERS_KEY).as_deref(), Some(peer));
        assert_eq!(
            written(GENESIS_KEY),
            genesis_at,
            "an unchanged file is not rewritten"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 3, "{leftovers:?}");

        // A directory it cannot write: logged, nothing else.
        relay(&cm(peer), &dir.path().join("missing"));
    }

    #[test]
    fn the_configmap_holds_one_change_or_none() {
        assert_eq!(published(&configmap(None)), Ok(None));
        assert_eq!(published(&configmap(Some(""))), Ok(None));
        assert_eq!(published(&configmap(Some("0a00\n"))), Ok(Some(vec![10, 0])));
        assert!(published(&configmap(Some("not hex"))).is_err());
    }
}
