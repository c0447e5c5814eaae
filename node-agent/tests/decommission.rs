//! An agent stopped while its namespace is being deleted (the network leaves the cluster)
//! removes the network's pinned programs and maps; stopped while the namespace stays (a
//! restart, an upgrade) it leaves them for the next agent. The real `hsn-agent` binary in
//! cluster mode against a real kube-apiserver; needs root (BPF pins on a private bpffs).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use common::{Bpffs, table};
use hsn_api::routes::ROUTES_KEY;
use hsn_ebpf::PinDir;
use hsn_testenv::ControlPlane;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const NS: &str = "hsn-decom";
const NETWORK: &str = "metro";
const WAIT: Duration = Duration::from_secs(30);

/// Starts the agent; its output goes to `<dir>/agent-<run>.log`.
fn start(cp: &ControlPlane, dir: &Path, bpffs: &Path, run: u32) -> anyhow::Result<Child> {
    let log = fs::File::create(dir.join(format!("agent-{run}.log")))?;
    Ok(Command::new(env!("CARGO_BIN_EXE_hsn-agent"))
        .args(["--role", "edge", "--network", NETWORK, "--node-name", "n1"])
        .args(["--routes-configmap", "hsn-routes", "--namespace", NS])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--bpffs")
        .arg(bpffs)
        .args(["--no-ledger", "--metrics-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", cp.kubeconfig())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?)
}

fn log(dir: &Path, run: u32) -> String {
    fs::read_to_string(dir.join(format!("agent-{run}.log"))).unwrap_or_default()
}

/// Waits until the agent says it serves (its datapath is loaded and pinned by then).
fn wait_serving(child: &mut Child, dir: &Path, run: u32) -> anyhow::Result<()> {
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
fn stop(mut child: Child, dir: &Path, run: u32) -> anyhow::Result<()> {
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

#[tokio::test]
async fn programs_stay_for_a_restart_and_go_with_the_namespace() -> anyhow::Result<()> {
    if !common::can_bpf() {
        return Ok(());
    }
    let cp = ControlPlane::start().await?;
    let client = cp.client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(NS.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces.create(&PostParams::default(), &ns).await?;
    let routes = ConfigMap {
        metadata: ObjectMeta {
            name: Some("hsn-routes".into()),
            ..ObjectMeta::default()
        },
        data: Some(
            [(
                ROUTES_KEY.to_owned(),
                serde_json::to_string(&table("a/super-0"))?,
            )]
            .into(),
        ),
        ..ConfigMap::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &routes)
        .await?;

    let dir = tempfile::tempdir()?;
    let bpffs = Bpffs::mount()?;
    let pins = PinDir::under(bpffs.0.path(), NETWORK)?;
    let pinned = || pins.path().join("edge_slot_counters").exists();

    // A restart: the namespace stays, so do the pins.
    let mut first = start(&cp, dir.path(), bpffs.0.path(), 1)?;
    wait_serving(&mut first, dir.path(), 1)?;
    ensure!(pinned(), "the agent pinned its maps");
    stop(first, dir.path(), 1)?;
    ensure!(
        pinned(),
        "a plain stop removed the pins:\n{}",
        log(dir.path(), 1)
    );
    ensure!(log(dir.path(), 1).contains("the programs stay attached"));

    // The network leaves the cluster: its namespace is deleted while the agent runs. (This
    // API server has no namespace controller, so the namespace stays Terminating, as it
    // does while a real cluster's controller empties it.)
    let mut second = start(&cp, dir.path(), bpffs.0.path(), 2)?;
    wait_serving(&mut second, dir.path(), 2)?;
    namespaces.delete(NS, &DeleteParams::default()).await?;
    let terminating = namespaces.get_opt(NS).await?;
    ensure!(
        terminating.is_none_or(|n| n.metadata.deletion_timestamp.is_some()),
        "namespace not being deleted"
    );
    stop(second, dir.path(), 2)?;
    ensure!(
        !pins.path().exists(),
        "pins left behind:\n{}",
        log(dir.path(), 2)
    );
    ensure!(
        log(dir.path(), 2).contains("the namespace is being deleted"),
        "{}",
        log(dir.path(), 2)
    );
    Ok(())
}
