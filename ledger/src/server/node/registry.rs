//! Registry changes an administrator published for the network (the operator's ConfigMap,
//! mounted): a file holding one signed `RegistryChange` transaction, hex. Every node reads
//! it every few seconds and hands a new one to its CometBFT node; whichever node's copy
//! commits first applies it, the others' are refused as stale (their nonce is used). Any
//! node that can reach a quorum delivers it, so a change needs no address of any node.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use hsn_ledger_api::cometbft;

/// How often the registry file is re-read.
pub const REGISTRY_INTERVAL: Duration = Duration::from_secs(2);

/// What a file holds: one transaction, hex (blank or missing: none yet).
pub fn parse(text: &str) -> Result<Option<Vec<u8>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    hex::decode(text)
        .map(Some)
        .map_err(|e| format!("not a hex transaction: {e}"))
}

/// Re-reads `path` every [`REGISTRY_INTERVAL`] and submits each transaction it has not
/// delivered yet to the CometBFT node at `rpc`, until `stop`. A refusal is final (a stale
/// nonce means it, or a later change, applied); an RPC failure is retried.
pub async fn follow(path: PathBuf, rpc: std::net::SocketAddr, mut stop: watch::Receiver<bool>) {
    let mut delivered: Option<Vec<u8>> = None;
    loop {
        let tx = match std::fs::read_to_string(&path) {
            Ok(text) => match parse(&text) {
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
            match cometbft::broadcast_tx_sync(rpc, &tx).await {
                Ok(r) if r.code == 0 => {
                    tracing::info!(hash = %r.hash, "registry change submitted");
                    delivered = Some(tx);
                }
                Ok(r) => {
                    tracing::info!(code = r.code, log = %r.log, "registry change not taken (applied already, or refused)");
                    delivered = Some(tx);
                }
                Err(e) if e.to_string().contains("already exists in cache") => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_file_is_one_hex_transaction_or_nothing() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("  \n"), Ok(None));
        assert_eq!(parse("0a0b\n"), Ok(Some(vec![0x0a, 0x0b])));
        assert!(parse("zz").unwrap_err().contains("hex"));
    }
}
