//! Registry changes an administrator published for the network (the operator's ConfigMap,
//! mounted): a file holding one signed `RegistryChange` transaction, hex. Every node reads
//! it every few seconds and hands a new one to its CometBFT node; whichever node's copy
//! commits first applies it, the others' are refused as stale (their nonce is used). Any
//! node that can reach a quorum delivers it, so a change needs no address of any node.
//!
//! A mounted ConfigMap is refreshed by the kubelet about once a minute; the super node's
//! agent watches the same ConfigMap and hands a change to its ledger at once
//! (`SubmitRegistryChange`). The file stays the path that needs nothing else running.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use crate::replica::deliver_registry_change;
use hsn_ledger_api::registry::parse_published;

/// How often the registry file is re-read.
pub const REGISTRY_INTERVAL: Duration = Duration::from_secs(2);

/// Re-reads `path` every [`REGISTRY_INTERVAL`] and submits each transaction it has not
/// delivered yet to the CometBFT node at `rpc`, until `stop`. A refusal is final (a stale
/// nonce means it, or a later change, applied); an RPC failure is retried.
pub async fn follow(path: PathBuf, rpc: std::net::SocketAddr, mut stop: watch::Receiver<bool>) {
    let mut delivered: Option<Vec<u8>> = None;
    loop {
        let tx = match std::fs::read_to_string(&path) {
            Ok(text) => match parse_published(&text) {
                Ok(tx) => tx,
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "registry file unreadable");
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "registry file unreadable");
                None
            }
        };
        if let Some(tx) = tx.filter(|tx| delivered.as_ref() != Some(tx)) {
            match deliver_registry_change(rpc, &tx).await {
                Ok(d) if d.taken => {
                    tracing::info!(tx = %d.detail, "registry change submitted");
                    delivered = Some(tx);
                }
                Ok(d) => {
                    tracing::info!(why = %d.detail, "registry change not taken (applied already, or refused)");
                    delivered = Some(tx);
                }
                // CometBFT may not serve RPC yet: the next round tries again.
                Err(e) => tracing::debug!(error = %e, "registry change not submitted; retrying"),
            }
        }
        tokio::select! {
            () = tokio::time::sleep(REGISTRY_INTERVAL) => {}
            _ = stop.wait_for(|&s| s) => return,
        }
    }
}
