//! An agent stopped while its namespace is being deleted (the network leaves the cluster)
//! removes the network's pinned programs and maps; stopped while the namespace stays (a
//! restart, an upgrade) it leaves them for the next agent; stopped once the network no
//! longer places it (its Lease gone from its Role) it closes the open epoch, with every
//! byte counted since the last close, and then removes them. The real `hsn-agent` binary in
//! cluster mode against a real kube-apiserver, authenticated as its ServiceAccount with the
//! Role the operator writes (so the agent's API calls are checked against it too); needs
//! root (BPF pins on a private bpffs).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use common::{ACME, Bpffs, UDP_L3, udp};
use hsn_agent::spool::Spool;
use hsn_api::HsnNetwork;
use hsn_api::node::lease::edge_lease;
use hsn_api::routes::ROUTES_CONFIGMAP;
use hsn_core::Direction;
use hsn_ebpf::{EdgeConfig, EdgeDatapath, PinDir};
use hsn_testkit::operator::{EDGE_AGENT_IDENTITY, EDGE_NODE, apply_objects, edge_on, one_of_each};
use hsn_testkit::{ControlPlane, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::DeleteParams;
use kube::{Api, Client};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const NETWORK: &str = "metro";
const WAIT: Duration = Duration::from_secs(30);

/// The test's network: 10 s epochs, tenant acme.
fn network() -> anyhow::Result<HsnNetwork> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": NETWORK, "namespace": "edge-net", "uid": "0000-1111"},
        "spec": {
            "superNodes": {"replicas": 1, "image": "agent:1"},
            "edgePools": [{"name": "bb", "sliceType": "eMBB"}],
            "metering": {
                "epochSeconds": 10,
                "tenants": [{"name": "acme", "id": ACME.get(), "prefixes": ["10.7.0.0/16"]}]
            }
        }
    }))?)
}

/// What the operator writes into a member besides workloads.
const MEMBER_KINDS: [&str; 6] = [
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "Lease",
    "ConfigMap",
];

/// The member's namespace, agent identity and routes ConfigMap as the operator writes
/// them (no workloads: the test is the workload). Returns the namespace.
async fn apply_network(client: &Client) -> anyhow::Result<String> {
    apply_objects(client, &one_of_each(&network()?), &MEMBER_KINDS).await
}

/// A kubeconfig for the edge agents' ServiceAccount in `ns`: the admin one's server and CA,
/// a fresh token (TokenRequest) as the user.
fn agent_kubeconfig(cp: &ControlPlane, ns: &str, path: &Path) -> anyhow::Result<()> {
    let run = |cmd: &mut Command| -> anyhow::Result<String> {
        let out = cmd.output()?;
        ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    };
    let token = run(cp
        .kubectl()
        .args(["create", "token", EDGE_AGENT_IDENTITY, "-n", ns]))?;
    let mut config: serde_json::Value = serde_json::from_str(&run(cp
        .kubectl()
        .args(["config", "view", "--raw", "-o", "json"]))?)?;
    config["users"][0]["user"] = serde_json::json!({"token": token.trim()});
    fs::write(path, serde_json::to_vec(&config)?)?;
    Ok(())
}

/// A client with the agent's credentials.
async fn agent_client(kubeconfig: &Path) -> anyhow::Result<Client> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
    Ok(Client::try_from(config)?)
}

/// Starts the agent as `kubeconfig`'s user; its output goes to `<dir>/agent-<run>.log`.
/// A started agent, killed when dropped (a failed step must not leave it running, holding
/// its maps).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn start(
    kubeconfig: &Path,
    ns: &str,
    dir: &Path,
    bpffs: &Path,
    run: u32,
) -> anyhow::Result<Running> {
    let log = fs::File::create(dir.join(format!("agent-{run}.log")))?;
    Ok(Running(
        Command::new(env!("CARGO_BIN_EXE_hsn-agent"))
            .args([
                "--role",
                "edge",
                "--network",
                NETWORK,
                "--node-name",
                EDGE_NODE,
            ])
            .args(["--pod-name", "hsn-edge-bb-x1", "--pod-uid", "u-x1"])
            .args(["--routes-configmap", ROUTES_CONFIGMAP, "--namespace", ns])
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--bpffs")
            .arg(bpffs)
            .args(["--no-ledger", "--metrics-addr", "127.0.0.1:0"])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?,
    ))
}

fn log(dir: &Path, run: u32) -> String {
    fs::read_to_string(dir.join(format!("agent-{run}.log"))).unwrap_or_default()
}

/// Waits until the agent says it serves (its datapath is loaded and pinned by then).
fn wait_serving(Running(child): &mut Running, dir: &Path, run: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    while !log(dir, run).contains("serving /metrics") {
        if let Some(status) = child.try_wait()? {
            bail!("agent exited with {status}:\n{}", log(dir, run));
        }
        ensure!(
            Instant::now() < deadline,
            "agent not serving:\n{}",
            log(dir, run)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// SIGTERM, then waits for a clean exit.
fn stop(mut running: Running, dir: &Path, run: u32) -> anyhow::Result<()> {
    let child = &mut running.0;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM)?;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait()? {
            ensure!(
                status.success(),
                "agent exited with {status}:\n{}",
                log(dir, run)
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            child.kill()?;
            bail!("agent did not stop on SIGTERM:\n{}", log(dir, run));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pins of run `run` are gone, and its log says why.
fn removed(pins: &PinDir, dir: &Path, run: u32, reason: &str) -> anyhow::Result<()> {
    let log = log(dir, run);
    ensure!(!pins.path().exists(), "pins left behind:\n{log}");
    ensure!(
        log.contains(reason),
        "the log does not say {reason:?}:\n{log}"
    );
    Ok(())
}

/// The epoch files in the agent's spool.
fn spool_files(dir: &Path) -> anyhow::Result<usize> {
    if !dir.exists() {
        return Ok(0);
    }
    Ok(Spool::open(dir)?.read_all()?.len())
}

/// Packets and bytes of acme uplink over every epoch file in the spool.
fn acme_uplink(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let mut total = (0, 0);
    for file in Spool::open(dir)?.read_all()? {
        for r in file.records {
            if r.tenant == "acme" && r.direction == Direction::Uplink {
                total.0 += r.packets;
                total.1 += r.bytes;
            }
        }
    }
    Ok(total)
}

#[tokio::test]
async fn programs_stay_for_a_restart_and_go_when_no_agent_follows() -> anyhow::Result<()> {
    if !common::can_bpf() {
        return Ok(());
    }
    let cp = ControlPlane::start().await?;
    let client = cp.client();
    let ns = apply_network(&client).await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);

    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("agent.kubeconfig");
    agent_kubeconfig(&cp, &ns, &kubeconfig)?;
    let bpffs = Bpffs::mount()?;
    let pins = PinDir::under(bpffs.0.path(), NETWORK)?;
    let pinned = || pins.path().join("edge_slot_counters").exists();
    let start = |run| start(&kubeconfig, &ns, dir.path(), bpffs.0.path(), run);

    // A restart: the namespace stays, so do the pins. The agent, as its ServiceAccount,
    // watched its routes and renewed the Lease the operator created: the Role allows what
    // it does.
    let mut first = start(1)?;
    wait_serving(&mut first, dir.path(), 1)?;
    wait_for("the agent's Lease renewed", WAIT, || async {
        let lease = leases
            .get_opt(&edge_lease(EDGE_NODE))
            .await
            .ok()
            .flatten()?;
        lease.spec?.renew_time.map(drop)
    })
    .await?;
    ensure!(pinned(), "the agent pinned its maps");
    stop(first, dir.path(), 1)?;
    ensure!(
        pinned(),
        "a plain stop removed the pins:\n{}",
        log(dir.path(), 1)
    );
    ensure!(log(dir.path(), 1).contains("the programs stay attached"));

    // Its ServiceAccount is deleted (a namespace being emptied often loses it before its
    // pods stop): the namespace read is refused as unauthenticated, which means leaving.
    let mut second = start(2)?;
    wait_serving(&mut second, dir.path(), 2)?;
    accounts
        .delete(EDGE_AGENT_IDENTITY, &DeleteParams::default())
        .await?;
    // kube-apiserver keeps accepting a token it accepted for up to 10 s (its token
    // cache) after the ServiceAccount is gone: wait until it refuses the agent's.
    let as_agent = agent_client(&kubeconfig).await?;
    wait_for("the agent's token to be refused", WAIT, || async {
        match Api::<Namespace>::all(as_agent.clone()).get(&ns).await {
            Err(kube::Error::Api(status)) if status.code == 401 => Some(()),
            _ => None,
        }
    })
    .await?;
    stop(second, dir.path(), 2)?;
    removed(&pins, dir.path(), 2, "ServiceAccount was deleted")?;

    // The network stays, its plan drops this node: the operator takes the agent's Lease
    // out of the edge agents' Role (before it changes the workloads, so a stopped agent
    // finds it refused). Bytes counted after the agent's first epoch closed, then the stop:
    // the agent closes the epoch open then, at its end, with every one of those bytes, and
    // only then removes the programs.
    apply_network(&client).await?;
    agent_kubeconfig(&cp, &ns, &kubeconfig)?;
    let mut third = start(3)?;
    wait_serving(&mut third, dir.path(), 3)?;
    let spool_dir = dir.path().join("state").join("spool");
    let closed_before = spool_files(&spool_dir)?;
    let deadline = Instant::now() + WAIT;
    while spool_files(&spool_dir)? == closed_before {
        ensure!(
            Instant::now() < deadline,
            "no epoch closed:\n{}",
            log(dir.path(), 3)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let counted_before = acme_uplink(&spool_dir)?;
    let sent = 250;
    {
        // The agent's pinned maps, through a program of the test's own: what it counts
        // lands in the agent's counters.
        let dp = EdgeDatapath::load(&EdgeConfig {
            pin: Some(pins.clone()),
            redirect_uplink: false,
        })?;
        for _ in 0..sent {
            dp.run_packet(&udp([100, 64, 0, 10], [10, 7, 0, 10]))?;
        }
    }
    let network = network()?;
    apply_objects(&client, &edge_on(&network, "n2"), &["Namespace", "Role"]).await?;
    let as_agent = agent_client(&kubeconfig).await?;
    wait_for("the agent's Lease to be refused to it", WAIT, || async {
        match Api::<Lease>::namespaced(as_agent.clone(), &ns)
            .get(&edge_lease(EDGE_NODE))
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 403 => Some(()),
            _ => None,
        }
    })
    .await?;
    stop(third, dir.path(), 3)?;
    removed(&pins, dir.path(), 3, "no longer places this agent here")?;
    let counted = acme_uplink(&spool_dir)?;
    ensure!(
        counted == (counted_before.0 + sent, counted_before.1 + sent * UDP_L3),
        "acme uplink in the spool: {counted:?} after, {counted_before:?} before {sent} packets:\n{}",
        log(dir.path(), 3)
    );
    ensure!(log(dir.path(), 3).contains("draining: closing the open epoch at its end"));

    // The namespace is deleted while the agent runs. (This API server has no namespace
    // controller, so the namespace stays Terminating, as while a real cluster empties it.)
    apply_network(&client).await?;
    agent_kubeconfig(&cp, &ns, &kubeconfig)?;
    let mut fourth = start(4)?;
    wait_serving(&mut fourth, dir.path(), 4)?;
    ensure!(pinned(), "the agent pinned its maps again");
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    let terminating = namespaces.get_opt(&ns).await?;
    ensure!(
        terminating.is_none_or(|n| n.metadata.deletion_timestamp.is_some()),
        "namespace not being deleted"
    );
    stop(fourth, dir.path(), 4)?;
    removed(&pins, dir.path(), 4, "the namespace is being deleted")?;
    Ok(())
}
