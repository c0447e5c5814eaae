//! A network's only validator, rescheduled to a node without its chain data, must not begin
//! the chain again. `hsn-ledger node` with a real CometBFT child commits blocks; started
//! again from an empty home and store (another node's disk) with the operator's `history`
//! file it waits, saying why, and commits nothing; its own home back, it goes on from its
//! height.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use hsn_core::Role;
use hsn_ledger_api::cometbft;
use hsn_ledger_api::genesis::{AppState, GenesisDoc};
use hsn_ledger_api::keys::{NodeKey, RegisteredKey, write_signing_key};
use hsn_testkit::ledger_fixtures::signing_key;
use hsn_testkit::ledger_net::LedgerProcess;

const NETWORK: &str = "net-history";

/// The node's command line, with its state (store and CometBFT home) under `state`.
fn args(dir: &Path, state: &str, ports: &[u16]) -> Vec<String> {
    let at = |i: usize| SocketAddr::from(([127, 0, 0, 1], ports[i])).to_string();
    let p = |name: &str| dir.join(name).display().to_string();
    vec![
        "node".into(),
        "--db".into(),
        p(&format!("{state}/ledger.redb")),
        "--cometbft-home".into(),
        p(&format!("{state}/cometbft")),
        "--key-file".into(),
        p("super.key"),
        "--genesis".into(),
        p("config/genesis.json"),
        "--peers-file".into(),
        p("config/peers"),
        "--history-file".into(),
        p("config/history"),
        "--abci-listen".into(),
        at(0),
        "--cometbft-rpc".into(),
        at(1),
        "--p2p-listen".into(),
        at(2),
        "--listen".into(),
        at(3),
        "--cometbft".into(),
        hsn_testkit::bin("cometbft").display().to_string(),
    ]
}

async fn height(rpc: SocketAddr) -> u64 {
    cometbft::status(rpc).await.map_or(0, |s| s.height)
}

async fn wait_height(rpc: SocketAddr, at_least: u64, log: &Path) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = height(rpc).await;
        if h >= at_least {
            return Ok(h);
        }
        if Instant::now() > deadline {
            bail!(
                "not at height {at_least}; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_only_validator_without_its_chain_data_waits_instead_of_beginning_again() -> Result<()> {
    if let Err(skip) = hsn_testkit::require_binaries(&["cometbft"]) {
        eprintln!("skipped: {skip}");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let key = signing_key(43_000);
    let admin = signing_key(43_001);
    write_signing_key(&dir.path().join("super.key"), &key)?;
    let registry = vec![RegisteredKey {
        role: Role::Super,
        key: NodeKey::of(&key),
        name: "super-0".into(),
        retired: false,
    }];
    let genesis = GenesisDoc {
        chain_id: "hsn-history-test".into(),
        genesis_time: "2026-01-01T00:00:00Z".into(),
        app_state: AppState::new(NETWORK, vec![NodeKey::of(&admin)], registry),
    };
    for sub in ["config", "node-a", "node-b"] {
        std::fs::create_dir(dir.path().join(sub))?;
    }
    std::fs::write(dir.path().join("config/genesis.json"), genesis.to_json()?)?;
    std::fs::write(dir.path().join("config/peers"), "")?;
    let ports = hsn_testkit::free_ports(4)?;
    let rpc = SocketAddr::from(([127, 0, 0, 1], ports[1]));

    // First life, on "node a": no history yet, the chain begins.
    let log_a = dir.path().join("node-a.log");
    let mut node = LedgerProcess::start(&args(dir.path(), "node-a", &ports), &log_a)?;
    let before = wait_height(rpc, 3, &log_a).await?;
    node.terminate()?;
    // The operator saw the chain commit.
    std::fs::write(dir.path().join("config/history"), "chain height 3\n")?;

    // Rescheduled to "node b", whose disk holds nothing of it: it must not start.
    let log_b = dir.path().join("node-b.log");
    let args_b = args(dir.path(), "node-b", &ports);
    let starting = std::thread::spawn(move || LedgerProcess::start(&args_b, &log_b));
    let log_b = dir.path().join("node-b.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    let read = |log: &Path| std::fs::read_to_string(log).unwrap_or_default();
    while !read(&log_b).contains("second chain") {
        ensure!(
            Instant::now() < deadline,
            "no refusal; log:\n{}",
            read(&log_b)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(height(rpc).await == 0, "a second chain began");
    ensure!(!starting.is_finished(), "it waits");
    // Stopped while it waits: it exits (SIGTERM, as the kubelet stops a container).
    let pids = std::process::Command::new("pgrep")
        .args(["-f", "node-b/ledger.redb"])
        .output()?;
    let pids: Vec<i32> = String::from_utf8_lossy(&pids.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    ensure!(!pids.is_empty(), "the waiting node's pid");
    for pid in pids {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )?;
    }
    let outcome = starting.join().expect("the starting thread");
    ensure!(outcome.is_err(), "it never announced an address");

    // Back on "node a": its own history, it goes on.
    let mut node = LedgerProcess::start(&args(dir.path(), "node-a", &ports), &log_a)?;
    let after = wait_height(rpc, before + 2, &log_a).await?;
    println!("refused on an empty home; back on its own, height {before} → {after}");
    node.terminate()?;
    Ok(())
}
