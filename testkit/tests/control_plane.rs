//! ControlPlane against the real etcd + kube-apiserver in bin/.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use hsn_testkit::{ControlPlane, process_alive, wait_for};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

/// Processes killed by Drop are reaped before it returns, but leave slack for slow machines.
const GONE_TIMEOUT: Duration = Duration::from_secs(10);

fn namespace(name: &str) -> Namespace {
    Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Waits until none of `pids` is alive and `dir` no longer exists.
async fn assert_cleaned_up(pids: Vec<u32>, dir: PathBuf) -> Result<()> {
    ensure!(!pids.is_empty(), "no pids recorded");
    wait_for("processes to exit", GONE_TIMEOUT, || async {
        pids.iter().all(|&pid| !process_alive(pid)).then_some(())
    })
    .await
    .with_context(|| format!("pids {pids:?}"))?;
    ensure!(!dir.exists(), "{} still exists", dir.display());
    Ok(())
}

#[tokio::test]
async fn start_use_and_stop() -> Result<()> {
    let started = Instant::now();
    let cp = ControlPlane::start().await?;
    eprintln!("ControlPlane::start took {:?}", started.elapsed());
    assert!(cp.server_url().starts_with("https://127.0.0.1:"));

    let namespaces: Api<Namespace> = Api::all(cp.client());
    namespaces
        .create(&PostParams::default(), &namespace("hsn-testkit-a"))
        .await?;

    let out = cp.kubectl().args(["get", "ns", "-o", "name"]).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        stdout.contains("namespace/hsn-testkit-a"),
        "kubectl output: {stdout}"
    );

    let kubeconfig = std::fs::read_to_string(cp.kubeconfig())?;
    ensure!(kubeconfig.contains("certificate-authority-data:"));
    ensure!(kubeconfig.contains("client-key-data:"));

    let (pids, dir) = (cp.pids(), cp.dir().to_path_buf());
    ensure!(pids.len() == 2 && pids.iter().all(|&p| process_alive(p)));
    cp.stop().await;
    assert_cleaned_up(pids, dir).await
}

#[tokio::test]
async fn two_side_by_side_then_drop() -> Result<()> {
    let (a, b) = tokio::join!(ControlPlane::start(), ControlPlane::start());
    let (a, b) = (a?, b?);
    ensure!(a.server_url() != b.server_url());
    ensure!(a.dir() != b.dir());

    Api::<Namespace>::all(a.client())
        .create(&PostParams::default(), &namespace("only-in-a"))
        .await?;
    let in_b = Api::<Namespace>::all(b.client())
        .get_opt("only-in-a")
        .await?;
    ensure!(in_b.is_none(), "the control planes share state");

    let (pids_a, dir_a) = (a.pids(), a.dir().to_path_buf());
    let (pids_b, dir_b) = (b.pids(), b.dir().to_path_buf());
    drop(a);
    drop(b);
    assert_cleaned_up(pids_a, dir_a).await?;
    assert_cleaned_up(pids_b, dir_b).await
}

#[tokio::test]
async fn panicking_test_still_cleans_up() -> Result<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let cp = ControlPlane::start().await.expect("start");
        let _ = tx.send((cp.pids(), cp.dir().to_path_buf()));
        panic!("deliberate panic while holding a ControlPlane");
    });
    ensure!(task.await.is_err(), "the task should have panicked");
    let (pids, dir) = rx.await?;
    assert_cleaned_up(pids, dir).await
}
