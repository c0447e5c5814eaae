//! CometBFT's home directory for `hsn-ledger node`: made with `cometbft init` once, then on
//! every start its genesis, keys and `config.toml` are written from what the node was
//! given (the network's genesis, the super node's key, the peers file), so what the pod's
//! volumes say is what runs. CometBFT's data (blocks, state, its last signed vote in
//! `data/priv_validator_state.json`) is never touched: a validator that forgot its last
//! vote could sign twice.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use ed25519_dalek::SigningKey;
use toml_edit::{DocumentMut, value};

use super::peers::Peer;
use crate::server::ServerError;
use hsn_ledger_api::cometbft::VALIDATOR_CONFIG;
use hsn_ledger_api::genesis::{node_key_json, validator_key_json};

/// What the home is written from.
#[derive(Clone, Debug)]
pub struct HomeSpec<'a> {
    /// The home directory.
    pub home: &'a Path,
    /// The `cometbft` binary (for `init`).
    pub cometbft: &'a Path,
    /// The network's genesis.json.
    pub genesis: &'a Path,
    /// The super node's key: its validator key and its P2P node key.
    pub key: &'a SigningKey,
    /// Where the ledger serves ABCI (gRPC).
    pub abci: SocketAddr,
    /// CometBFT's RPC address (keep it on loopback: `dial_peers` is enabled on it).
    pub rpc: SocketAddr,
    /// CometBFT's P2P listener.
    pub p2p: SocketAddr,
    /// The address other validators dial, when not the listener's.
    pub external: Option<SocketAddr>,
    /// The peers known at start.
    pub peers: &'a [Peer],
    /// CometBFT's Prometheus listener, if any.
    pub metrics: Option<SocketAddr>,
}

/// Creates the home when it is missing and writes its genesis, keys and configuration.
pub fn prepare(spec: &HomeSpec<'_>) -> Result<PathBuf, ServerError> {
    let config_dir = spec.home.join("config");
    let config = config_dir.join("config.toml");
    if !config.exists() {
        let out = Command::new(spec.cometbft)
            .arg("init")
            .arg("--home")
            .arg(spec.home)
            .output()
            .map_err(|source| {
                crate::server::io(&format!("run {} init", spec.cometbft.display()), source)
            })?;
        if !out.status.success() {
            return Err(ServerError::Replica(format!(
                "{} init --home {} failed: {}",
                spec.cometbft.display(),
                spec.home.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    let genesis = std::fs::read(spec.genesis)
        .map_err(|source| crate::server::io(&format!("read {}", spec.genesis.display()), source))?;
    write_private(&config_dir.join("genesis.json"), &genesis)?;
    write_private(
        &config_dir.join("priv_validator_key.json"),
        validator_key_json(spec.key).as_bytes(),
    )?;
    write_private(
        &config_dir.join("node_key.json"),
        node_key_json(spec.key).as_bytes(),
    )?;
    let text = std::fs::read_to_string(&config)
        .map_err(|source| crate::server::io(&format!("read {}", config.display()), source))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| ServerError::Replica(format!("{} is not TOML: {e}", config.display())))?;
    configure(&mut doc, spec);
    write_private(&config, doc.to_string().as_bytes())?;
    Ok(spec.home.to_owned())
}

/// The settings `hsn-ledger node` owns in `config.toml`; the rest stays as the user or
/// `cometbft init` left it.
fn configure(doc: &mut DocumentMut, spec: &HomeSpec<'_>) {
    // The ledger serves ABCI over gRPC; CometBFT takes its address without a scheme.
    doc["proxy_app"] = value(spec.abci.to_string());
    doc["abci"] = value("grpc");
    doc["rpc"]["laddr"] = value(format!("tcp://{}", spec.rpc));
    // `dial_peers` (peers learnt after start) is an unsafe route: served on loopback only.
    doc["rpc"]["unsafe"] = value(spec.rpc.ip().is_loopback());
    doc["p2p"]["laddr"] = value(format!("tcp://{}", spec.p2p));
    doc["p2p"]["external_address"] =
        value(spec.external.map(|a| a.to_string()).unwrap_or_default());
    let peers: Vec<String> = spec.peers.iter().map(Peer::to_string).collect();
    doc["p2p"]["persistent_peers"] = value(peers.join(","));
    for (section, key, literal) in VALIDATOR_CONFIG {
        doc[section][key] = value(
            literal
                .parse::<toml_edit::Value>()
                .expect("VALIDATOR_CONFIG holds TOML literals"),
        );
    }
    doc["instrumentation"]["prometheus"] = value(spec.metrics.is_some());
    if let Some(at) = spec.metrics {
        doc["instrumentation"]["prometheus_listen_addr"] = value(at.to_string());
    }
}

/// Replaces a file with `bytes`, readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ServerError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let what = || format!("write {}", path.display());
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|source| crate::server::io(&what(), source))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| crate::server::io(&what(), source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_settings_are_written_and_others_kept() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let peer: Peer = "0123456789abcdef0123456789abcdef01234567@10.0.0.2:26656"
            .parse()
            .unwrap();
        let spec = HomeSpec {
            home: Path::new("/nowhere"),
            cometbft: Path::new("cometbft"),
            genesis: Path::new("/nowhere/genesis.json"),
            key: &key,
            abci: "127.0.0.1:26658".parse().unwrap(),
            rpc: "127.0.0.1:26657".parse().unwrap(),
            p2p: "0.0.0.0:26656".parse().unwrap(),
            external: Some("10.0.0.1:26656".parse().unwrap()),
            peers: &[peer],
            metrics: None,
        };
        let mut doc: DocumentMut = "moniker = \"m\"\n[rpc]\nladdr = \"x\"\n[p2p]\npex = true\n"
            .parse()
            .unwrap();
        configure(&mut doc, &spec);
        assert_eq!(doc["moniker"].as_str(), Some("m"));
        assert_eq!(doc["proxy_app"].as_str(), Some("127.0.0.1:26658"));
        assert_eq!(doc["rpc"]["laddr"].as_str(), Some("tcp://127.0.0.1:26657"));
        assert_eq!(doc["rpc"]["unsafe"].as_bool(), Some(true));
        assert_eq!(doc["p2p"]["pex"].as_bool(), Some(false));
        assert_eq!(doc["consensus"]["timeout_commit"].as_str(), Some("50ms"));
        assert_eq!(
            doc["mempool"]["max_tx_bytes"].as_integer(),
            Some(hsn_ledger_api::cometbft::MAX_TX_BYTES)
        );
        assert_eq!(
            doc["p2p"]["persistent_peers"].as_str(),
            Some("0123456789abcdef0123456789abcdef01234567@10.0.0.2:26656")
        );
        assert_eq!(
            doc["p2p"]["external_address"].as_str(),
            Some("10.0.0.1:26656")
        );
        let exposed = HomeSpec {
            rpc: "0.0.0.0:26657".parse().unwrap(),
            ..spec
        };
        configure(&mut doc, &exposed);
        assert_eq!(
            doc["rpc"]["unsafe"].as_bool(),
            Some(false),
            "never off loopback"
        );
    }
}
