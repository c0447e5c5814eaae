//! CometBFT validator networks on loopback: `bin/cometbft` (built by `make tools`, version in
//! `hack/versions.env`), one process per validator, each with its own home, ports and
//! ABCI application, equal voting power, vote extensions on from height 1, and consensus
//! timeouts tuned for loopback (facts behind them: `../shared/design/cometbft.md`).
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! use hsn_testkit::comet::{App, CometNet};
//! let mut net = CometNet::init(&[App::Kvstore, App::Kvstore, App::Kvstore, App::Kvstore])?;
//! net.start_all()?;
//! net.wait_height(0, 3, std::time::Duration::from_secs(60)).await?;
//! let result = net.broadcast_tx_sync(1, b"k=v").await?;
//! assert_eq!(result.code, 0);
//! # Ok(()) }
//! ```
//!
//! Validators are killed with SIGKILL when dropped and when the test process dies (their
//! parent-death signal); a watchdog removes the directory then.

mod config;
mod rpc;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use tempfile::TempDir;

pub use rpc::{Status, TxResult};

use crate::cluster::ports::free_ports;
use crate::cluster::process::{Proc, tail};
use crate::cluster::watchdog::Watchdog;
use crate::{bin, require_binaries, wait_for_ok};

/// The ABCI application a validator talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum App {
    /// CometBFT's built-in key-value store (`key=value` transactions): for testing the
    /// harness and CometBFT itself.
    Kvstore,
    /// An application serving ABCI over gRPC at this address.
    Grpc(SocketAddr),
}

/// A genesis of the caller's: the application state, and each validator's CometBFT key
/// (`priv_validator_key.json`, e.g. `hsn-ledger validator-key`'s), which also make the
/// genesis validator set (equal power).
#[derive(Clone, Debug)]
pub struct Genesis {
    /// `app_state`.
    pub app_state: serde_json::Value,
    /// One `priv_validator_key.json` per validator.
    pub validator_keys: Vec<String>,
}

/// One validator's process and addresses.
#[derive(Debug)]
struct Validator {
    home: PathBuf,
    rpc: SocketAddr,
    proc: Option<Proc>,
}

/// A network of validators on loopback.
#[derive(Debug)]
pub struct CometNet {
    validators: Vec<Validator>,
    chain_id: String,
    watchdog: Watchdog,
    dir: Option<TempDir>,
}

impl CometNet {
    /// Writes the homes of one validator per entry of `apps` (`cometbft testnet`, then each
    /// `config.toml` and the genesis adjusted); starts nothing.
    pub fn init(apps: &[App]) -> Result<Self> {
        Self::init_with(apps, None)
    }

    /// [`Self::init`] with the caller's genesis (application state, validator keys).
    pub fn init_with(apps: &[App], genesis: Option<&Genesis>) -> Result<Self> {
        require_binaries(&["cometbft"])?;
        if apps.is_empty() {
            bail!("a network needs at least one validator");
        }
        if let Some(g) = genesis
            && g.validator_keys.len() != apps.len()
        {
            bail!(
                "{} validator keys for {} validators",
                g.validator_keys.len(),
                apps.len()
            );
        }
        let dir = crate::cluster::temp_dir("hsn-comet-")?;
        let watchdog = Watchdog::spawn(r#"sleep 1; rm -rf -- "$1""#, [dir.path()])?;
        let out = dir.path().join("net");
        let n = apps.len().to_string();
        run(Command::new(bin("cometbft"))
            .args(["testnet", "--v", &n, "--o"])
            .arg(&out)
            .args([
                "--starting-ip-address",
                "127.0.0.1",
                "--populate-persistent-peers=false",
            ]))?;
        let ports = free_ports(2 * apps.len())?;
        let homes: Vec<PathBuf> = (0..apps.len())
            .map(|i| out.join(format!("node{i}")))
            .collect();
        let mut peers = Vec::new();
        for (i, home) in homes.iter().enumerate() {
            let id = run(Command::new(bin("cometbft"))
                .args(["show-node-id", "--home"])
                .arg(home))?;
            peers.push(format!("{}@127.0.0.1:{}", id.trim(), ports[2 * i + 1]));
        }
        let chain_id = config::genesis(&homes, genesis)?;
        let mut validators = Vec::new();
        for (i, (home, app)) in homes.iter().zip(apps).enumerate() {
            let rpc = SocketAddr::from(([127, 0, 0, 1], ports[2 * i]));
            let others: Vec<&str> = peers
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| p.as_str())
                .collect();
            config::node(home, app, rpc, ports[2 * i + 1], &others.join(","))?;
            validators.push(Validator {
                home: home.clone(),
                rpc,
                proc: None,
            });
        }
        Ok(Self {
            validators,
            chain_id,
            watchdog,
            dir: Some(dir),
        })
    }

    /// How many validators.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Whether there are none (never: [`Self::init`] refuses that).
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The chain id all validators share.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// Starts validator `i` (`cometbft start`), which then connects to its application and
    /// its peers; a validator already running is left alone.
    pub fn start(&mut self, i: usize) -> Result<()> {
        let v = &mut self.validators[i];
        if v.proc.is_some() {
            return Ok(());
        }
        let mut cmd = Command::new(bin("cometbft"));
        cmd.args(["start", "--home"]).arg(&v.home);
        let log = v.home.join("cometbft.log");
        // A restarted validator's earlier log is kept as cometbft.previous.log.
        let previous = std::fs::read(&log).unwrap_or_default();
        let proc = Proc::spawn(&format!("cometbft validator {i}"), cmd, &log)?;
        if !previous.is_empty() {
            let _ = std::fs::write(v.home.join("cometbft.previous.log"), previous);
        }
        v.proc = Some(proc);
        Ok(())
    }

    /// Starts every validator not running.
    pub fn start_all(&mut self) -> Result<()> {
        (0..self.len()).try_for_each(|i| self.start(i))
    }

    /// Kills validator `i` (SIGKILL, as a crash) and waits until it is gone.
    pub fn kill(&mut self, i: usize) {
        if let Some(proc) = self.validators[i].proc.take() {
            crate::cluster::process::kill_pid(proc.pid());
            drop(proc);
        }
    }

    /// Whether validator `i`'s process runs.
    pub fn running(&mut self, i: usize) -> bool {
        self.validators[i]
            .proc
            .as_mut()
            .is_some_and(|p| p.check_running().is_ok())
    }

    /// Validator `i`'s home (config, data, `cometbft.log`).
    pub fn home(&self, i: usize) -> &Path {
        &self.validators[i].home
    }

    /// Validator `i`'s genesis file.
    pub fn genesis_file(&self, i: usize) -> PathBuf {
        self.validators[i].home.join("config/genesis.json")
    }

    /// Validator `i`'s RPC address (`http://<addr>`).
    pub fn rpc(&self, i: usize) -> SocketAddr {
        self.validators[i].rpc
    }

    /// The last lines of validator `i`'s log.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        tail(&self.validators[i].home.join("cometbft.log"), lines)
    }

    /// Validator `i`'s `/status`: latest height and app hash, whether it is catching up.
    pub async fn status(&self, i: usize) -> Result<Status> {
        rpc::status(self.rpc(i)).await
    }

    /// `broadcast_tx_sync` of `tx` through validator `i`: the result of its CheckTx.
    pub async fn broadcast_tx_sync(&self, i: usize, tx: &[u8]) -> Result<TxResult> {
        rpc::broadcast_tx_sync(self.rpc(i), tx).await
    }

    /// `abci_query` of `data` at validator `i`: the value its application returns.
    pub async fn abci_query(&self, i: usize, data: &[u8]) -> Result<Vec<u8>> {
        rpc::abci_query(self.rpc(i), data).await
    }

    /// Waits until validator `i` has committed `height`; fails early, with its log, if the
    /// validator exits.
    pub async fn wait_height(
        &mut self,
        i: usize,
        height: u64,
        timeout: Duration,
    ) -> Result<Status> {
        let what = format!("validator {i} at height {height}");
        let rpc_addr = self.rpc(i);
        let result = wait_for_ok(&what, timeout, || async move {
            let status = rpc::status(rpc_addr).await.map_err(|e| format!("{e:#}"))?;
            if status.height >= height {
                Ok(status)
            } else {
                Err(format!("at height {}", status.height))
            }
        })
        .await;
        match result {
            Ok(status) => Ok(status),
            Err(e) => {
                let alive = self.running(i);
                bail!(
                    "{e} (process {}); its log:\n{}",
                    if alive { "running" } else { "exited" },
                    self.log_tail(i, 30)
                )
            }
        }
    }
}

impl Drop for CometNet {
    fn drop(&mut self) {
        for v in &mut self.validators {
            drop(v.proc.take());
        }
        if let Some(dir) = self.dir.take()
            && dir.close().is_ok()
        {
            self.watchdog.disarm();
        }
    }
}

/// Runs `cmd` to completion; stdout, or an error with stderr.
fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
