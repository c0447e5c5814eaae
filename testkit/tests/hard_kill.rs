//! A test process SIGKILLed mid-test (no destructors run) must leak no processes or dirs.
//!
//! Each test re-runs this test binary as a child, limited to the ignored helper below, which
//! starts an environment, prints its pids and directory, and then waits to be killed.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use hsn_testkit::node::{
    NodeImages, NodeNetwork, NodeSpec, NodeTrace, PAUSE_IMAGE, RealNode, kubelet_sysctls, missing,
};
use hsn_testkit::{ControlPlane, KwokCluster, process_alive, wait_for};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Tells the helper which environment to hold; without it the helper does nothing.
const HELPER_ENV: &str = "HSN_TESTENV_HARD_KILL_HELPER";
/// Prefix of the helper's report line.
const REPORT: &str = "HSN-TESTENV-HELPER";
/// Prefix of the line with a real node's trace, before the report.
const NODE_REPORT: &str = "HSN-TESTENV-NODE";

/// PDEATHSIG is immediate; the watchdog runs kwokctl delete, then removes the dir after 1s.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
#[ignore = "helper run by the hard_kill_* tests in a child process"]
async fn helper_hold_environment() -> Result<()> {
    let Ok(kind) = std::env::var(HELPER_ENV) else {
        return Ok(());
    };
    let (pids, dir, _keep): (Vec<u32>, PathBuf, Box<dyn std::any::Any>) = match kind.as_str() {
        "control-plane" => {
            let cp = ControlPlane::start().await?;
            (cp.pids(), cp.dir().to_path_buf(), Box::new(cp))
        }
        "kwok" => {
            let cluster = KwokCluster::create("hard-kill").await?;
            (
                cluster.pids(),
                cluster.dir().to_path_buf(),
                Box::new(cluster),
            )
        }
        "real-node" => {
            let network = NodeNetwork::create()?;
            let cluster = KwokCluster::create_for_nodes("hard-kill", network.gateway()).await?;
            let out = tempfile::tempdir()?;
            let images = NodeImages::build(&[], out.path())?;
            let node = RealNode::start(&cluster, &network, NodeSpec::new("doomed").images(&images))
                .await?;
            // A running pod: its shim and container are the node's processes too.
            let pod = serde_json::from_value(serde_json::json!({
                "metadata": {"name": "pause"},
                "spec": {"containers": [{"name": "pause", "image": PAUSE_IMAGE}]},
            }))?;
            let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
            pods.create(&Default::default(), &pod).await?;
            wait_for("the pod to run", Duration::from_secs(60), || async {
                let pod = pods.get("pause").await.ok()?;
                (pod.status?.phase.as_deref() == Some("Running")).then_some(())
            })
            .await?;
            println!("{NODE_REPORT} {}", node.trace().to_json());
            let dir = cluster.dir().to_path_buf();
            (
                cluster.pids(),
                dir,
                Box::new((node, cluster, network, out, images)),
            )
        }
        other => bail!("unknown helper kind {other}"),
    };
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    println!("{REPORT} {} {}", pids.join(","), dir.display());
    // Hold the environment until the parent SIGKILLs this process.
    std::future::pending::<()>().await;
    Ok(())
}

/// Runs the helper for `kind`, SIGKILLs it once the environment is up, checks the cleanup.
async fn hard_kill(kind: &str) -> Result<()> {
    let mut helper = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "helper_hold_environment",
            "--ignored",
            "--nocapture",
        ])
        .env(HELPER_ENV, kind)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = helper.stdout.take().context("helper stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut node = None;
    let report = tokio::time::timeout(Duration::from_secs(240), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix(NODE_REPORT) {
                node = Some(NodeTrace::from_json(rest.trim())?);
            }
            if let Some(rest) = line.strip_prefix(REPORT) {
                return Ok(rest.trim().to_string());
            }
        }
        bail!("helper exited without reporting")
    })
    .await
    .context("helper did not report in time")??;
    let (pids, dir) = report.split_once(' ').context("malformed report")?;
    let pids: Vec<u32> = pids.split(',').map(str::parse).collect::<Result<_, _>>()?;
    let dir = PathBuf::from(dir);
    ensure!(!pids.is_empty() && pids.iter().all(|&p| process_alive(p)));
    ensure!(dir.exists());

    helper.start_kill()?;
    helper.wait().await?;

    wait_for("environment processes to die", CLEANUP_TIMEOUT, || async {
        pids.iter().all(|&p| !process_alive(p)).then_some(())
    })
    .await
    .with_context(|| format!("pids {pids:?}"))?;
    wait_for(
        "the watchdog to remove the directory",
        CLEANUP_TIMEOUT,
        || async { (!dir.exists()).then_some(()) },
    )
    .await
    .with_context(|| format!("dir {}", dir.display()))?;
    if let Some(node) = node {
        ensure!(
            node.pids.len() >= 4,
            "kubelet, containerd, shim, pause: {node:?}"
        );
        wait_for(
            "the watchdog to tear the node down",
            CLEANUP_TIMEOUT,
            || async { node.leftovers().is_empty().then_some(()) },
        )
        .await
        .with_context(|| format!("left: {:?}", node.leftovers()))?;
    }
    Ok(())
}

#[tokio::test]
async fn hard_kill_control_plane() -> Result<()> {
    hard_kill("control-plane").await
}

#[tokio::test]
async fn hard_kill_kwok_cluster() -> Result<()> {
    hard_kill("kwok").await
}

/// Root only: the kubelet dies with the test (PDEATHSIG), the watchdog kills containerd,
/// the shims and the containers and removes the node's cgroups, namespace and files.
#[tokio::test]
async fn hard_kill_real_node() -> Result<()> {
    if let Some(why) = missing() {
        eprintln!("skipped: {why}");
        return Ok(());
    }
    let sysctls = kubelet_sysctls();
    hard_kill("real-node").await?;
    ensure!(
        kubelet_sysctls() == sysctls,
        "sysctls {:?}, were {sysctls:?}",
        kubelet_sysctls()
    );
    Ok(())
}
