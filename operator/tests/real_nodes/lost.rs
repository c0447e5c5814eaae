//! Losing nodes and the network: the edge node's kubelet dies (its edge is dropped, its
//! program stays attached), then the network is deleted and nothing of it is left running or
//! hooked on the node whose kubelet lives, nor in the hub.

use anyhow::{Result, ensure};
use hsn_api::{HsnNetwork, HsnNode};
use hsn_testkit::node::RealNode;
use hsn_testkit::operator::{DEADLINE, OPERATOR_NS};
use hsn_testkit::{KwokCluster, wait_for};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, Client, ResourceExt};

use crate::{MEMBER_NS, NETWORK, xdp_prog};

/// The processes of the network's containers running on `node`.
fn network_processes(node: &RealNode) -> Vec<(u32, String)> {
    node.pids()
        .into_iter()
        .filter_map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            let comm = comm.trim().to_owned();
            ["hsn-agent", "hsn-ledger", "cometbft"]
                .contains(&comm.as_str())
                .then_some((pid, comm))
        })
        .collect()
}

/// The edge node's kubelet dies: the node goes NotReady and the operator drops its edge as
/// for any lost node (its HsnNode goes), while the agent's program stays attached (pinned;
/// containerd and the container run on without the kubelet).
pub(crate) async fn kubelet_dies(
    mec: &KwokCluster,
    hub: &Client,
    node: &RealNode,
    prog: u64,
) -> Result<()> {
    let node_pids: Vec<u32> = network_processes(node)
        .into_iter()
        .filter(|(_, comm)| comm == "hsn-agent")
        .map(|(pid, _)| pid)
        .collect();
    ensure!(
        node_pids.len() == 1,
        "one agent process on the edge node: {node_pids:?}"
    );
    ensure!(node.kubelet_pid().is_some(), "kubelet running");
    node.kill_kubelet();
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(mec.client());
    wait_for("the edge node NotReady", DEADLINE, || async {
        let n = nodes.get(node.name()).await.ok()?;
        let ready = n
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status != "True").then_some(())
    })
    .await?;
    let hsn_nodes: Api<HsnNode> = Api::namespaced(hub.clone(), "default");
    let edge = format!("{NETWORK}.mec-a.edge.{}", node.name());
    wait_for("the lost edge's HsnNode removed", DEADLINE, || async {
        hsn_nodes.get_opt(&edge).await.ok()?.is_none().then_some(())
    })
    .await?;
    ensure!(
        xdp_prog(node)? == Some(prog),
        "the program left eth0 with the kubelet"
    );
    ensure!(
        hsn_testkit::process_alive(node_pids[0]),
        "the agent died with the kubelet"
    );
    println!("kubelet killed: node NotReady, edge dropped, program {prog} still attached");
    Ok(())
}

/// The network deleted: it leaves the hub with its HsnNodes and its chain's Secrets
/// (genesis and administrator key, CA), its member namespace is deleted, and on the super
/// node (kubelet alive) the pod's containers stop and the agent, seeing its namespace go,
/// takes its program off the interface. The edge node's kubelet is dead: what runs there
/// stays until a kubelet returns (nothing can stop it meanwhile).
pub(crate) async fn network_deleted(
    mec: &KwokCluster,
    hub: &Client,
    node: &RealNode,
) -> Result<()> {
    let networks: Api<HsnNetwork> = Api::namespaced(hub.clone(), "default");
    let uid = networks.get(NETWORK).await?.uid().unwrap_or_default();
    networks.delete(NETWORK, &DeleteParams::default()).await?;
    wait_for("the network gone from the hub", DEADLINE, || async {
        networks
            .get_opt(NETWORK)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await?;
    let by_uid = ListParams::default().labels(&format!("hsn.io/network-uid={uid}"));
    let secrets: Api<Secret> = Api::namespaced(hub.clone(), OPERATOR_NS);
    let left: Vec<String> = secrets
        .list(&by_uid)
        .await?
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    ensure!(left.is_empty(), "the network's hub Secrets left: {left:?}");
    let hsn_nodes: Api<HsnNode> = Api::namespaced(hub.clone(), "default");
    let nodes: Vec<String> = hsn_nodes
        .list(&by_uid)
        .await?
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    ensure!(nodes.is_empty(), "HsnNodes left: {nodes:?}");
    let namespaces: Api<Namespace> = Api::all(mec.client());
    wait_for("the member namespace deleted", DEADLINE, || async {
        match namespaces.get_opt(MEMBER_NS).await.ok()? {
            None => Some(()),
            Some(ns) => ns.metadata.deletion_timestamp.map(|_| ()),
        }
    })
    .await?;
    wait_for(
        "nothing of the network on the super node",
        DEADLINE,
        || async {
            (network_processes(node).is_empty() && xdp_prog(node).ok()?.is_none()).then_some(())
        },
    )
    .await?;
    println!(
        "network deleted: hub Secrets and HsnNodes gone, member namespace deleted, no process and no program of it on {}",
        node.name()
    );
    Ok(())
}
