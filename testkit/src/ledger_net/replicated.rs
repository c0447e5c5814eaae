//! A replicated ledger on loopback: `n` super nodes, each a real `hsn-ledger replica`
//! process beside a real CometBFT validator ([`crate::comet`]), their keys the validator
//! keys, one genesis.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::comet::{App, CometNet, Genesis};
use crate::ledger_fixtures::signing_key;
use anyhow::{Context as _, Result};
use ed25519_dalek::SigningKey;
use hsn_core::Role;
use hsn_ledger::replica::{AppState, validator_key_json};
use hsn_ledger_api::keys::{NodeKey, RegisteredKey, write_signing_key};

use super::LedgerProcess as Server;

/// The network of a replicated test.
pub const NETWORK: &str = "net-r";

/// Super nodes (validators + replicas) and edge keys.
#[derive(Debug)]
pub struct Replicated {
    /// Keys, stores and logs.
    pub dir: tempfile::TempDir,
    /// The super nodes' keys (also their validator keys).
    pub supers: Vec<SigningKey>,
    /// The edges' keys.
    pub edges: Vec<SigningKey>,
    /// The registry's administrator key.
    pub admin: SigningKey,
    /// The genesis settings.
    pub app_state: AppState,
    /// The CometBFT validators.
    pub net: CometNet,
    abci: Vec<SocketAddr>,
    grpc: Vec<SocketAddr>,
    replicas: Vec<Option<Server>>,
    commit_timeout: Duration,
}

impl Replicated {
    /// Writes keys, genesis and homes for `validators` supers and `edges` edges; `adjust`
    /// changes the genesis settings. Starts nothing.
    pub fn init(
        validators: usize,
        edges: usize,
        commit_timeout: Duration,
        adjust: impl FnOnce(&mut AppState),
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let supers: Vec<SigningKey> = (0..validators as u64)
            .map(|i| signing_key(20_000 + i))
            .collect();
        let edges: Vec<SigningKey> = (0..edges as u64).map(signing_key).collect();
        let admin = signing_key(30_000);
        let mut nodes = Vec::new();
        for (i, k) in supers.iter().enumerate() {
            nodes.push(RegisteredKey {
                role: Role::Super,
                key: NodeKey::of(k),
                name: format!("super-{i}"),
                retired: false,
            });
            write_signing_key(&dir.path().join(format!("super-{i}.key")), k)?;
        }
        for (i, k) in edges.iter().enumerate() {
            nodes.push(RegisteredKey {
                role: Role::Edge,
                key: NodeKey::of(k),
                name: format!("edge-{i}"),
                retired: false,
            });
        }
        let mut app_state = AppState::new(NETWORK, vec![NodeKey::of(&admin)], nodes);
        adjust(&mut app_state);
        // Every port chosen before anything binds (the replicas' gRPC ports too: an ephemeral
        // port of theirs could take a CometBFT port chosen but not bound yet).
        let ports: Vec<SocketAddr> = crate::free_ports(2 * validators)?
            .into_iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let (abci, grpc) = ports.split_at(validators);
        let (abci, grpc) = (abci.to_vec(), grpc.to_vec());
        let genesis = Genesis {
            app_state: serde_json::to_value(&app_state)?,
            validator_keys: supers.iter().map(validator_key_json).collect(),
        };
        let apps: Vec<App> = abci.iter().map(|a| App::Grpc(*a)).collect();
        let net = CometNet::init_with(&apps, Some(&genesis))?;
        Ok(Self {
            dir,
            supers,
            edges,
            admin,
            app_state,
            net,
            replicas: (0..validators).map(|_| None).collect(),
            abci,
            grpc,
            commit_timeout,
        })
    }

    /// Super node `i`'s store file.
    pub fn db(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("super-{i}.redb"))
    }

    /// Starts super node `i`: its replica, then its CometBFT node (CometBFT connects to the
    /// application, so the application comes first).
    pub fn start(&mut self, i: usize) -> Result<()> {
        if self.replicas[i].is_none() {
            let args: Vec<String> = [
                "replica".to_owned(),
                "--db".to_owned(),
                self.db(i).display().to_string(),
                "--key-file".to_owned(),
                self.dir
                    .path()
                    .join(format!("super-{i}.key"))
                    .display()
                    .to_string(),
                "--genesis".to_owned(),
                self.net.genesis_file(i).display().to_string(),
                "--abci-listen".to_owned(),
                self.abci[i].to_string(),
                "--cometbft-rpc".to_owned(),
                self.net.rpc(i).to_string(),
                "--listen".to_owned(),
                self.grpc[i].to_string(),
                "--commit-timeout-ms".to_owned(),
                self.commit_timeout.as_millis().to_string(),
            ]
            .into();
            let log = self.dir.path().join(format!("replica-{i}.log"));
            let server = Server::start(&args, &log).with_context(|| format!("replica {i}"))?;
            self.replicas[i] = Some(server);
        }
        self.net.start(i)
    }

    /// Starts every super node.
    pub fn start_all(&mut self) -> Result<()> {
        (0..self.supers.len()).try_for_each(|i| self.start(i))
    }

    /// Kills super node `i` (SIGKILL: CometBFT, then the replica), as a crash.
    pub fn kill(&mut self, i: usize) -> Result<()> {
        self.net.kill(i);
        if let Some(mut replica) = self.replicas[i].take() {
            replica.kill()?;
        }
        Ok(())
    }

    /// Kills only super node `i`'s CometBFT node (SIGKILL); its replica keeps running and
    /// CometBFT reconnects to it when started again.
    pub fn kill_cometbft(&mut self, i: usize) {
        self.net.kill(i);
    }

    /// Kills only super node `i`'s replica (SIGKILL). Its CometBFT node exits when it loses
    /// the application; it is reaped here so `start` runs it again.
    pub fn kill_replica(&mut self, i: usize) -> Result<()> {
        if let Some(mut replica) = self.replicas[i].take() {
            replica.kill()?;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.net.running(i) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.net.kill(i);
        Ok(())
    }

    /// Super node `i`'s replica; panics when it is not running.
    pub fn replica(&self, i: usize) -> &Server {
        self.replicas[i].as_ref().expect("replica running")
    }

    /// The replica's log.
    pub fn replica_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("replica-{i}.log")))
            .unwrap_or_default()
    }
}
