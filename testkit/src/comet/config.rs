//! Adjusting what `cometbft testnet` wrote: each validator's `config.toml`, the genesis.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use toml_edit::{DocumentMut, value};

use super::{App, Genesis};
use hsn_ledger_api::cometbft::VALIDATOR_CONFIG;

/// One validator's `config.toml`: its application, its RPC and P2P listeners on loopback,
/// its peers (`id@host:port`, comma-separated), and the settings every HSN validator
/// carries (`VALIDATOR_CONFIG`: no peer exchange, the consensus timeouts, the mempool limit).
pub(super) fn node(home: &Path, app: &App, rpc: SocketAddr, p2p: u16, peers: &str) -> Result<()> {
    let path = home.join("config/config.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut doc: DocumentMut = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    match app {
        App::Kvstore => {
            doc["proxy_app"] = value("kvstore");
            doc["abci"] = value("socket");
        }
        // CometBFT takes a gRPC application's address as host:port, without a scheme.
        App::Grpc(addr) => {
            doc["proxy_app"] = value(addr.to_string());
            doc["abci"] = value("grpc");
        }
    }
    doc["rpc"]["laddr"] = value(format!("tcp://{rpc}"));
    doc["p2p"]["laddr"] = value(format!("tcp://127.0.0.1:{p2p}"));
    doc["p2p"]["persistent_peers"] = value(peers);
    for (section, key, literal) in VALIDATOR_CONFIG {
        doc[section][key] = value(
            literal
                .parse::<toml_edit::Value>()
                .with_context(|| format!("{section}.{key} = {literal}"))?,
        );
    }
    std::fs::write(&path, doc.to_string()).with_context(|| format!("writing {}", path.display()))
}

/// Every validator's genesis: vote extensions from height 1 (testnet writes 0, off).
/// Returns the chain id.
pub(super) fn genesis(homes: &[PathBuf], custom: Option<&Genesis>) -> Result<String> {
    let mut chain_id = String::new();
    for (i, home) in homes.iter().enumerate() {
        let path = home.join("config/genesis.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut genesis: serde_json::Value = serde_json::from_str(&text)?;
        genesis["consensus_params"]["abci"]["vote_extensions_enable_height"] = "1".into();
        if let Some(custom) = custom {
            let key_path = home.join("config/priv_validator_key.json");
            std::fs::write(&key_path, &custom.validator_keys[i])
                .with_context(|| format!("writing {}", key_path.display()))?;
            let mut validators = Vec::new();
            for (j, key) in custom.validator_keys.iter().enumerate() {
                let key: serde_json::Value = serde_json::from_str(key)
                    .with_context(|| format!("validator key {j} is not JSON"))?;
                validators.push(serde_json::json!({
                    "address": key["address"],
                    "pub_key": key["pub_key"],
                    "power": "10",
                    "name": format!("node{j}"),
                }));
            }
            genesis["validators"] = validators.into();
            genesis["app_state"] = custom.app_state.clone();
        }
        chain_id = genesis["chain_id"].as_str().unwrap_or_default().to_owned();
        std::fs::write(&path, serde_json::to_vec_pretty(&genesis)?)?;
    }
    Ok(chain_id)
}
