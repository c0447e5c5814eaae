//! The few CometBFT RPC calls tests need, as JSON-RPC over HTTP GET on loopback.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long one RPC call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// What `/status` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The latest committed height.
    pub height: u64,
    /// The application hash of that height (hex, upper case as CometBFT prints it).
    pub app_hash: String,
    /// Whether the node is still catching up with the others.
    pub catching_up: bool,
}

/// CheckTx's answer to `broadcast_tx_sync`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxResult {
    /// 0 when accepted into the mempool.
    pub code: u32,
    /// The application's log line.
    pub log: String,
    /// The transaction's hash (hex).
    pub hash: String,
}

pub(super) async fn status(rpc: SocketAddr) -> Result<Status> {
    let r = call(rpc, "/status").await?;
    let sync = &r["sync_info"];
    Ok(Status {
        height: sync["latest_block_height"]
            .as_str()
            .and_then(|h| h.parse().ok())
            .context("status without latest_block_height")?,
        app_hash: sync["latest_app_hash"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        catching_up: sync["catching_up"].as_bool().unwrap_or(false),
    })
}

pub(super) async fn broadcast_tx_sync(rpc: SocketAddr, tx: &[u8]) -> Result<TxResult> {
    let r = call(rpc, &format!("/broadcast_tx_sync?tx=0x{}", hex(tx))).await?;
    Ok(TxResult {
        code: r["code"]
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(u32::MAX),
        log: r["log"].as_str().unwrap_or_default().to_owned(),
        hash: r["hash"].as_str().unwrap_or_default().to_owned(),
    })
}

pub(super) async fn abci_query(rpc: SocketAddr, data: &[u8]) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let r = call(rpc, &format!("/abci_query?data=0x{}", hex(data))).await?;
    let value = r["response"]["value"].as_str().unwrap_or_default();
    Ok(base64::engine::general_purpose::STANDARD.decode(value)?)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// GET `path`; the JSON-RPC `result`, or its `error` as an error.
async fn call(rpc: SocketAddr, path: &str) -> Result<Value> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(rpc).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {rpc}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(CALL_TIMEOUT, exchange)
        .await
        .with_context(|| format!("GET http://{rpc}{path}: no answer in {CALL_TIMEOUT:?}"))?
        .with_context(|| format!("GET http://{rpc}{path}"))?;
    let text = String::from_utf8_lossy(&response);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .with_context(|| format!("GET http://{rpc}{path}: not HTTP: {text}"))?;
    let json: Value = serde_json::from_str(body)
        .with_context(|| format!("GET http://{rpc}{path}: not JSON: {body}"))?;
    if let Some(error) = json.get("error") {
        bail!("GET http://{rpc}{path}: {error}");
    }
    Ok(json["result"].clone())
}
