//! The RPC calls tests make: [`hsn_ledger_api::cometbft`]'s, and `abci_query` for the
//! kvstore application.

use std::net::SocketAddr;

use anyhow::Result;

pub use hsn_ledger_api::cometbft::{Status, TxResult};

pub(super) async fn status(rpc: SocketAddr) -> Result<Status> {
    Ok(hsn_ledger_api::cometbft::status(rpc).await?)
}

pub(super) async fn broadcast_tx_sync(rpc: SocketAddr, tx: &[u8]) -> Result<TxResult> {
    Ok(hsn_ledger_api::cometbft::broadcast_tx_sync(rpc, tx).await?)
}

pub(super) async fn abci_query(rpc: SocketAddr, data: &[u8]) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let path = format!("/abci_query?data=0x{}", hsn_ledger_api::cometbft::hex(data));
    let r = hsn_ledger_api::cometbft::call(rpc, &path).await?;
    let value = r["response"]["value"].as_str().unwrap_or_default();
    Ok(base64::engine::general_purpose::STANDARD.decode(value)?)
}
