//! KwokCluster against the real kwokctl, kwok and Kubernetes binaries in bin/.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use hsn_testkit::{FakeNode, KwokCluster, process_alive, wait_for, wait_for_ok};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};

/// Scheduling plus kwok's fake container start; generous for a loaded 2-core machine.
const POD_RUNNING_TIMEOUT: Duration = Duration::from_secs(60);

fn deployment(name: &str, replicas: i32) -> Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": "default" },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{ "name": "main", "image": "example.invalid/fake:1" }] }
            }
        }
    }))?)
}

#[tokio::test]
async fn nodes_deployment_restart_and_delete() -> Result<()> {
    let started = Instant::now();
    let cluster = KwokCluster::create("hsn-testkit").await?;
    eprintln!("KwokCluster::create took {:?}", started.elapsed());

    let nodes = [
        FakeNode::new("node-a", "region-1", "zone-a").label("hsn.io/pool", "edge"),
        FakeNode::new("node-b", "region-1", "zone-b"),
    ];
    let started = Instant::now();
    cluster.add_nodes(&nodes).await?;
    eprintln!("add_nodes took {:?}", started.elapsed());
    let node_a = Api::<Node>::all(cluster.client()).get("node-a").await?;
    let labels = node_a.metadata.labels.unwrap_or_default();
    ensure!(
        labels
            .get("topology.kubernetes.io/zone")
            .map(String::as_str)
            == Some("zone-a")
    );
    ensure!(labels.get("hsn.io/pool").map(String::as_str) == Some("edge"));

    Api::<Deployment>::namespaced(cluster.client(), "default")
        .create(&PostParams::default(), &deployment("web", 2)?)
        .await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let started = Instant::now();
    wait_for(
        "2 web pods Running on fake nodes",
        POD_RUNNING_TIMEOUT,
        || async {
            let list = pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .ok()?;
            let running = list
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
                .count();
            (running == 2).then_some(())
        },
    )
    .await?;
    eprintln!("pods Running after {:?}", started.elapsed());

    let out = cluster
        .kubectl()
        .args(["get", "nodes", "-o", "name"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        stdout.contains("node/node-a") && stdout.contains("node/node-b"),
        "kubectl: {stdout}"
    );

    // Failover support: the apiserver goes away and comes back on the same address.
    cluster.stop_apiserver().await?;
    let nodes_api: Api<Node> = Api::all(cluster.client());
    ensure!(
        nodes_api.list(&ListParams::default()).await.is_err(),
        "apiserver still answers"
    );
    let started = Instant::now();
    cluster.start_apiserver().await?;
    eprintln!("start_apiserver took {:?}", started.elapsed());
    let nodes_api = &nodes_api;
    wait_for_ok(
        "listing nodes after restart",
        Duration::from_secs(30),
        || async move { nodes_api.list(&ListParams::default()).await },
    )
    .await?;

    let (pids, dir) = (cluster.pids(), cluster.dir().to_path_buf());
    ensure!(pids.len() >= 5, "expected 5 component pids, got {pids:?}");
    cluster.delete().await;
    wait_for(
        "kwok components to exit",
        Duration::from_secs(10),
        || async { pids.iter().all(|&pid| !process_alive(pid)).then_some(()) },
    )
    .await
    .with_context(|| format!("pids {pids:?}"))?;
    ensure!(!dir.exists(), "{} still exists", dir.display());
    Ok(())
}

#[tokio::test]
async fn two_clusters_side_by_side() -> Result<()> {
    let (a, b) = tokio::join!(KwokCluster::create("side-a"), KwokCluster::create("side-b"));
    let (a, b) = (a?, b?);
    let (nodes_a, nodes_b) = (
        [FakeNode::new("only-a", "r", "z1")],
        [FakeNode::new("only-b", "r", "z1")],
    );
    let (add_a, add_b) = tokio::join!(a.add_nodes(&nodes_a), b.add_nodes(&nodes_b));
    add_a?;
    add_b?;
    ensure!(
        Api::<Node>::all(a.client())
            .get_opt("only-b")
            .await?
            .is_none()
    );
    ensure!(
        Api::<Node>::all(b.client())
            .get_opt("only-a")
            .await?
            .is_none()
    );

    let pids: Vec<u32> = a.pids().into_iter().chain(b.pids()).collect();
    let dirs = [a.dir().to_path_buf(), b.dir().to_path_buf()];
    drop(a);
    drop(b);
    wait_for(
        "kwok components to exit",
        Duration::from_secs(10),
        || async { pids.iter().all(|&pid| !process_alive(pid)).then_some(()) },
    )
    .await?;
    ensure!(dirs.iter().all(|d| !d.exists()), "dirs left: {dirs:?}");
    Ok(())
}
