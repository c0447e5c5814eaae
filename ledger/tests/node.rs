//! `hsn-ledger node`, as a super-node pod runs it: three processes, each its replica plus
//! a real CometBFT child, from one genesis written by `GenesisDoc` (as the operator writes
//! it) and a peers file. They start knowing no peer (as pods do before their addresses are
//! known); once the peers file lists them they dial each other and commit; one of them has
//! neither genesis nor peers in the files the kubelet mounts (as before the operator wrote
//! its ConfigMap, or before the kubelet refreshed it) and gets both from its agent's copies
//! (`--relayed-config`), waiting for the genesis meanwhile; a submission
//! through one is on all; an edge outside the genesis is refused until the administrator's
//! registry change, published in a file every node reads, puts it in; a node stopped with SIGTERM takes its CometBFT down with it
//! (CometBFT first) and, restarted, catches up; a node whose CometBFT dies exits non-zero.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use ed25519_dalek::SigningKey;
use hsn_core::{Direction, Role};
use hsn_ledger_api::cometbft;
use hsn_ledger_api::genesis::{AppState, GenesisDoc, node_id};
use hsn_ledger_api::keys::{NodeKey, RegisteredKey, write_signing_key};
use hsn_ledger_api::pb;
use hsn_ledger_api::registry::{sign_replacement, transaction};
use hsn_testkit::ledger_fixtures::{Slot, signing_key};
use hsn_testkit::ledger_net::LedgerProcess;
use tonic::Code;

const NETWORK: &str = "net-node";
const NODES: usize = 3;
/// The node whose genesis and peers come only through its relay directory.
const RELAYED: usize = NODES - 1;

struct Node {
    key: SigningKey,
    abci: SocketAddr,
    rpc: SocketAddr,
    p2p: SocketAddr,
    grpc: SocketAddr,
}

struct Net {
    dir: tempfile::TempDir,
    nodes: Vec<Node>,
    edge: SigningKey,
    admin: SigningKey,
    registry: Vec<RegisteredKey>,
    procs: Vec<Option<LedgerProcess>>,
}

impl Net {
    fn init() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let ports = hsn_testkit::free_ports(4 * NODES)?;
        let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let nodes: Vec<Node> = (0..NODES)
            .map(|i| Node {
                key: signing_key(40_000 + i as u64),
                abci: at(ports[4 * i]),
                rpc: at(ports[4 * i + 1]),
                p2p: at(ports[4 * i + 2]),
                grpc: at(ports[4 * i + 3]),
            })
            .collect();
        let edge = signing_key(41_000);
        let mut registry: Vec<RegisteredKey> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| RegisteredKey {
                role: Role::Super,
                key: NodeKey::of(&n.key),
                name: format!("super-{i}"),
                retired: false,
            })
            .collect();
        registry.push(RegisteredKey {
            role: Role::Edge,
            key: NodeKey::of(&edge),
            name: "edge-0".into(),
            retired: false,
        });
        let admin = signing_key(42_000);
        let mut app_state = AppState::new(NETWORK, vec![NodeKey::of(&admin)], registry.clone());
        app_state.epoch_seconds = 2;
        app_state.late_window_seconds = 3;
        let genesis = GenesisDoc {
            chain_id: "hsn-node-test".into(),
            genesis_time: "2026-01-01T00:00:00Z".into(),
            app_state,
        };
        std::fs::write(dir.path().join("genesis.json"), genesis.to_json()?)?;
        for (i, n) in nodes.iter().enumerate() {
            write_signing_key(&dir.path().join(format!("super-{i}.key")), &n.key)?;
            // No peers known yet: the pods' addresses come later.
            std::fs::write(dir.path().join(format!("peers-{i}")), "")?;
            std::fs::create_dir(dir.path().join(format!("relay-{i}")))?;
        }
        // The relayed node's mount has no genesis.
        std::fs::create_dir(dir.path().join("mount"))?;
        Ok(Self {
            dir,
            nodes,
            edge,
            admin,
            registry,
            procs: (0..NODES).map(|_| None).collect(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn start(&mut self, i: usize) -> Result<()> {
        let (args, log) = self.args(i);
        self.procs[i] =
            Some(LedgerProcess::start(&args, &log).with_context(|| format!("node {i}"))?);
        Ok(())
    }

    /// Node `i`'s command line and log file.
    fn args(&self, i: usize) -> (Vec<String>, PathBuf) {
        let n = &self.nodes[i];
        let p = |name: String| self.path(&name).display().to_string();
        let genesis = if i == RELAYED {
            "mount/genesis.json"
        } else {
            "genesis.json"
        };
        let args: Vec<String> = vec![
            "node".into(),
            "--db".into(),
            p(format!("super-{i}.redb")),
            "--key-file".into(),
            p(format!("super-{i}.key")),
            "--genesis".into(),
            p(genesis.into()),
            "--relayed-config".into(),
            p(format!("relay-{i}")),
            "--abci-listen".into(),
            n.abci.to_string(),
            "--cometbft-rpc".into(),
            n.rpc.to_string(),
            "--listen".into(),
            n.grpc.to_string(),
            "--commit-timeout-ms".into(),
            "3000".into(),
            "--cometbft-home".into(),
            p(format!("comet-{i}")),
            "--cometbft".into(),
            hsn_testkit::bin("cometbft").display().to_string(),
            "--p2p-listen".into(),
            n.p2p.to_string(),
            "--peers-file".into(),
            p(format!("peers-{i}")),
            "--registry-file".into(),
            p("registry".into()),
        ];
        (args, self.path(&format!("node-{i}.log")))
    }

    /// The peers in every node's mounted file, but the relayed node's: in its relay
    /// directory (its mounted file stays empty, and older).
    fn write_peers(&self) -> Result<()> {
        let lines: String = self
            .nodes
            .iter()
            .map(|n| format!("{}@{}\n", node_id(&NodeKey::of(&n.key)), n.p2p))
            .collect();
        for i in 0..NODES {
            let file = format!("peers-{i}");
            let path = if i == RELAYED {
                self.path(&format!("relay-{i}")).join(file)
            } else {
                self.path(&file)
            };
            relay_write(&path, &lines)?;
        }
        Ok(())
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.path(&format!("node-{i}.log"))).unwrap_or_default()
    }

    /// Waits until node `i`'s log holds `line`; `what` names the wait in the error.
    async fn wait_log(&self, i: usize, line: &str, within: Duration, what: &str) -> Result<()> {
        let deadline = Instant::now() + within;
        while !self.log(i).contains(line) {
            ensure!(
                Instant::now() < deadline,
                "{what}; log:\n{}",
                tail(&self.log(i))
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    async fn wait_height(&self, i: usize, height: u64, within: Duration) -> Result<u64> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(s) = cometbft::status(self.nodes[i].rpc).await
                && s.height >= height
            {
                return Ok(s.height);
            }
            if Instant::now() > deadline {
                bail!(
                    "node {i} not at height {height} within {within:?}; log:\n{}",
                    tail(&self.log(i))
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn submit(
        &self,
        via: usize,
        request: pb::SubmitRecordsRequest,
    ) -> Result<pb::SubmitRecordsResponse> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let proc = self.procs[via].as_ref().context("running")?;
        loop {
            let mut client = proc.client().await?;
            match client.submit_records(request.clone()).await {
                Ok(r) => return Ok(r.into_inner()),
                Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => bail!("submit through node {via}: {e}"),
            }
        }
    }

    /// Ledger blocks (sealed epochs) on node `i`.
    async fn ledger_blocks(&self, i: usize) -> Result<u64> {
        let mut client = self.procs[i].as_ref().context("running")?.client().await?;
        let status = client.status(pb::StatusRequest {}).await?.into_inner();
        Ok(status.height)
    }
}

/// Writes `path` whole, as the agent does (a reader never sees half a file).
fn relay_write(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A refusal while the change is on its way is expected; anything else is shown.
fn tracing_wait(e: &anyhow::Error) {
    if !format!("{e:#}").contains("is not registered") {
        eprintln!("waiting for the registry change: {e:#}");
    }
}

fn cometbft_running(home: &Path) -> bool {
    let Ok(out) = std::process::Command::new("pgrep")
        .args(["-f", &home.display().to_string()])
        .output()
    else {
        return false;
    };
    !out.stdout.is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_meet_through_the_peers_file_commit_and_stop_cleanly() -> Result<()> {
    if let Err(skip) = hsn_testkit::require_binaries(&["cometbft"]) {
        eprintln!("skipped: {skip}");
        return Ok(());
    }
    let mut net = Net::init()?;
    for i in (0..NODES).filter(|&i| i != RELAYED) {
        net.start(i)?;
    }
    // It announces its address once it has a genesis to serve.
    let (args, log) = net.args(RELAYED);
    let relayed = std::thread::spawn(move || LedgerProcess::start(&args, &log));
    // Three equal validators need all three for a quorum: no block without peers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let alone = cometbft::status(net.nodes[0].rpc).await?.height;
    ensure!(alone == 0, "a block without a quorum: height {alone}");
    // The relayed node waits for its genesis, then its agent copies it.
    ensure!(
        net.log(RELAYED).contains("waiting for the file")
            && !net.log(RELAYED).contains("CometBFT started"),
        "log:\n{}",
        tail(&net.log(RELAYED))
    );
    let genesis = std::fs::read_to_string(net.path("genesis.json"))?;
    relay_write(
        &net.path(&format!("relay-{RELAYED}")).join("genesis.json"),
        &genesis,
    )?;
    let started = relayed.join().expect("the starting thread");
    net.procs[RELAYED] = Some(started.with_context(|| format!("node {RELAYED}"))?);
    net.wait_log(
        RELAYED,
        "CometBFT started",
        Duration::from_secs(30),
        "no start with a relayed genesis",
    )
    .await?;

    net.write_peers()?;
    net.wait_height(0, 3, Duration::from_secs(60)).await?;
    // Every node reads the file again every 2 s and dials who is new there; the chain may
    // reach that height first, on the connections the others made to a node.
    for i in 0..NODES {
        let what = format!("node {i} learnt its peers from the file");
        net.wait_log(i, "dialling a new peer", Duration::from_secs(30), &what)
            .await?;
    }

    let epoch = common::now() / 2;
    let slot = Slot::new(NETWORK, epoch, "video", Direction::Uplink);
    let request = pb::SubmitRecordsRequest {
        records: vec![slot.record(&net.edge, 1_000, 1).to_pb()],
        observations: vec![
            slot.observation(&net.nodes[2].key, NodeKey::of(&net.edge), 1_000)
                .to_pb(),
        ],
    };
    let done = net.submit(1, request).await?;
    assert_eq!((done.stored, done.attested), (2, 1), "{done:?}");
    let height = net.wait_height(1, 0, Duration::ZERO).await?;
    for i in 0..NODES {
        net.wait_height(i, height, Duration::from_secs(30)).await?;
        // The record's epoch seals by block time, after its 3 s late window, everywhere.
        let deadline = Instant::now() + Duration::from_secs(60);
        while net.ledger_blocks(i).await? < 1 {
            ensure!(Instant::now() < deadline, "node {i} sealed no ledger block");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    // An edge outside the genesis is refused, until the administrator's change (a
    // replacement naming the whole registry, nonce of the writer's choosing) is published.
    let late = signing_key(41_001);
    let slot = Slot::new(NETWORK, common::now() / 2, "video", Direction::Uplink);
    let late_request = pb::SubmitRecordsRequest {
        records: vec![slot.record(&late, 500, 1).to_pb()],
        observations: vec![],
    };
    let refused = net.submit(0, late_request.clone()).await;
    ensure!(
        format!("{refused:?}").contains("is not registered"),
        "an unknown key: {refused:?}"
    );
    let mut whole = net.registry.clone();
    whole.push(RegisteredKey {
        role: Role::Edge,
        key: NodeKey::of(&late),
        name: "edge-late".into(),
        retired: false,
    });
    let change = sign_replacement(NETWORK, 7, &whole, &net.admin);
    std::fs::write(net.path("registry"), hex::encode(transaction(change)))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let accepted = loop {
        let slot = Slot::new(NETWORK, common::now() / 2, "video", Direction::Uplink);
        let request = pb::SubmitRecordsRequest {
            records: vec![slot.record(&late, 500, 1).to_pb()],
            observations: vec![],
        };
        match net.submit(0, request).await {
            Ok(done) => break done,
            Err(e) if Instant::now() < deadline => {
                tracing_wait(&e);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => bail!("the late edge is still refused: {e:#}"),
        }
    };
    ensure!(accepted.stored == 1, "{accepted:?}");
    ensure!(
        (0..NODES).any(|i| net.log(i).contains("registry change submitted")),
        "a node delivered the change"
    );

    // The same through gRPC (what a super agent does when the ConfigMap changes): taken at
    // once, in the registry within a block or two; handed again once applied, the node
    // knows it already (or refuses it as stale); a transaction of another kind is not a
    // registry change.
    let grpc = signing_key(41_002);
    whole.push(RegisteredKey {
        role: Role::Edge,
        key: NodeKey::of(&grpc),
        name: "edge-grpc".into(),
        retired: false,
    });
    let tx = transaction(sign_replacement(NETWORK, 8, &whole, &net.admin));
    let mut client = net.procs[1].as_ref().context("running")?.client().await?;
    let taken = client
        .submit_registry_change(pb::SubmitRegistryChangeRequest {
            transaction: tx.clone(),
        })
        .await?
        .into_inner();
    ensure!(taken.taken, "{taken:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let registry = client
            .get_registry(pb::GetRegistryRequest {})
            .await?
            .into_inner();
        if registry.nodes.iter().any(|n| n.name == "edge-grpc") {
            break;
        }
        ensure!(Instant::now() < deadline, "not registered: {registry:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = client
        .submit_registry_change(pb::SubmitRegistryChangeRequest { transaction: tx })
        .await?
        .into_inner();
    ensure!(
        again.detail.contains("already seen") || (!again.taken && again.detail.contains("nonce")),
        "{again:?}"
    );
    let other = pb::LedgerTx {
        kind: Some(pb::ledger_tx::Kind::Submit(
            pb::SubmitRecordsRequest::default(),
        )),
    };
    let refused = client
        .submit_registry_change(pb::SubmitRegistryChangeRequest {
            transaction: prost::Message::encode_to_vec(&other),
        })
        .await;
    ensure!(
        refused
            .as_ref()
            .is_err_and(|s| s.code() == Code::InvalidArgument),
        "{refused:?}"
    );

    // SIGTERM: CometBFT stops first, then the replica; the process exits cleanly.
    let home0 = net.path("comet-0");
    net.procs[0].as_mut().context("running")?.terminate()?;
    ensure!(!cometbft_running(&home0), "CometBFT outlived its node");
    ensure!(
        net.log(0).contains("CometBFT stopped"),
        "log:\n{}",
        tail(&net.log(0))
    );
    // Restarted from its home and store (its peers now in config.toml): it catches up.
    let stopped = cometbft::status(net.nodes[1].rpc).await?.height;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let later = cometbft::status(net.nodes[1].rpc).await?.height;
    ensure!(
        later <= stopped + 1,
        "two of three validators are no quorum, yet {stopped} → {later}"
    );
    net.start(0)?;
    net.wait_height(0, later + 3, Duration::from_secs(60))
        .await?;

    // Its CometBFT killed: the node stops its replica and exits non-zero (the pod restarts).
    let pid = std::process::Command::new("pgrep")
        .args([
            "-f",
            &format!("start --home {}", net.path("comet-2").display()),
        ])
        .output()?;
    let pid: i32 = String::from_utf8_lossy(&pid.stdout)
        .trim()
        .parse()
        .context("CometBFT pid of node 2")?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let status = net.procs[2]
        .as_mut()
        .context("running")?
        .wait_exit(Duration::from_secs(20))
        .with_context(|| format!("log:\n{}", tail(&net.log(2))))?;
    ensure!(!status.success(), "exit status {status}");
    ensure!(
        net.log(2).contains("CometBFT exited"),
        "log:\n{}",
        tail(&net.log(2))
    );
    Ok(())
}
