//! Real nodes (containerd + kubelet in namespaces of their own) next to kwok's fake ones in
//! one cluster: they register, run pods on the node network and on their pod network, see
//! their own interfaces, bpffs and the API server through the `kubernetes` Service, and
//! leave nothing behind. Root only; prints the figures the README reports.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use hsn_testkit::node::{
    NodeImages, NodeNetwork, NodeSpec, PAUSE_IMAGE, RealNode, kubelet_sysctls, missing,
};
use hsn_testkit::{FakeNode, KwokCluster, wait_for, wait_for_ok};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

const POD_TIMEOUT: Duration = Duration::from_secs(90);
/// kube-controller-manager's node-monitor-grace-period under kwokctl is 40 s.
const NOT_READY_TIMEOUT: Duration = Duration::from_secs(120);

fn pause_pod(name: &str, node: &str, host_network: bool) -> Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "hostNetwork": host_network,
            "nodeSelector": {"kubernetes.io/hostname": node},
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "pause", "image": PAUSE_IMAGE}],
        },
    }))?)
}

/// The pod's address once it is Running (kwok's fake nodes have none).
async fn running(pods: &Api<Pod>, name: &str) -> Result<Option<String>> {
    let ip = wait_for_ok(&format!("pod {name} Running"), POD_TIMEOUT, || async move {
        let pod = pods.get(name).await.map_err(|e| e.to_string())?;
        let status = pod.status.unwrap_or_default();
        match status.phase.as_deref() {
            Some("Running") => Ok(status.pod_ip),
            phase => Err(format!("phase {phase:?}")),
        }
    })
    .await?;
    Ok(ip)
}

async fn running_ip(pods: &Api<Pod>, name: &str) -> Result<String> {
    running(pods, name)
        .await?
        .with_context(|| format!("pod {name} Running without an address"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_and_kwok_nodes_share_a_cluster_and_leave_nothing_behind() -> Result<()> {
    if let Some(why) = missing() {
        eprintln!("skipped: {why}");
        return Ok(());
    }
    let sysctls = kubelet_sysctls();
    let network = NodeNetwork::create()?;
    let cluster = KwokCluster::create_for_nodes("real-nodes", network.gateway()).await?;
    cluster
        .add_nodes(&[FakeNode::new("kwok-0", "r", "z")])
        .await?;
    let out = tempfile::tempdir()?;
    // The pause image holds no cargo binary; any directory will do.
    let images = NodeImages::build(&[], out.path())?;

    let started = Instant::now();
    let a = RealNode::start(
        &cluster,
        &network,
        NodeSpec::new("real-a")
            .label("hsn.io/test", "a")
            .images(&images),
    )
    .await?;
    let first_up = started.elapsed();
    let b = RealNode::start(&cluster, &network, NodeSpec::new("real-b").images(&images)).await?;
    println!(
        "figure: real node up (containerd + images + kubelet → Node Ready): {:.1} s, then {:.1} s",
        first_up.as_secs_f64(),
        started.elapsed().as_secs_f64() - first_up.as_secs_f64()
    );

    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let created = Instant::now();
    for (name, node, host) in [
        ("host-a", "real-a", true),
        ("host-b", "real-b", true),
        ("net-a", "real-a", false),
        ("fake", "kwok-0", true),
    ] {
        pods.create(&PostParams::default(), &pause_pod(name, node, host)?)
            .await
            .with_context(|| format!("creating pod {name}"))?;
    }
    let host_a = running_ip(&pods, "host-a").await?;
    let host_b = running_ip(&pods, "host-b").await?;
    let net_a = running_ip(&pods, "net-a").await?;
    println!(
        "figure: 3 pods on 2 real nodes, create → Running: {:.1} s",
        created.elapsed().as_secs_f64()
    );
    running(&pods, "fake").await?;
    ensure!(
        host_a == a.ip().to_string(),
        "hostNetwork pod {host_a} on {}",
        a.ip()
    );
    ensure!(
        host_b == b.ip().to_string(),
        "hostNetwork pod {host_b} on {}",
        b.ip()
    );
    ensure!(net_a.starts_with("10.244."), "pod network address {net_a}");
    for node in [&a, &b] {
        println!(
            "figure: node {} memory (RSS of kubelet, containerd, shims, pods): {} MiB",
            node.name(),
            node.rss_bytes() / (1 << 20)
        );
    }

    // Inside a node: its own interfaces, its own bpffs, the API via the kubernetes Service.
    let links = a.exec("ls", &["/sys/class/net"])?;
    ensure!(
        links.contains("eth0") && !links.contains(network.bridge()),
        "{links}"
    );
    let fs = a.exec("stat", &["-f", "-c", "%T", "/sys/fs/bpf"])?;
    ensure!(fs.trim() == "bpf_fs", "/sys/fs/bpf is {fs}");
    // The Service's address leads to the API server (anonymous /version is allowed). The
    // request's stream stays open until the answer is in: the API server cancels a request
    // whose client closes its side first (504).
    let reached = a.exec(
        "sh",
        &["-c", "(printf 'GET /version HTTP/1.0\\r\\n\\r\\n'; sleep 2) | socat -T10 - OPENSSL:10.0.0.1:443,verify=0"],
    )?;
    ensure!(reached.contains("\"gitVersion\""), "{reached}");
    ensure!(a.exec("hostname", &[])?.trim() == "real-a");

    // A dead kubelet: the Node goes NotReady (its node Lease lapses), its pods' containers
    // run on under containerd.
    let leases: Api<Lease> = Api::namespaced(cluster.client(), "kube-node-lease");
    wait_for("real-b's node Lease", POD_TIMEOUT, || async {
        leases.get_opt("real-b").await.ok()?
    })
    .await?;
    let shim_pids = b.pids().len();
    b.kill_kubelet();
    let nodes: Api<Node> = Api::all(cluster.client());
    let nodes = &nodes;
    wait_for_ok("real-b NotReady", NOT_READY_TIMEOUT, || async move {
        let node = nodes.get("real-b").await.map_err(|e| e.to_string())?;
        let ready = node.status.and_then(|s| s.conditions).unwrap_or_default();
        match ready.into_iter().find(|c| c.type_ == "Ready") {
            Some(c) if c.status != "True" => Ok(()),
            other => Err(format!("Ready {other:?}")),
        }
    })
    .await?;
    ensure!(b.pids().len() == shim_pids - 1, "only the kubelet went");
    running(&pods, "host-b").await?;

    pods.delete("host-a", &DeleteParams::default()).await?;
    let traces = [a.trace(), b.trace()];
    ensure!(traces.iter().all(|t| t.pids.len() >= 3), "{traces:?}");
    a.stop().await;
    b.stop().await;
    for trace in &traces {
        let left = trace.leftovers();
        ensure!(left.is_empty(), "node left behind: {left:?}");
    }
    ensure!(
        kubelet_sysctls() == sysctls,
        "sysctls {:?}, were {sysctls:?}",
        kubelet_sysctls()
    );
    cluster.delete().await;
    drop(network);
    Ok(())
}
