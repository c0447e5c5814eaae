//! The few CometBFT RPC calls a super node's ledger makes to its own CometBFT node (and
//! tests make to theirs): JSON-RPC over HTTP GET, one connection per call, bounded in time.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// How long one call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings every HSN validator's `config.toml` carries, whoever writes it (`hsn-ledger
/// node`, the test toolkit): (section, key, value as a TOML literal).
/// - `p2p`: the validators are the only peers: no peer exchange, and their addresses may be
///   private (or all on one host); messages flushed every 10 ms instead of 100.
/// - `consensus`: about ten blocks a second where the network allows instead of CometBFT's
///   one, so a submission is acknowledged in a fraction of a second (measured:
///   `../shared/design/cometbft.md`); CometBFT lengthens each round's timeouts by its
///   `*_delta` when the network is slower.
/// - `mempool`: the largest transaction, [`MAX_TX_BYTES`].
pub const VALIDATOR_CONFIG: &[(&str, &str, &str)] = &[
    ("p2p", "pex", "false"),
    ("p2p", "addr_book_strict", "false"),
    ("p2p", "allow_duplicate_ip", "true"),
    ("p2p", "flush_throttle_timeout", "\"10ms\""),
    ("consensus", "timeout_propose", "\"500ms\""),
    ("consensus", "timeout_prevote", "\"200ms\""),
    ("consensus", "timeout_precommit", "\"200ms\""),
    ("consensus", "timeout_commit", "\"50ms\""),
    ("consensus", "peer_gossip_sleep_duration", "\"10ms\""),
    ("mempool", "max_tx_bytes", "5242880"),
];

/// Largest transaction a validator's mempool takes: one `SubmitRecords` request, up to the
/// ledger's 4 MiB request limit, with room for its envelope.
pub const MAX_TX_BYTES: i64 = 5 << 20;

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
    /// The application's info (the ledger puts the refusal reason there).
    pub info: String,
    /// The transaction's hash (hex).
    pub hash: String,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// No answer in time.
    #[error("GET http://{rpc}{path}: no answer in {CALL_TIMEOUT:?}")]
    Timeout {
        /// The node.
        rpc: SocketAddr,
        /// The call.
        path: String,
    },
    /// Connecting, sending or reading failed.
    #[error("GET http://{rpc}{path}: {source}")]
    Io {
        /// The node.
        rpc: SocketAddr,
        /// The call.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// An answer that is not a JSON-RPC response.
    #[error("GET http://{rpc}{path}: not a JSON-RPC answer: {body}")]
    Garbled {
        /// The node.
        rpc: SocketAddr,
        /// The call.
        path: String,
        /// What came back.
        body: String,
    },
    /// The node answered with an error.
    #[error("GET http://{rpc}{path}: {error}")]
    Rpc {
        /// The node.
        rpc: SocketAddr,
        /// The call.
        path: String,
        /// The JSON-RPC error.
        error: String,
    },
}

/// `/status`.
pub async fn status(rpc: SocketAddr) -> Result<Status, RpcError> {
    let r = call(rpc, "/status").await?;
    let sync = &r["sync_info"];
    let height = sync["latest_block_height"]
        .as_str()
        .and_then(|h| h.parse().ok());
    let Some(height) = height else {
        return Err(RpcError::Garbled {
            rpc,
            path: "/status".to_owned(),
            body: r.to_string(),
        });
    };
    Ok(Status {
        height,
        app_hash: sync["latest_app_hash"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        catching_up: sync["catching_up"].as_bool().unwrap_or(false),
    })
}

/// `/broadcast_tx_sync`: puts `tx` into the node's mempool after its CheckTx.
pub async fn broadcast_tx_sync(rpc: SocketAddr, tx: &[u8]) -> Result<TxResult, RpcError> {
    let r = call(rpc, &format!("/broadcast_tx_sync?tx=0x{}", hex(tx))).await?;
    let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
    Ok(TxResult {
        code: r["code"]
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(u32::MAX),
        log: text("log"),
        info: text("info"),
        hash: text("hash"),
    })
}

/// Lower-case hex, as CometBFT's RPC takes binary arguments (`0x…`).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// GET `path`; the JSON-RPC `result`, or its `error` as an error.
pub async fn call(rpc: SocketAddr, path: &str) -> Result<Value, RpcError> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(rpc).await?;
        stream.set_nodelay(true)?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {rpc}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let path_owned = || path.to_owned();
    let response = tokio::time::timeout(CALL_TIMEOUT, exchange)
        .await
        .map_err(|_| RpcError::Timeout {
            rpc,
            path: path_owned(),
        })?
        .map_err(|source| RpcError::Io {
            rpc,
            path: path_owned(),
            source,
        })?;
    let text = String::from_utf8_lossy(&response);
    let garbled = || RpcError::Garbled {
        rpc,
        path: path_owned(),
        body: text.chars().take(500).collect(),
    };
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(garbled)?;
    let json: Value = serde_json::from_str(body).map_err(|_| garbled())?;
    if let Some(error) = json.get("error") {
        return Err(RpcError::Rpc {
            rpc,
            path: path_owned(),
            error: error.to_string(),
        });
    }
    Ok(json["result"].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mempool_limit_is_max_tx_bytes() {
        let limit = VALIDATOR_CONFIG
            .iter()
            .find(|(section, key, _)| (*section, *key) == ("mempool", "max_tx_bytes"))
            .map(|(_, _, literal)| literal.parse::<i64>());
        assert_eq!(limit, Some(Ok(MAX_TX_BYTES)));
    }
}
