//! The network stays, the plan drops the edge node (it no longer carries the pool's label):
//! the operator takes the agent's Lease out of its Role, then the DaemonSet's pod off the
//! node (here the member's last edge: its DaemonSet and Role are pruned, the Role first);
//! the stopped agent, refused its Lease, detaches its program, closes the epoch open
//! then at its end, ships it to the super node it shipped to before, and removes its pins.
//! Nothing of it is left hooked or running on the node, and its spool holds no record the
//! ledger has not acknowledged. The label back, the node is an edge again, attached afresh.

use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail, ensure};
use hsn_api::HsnNode;
use hsn_operator::member::EDGE_CAPABLE_LABEL;
use hsn_testkit::node::RealNode;
use hsn_testkit::operator::DEADLINE;
use hsn_testkit::{KwokCluster, wait_for, wait_for_ok};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, LogParams, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::{MEMBER_NS, NETWORK, running_agents, xdp_prog};

/// The node's label that puts it in the test network's pool.
async fn set_edge_label(mec: &KwokCluster, node: &RealNode, value: Option<&str>) -> Result<()> {
    let patch = json!({"metadata": {"labels": {EDGE_CAPABLE_LABEL: value}}});
    Api::<Node>::all(mec.client())
        .patch(node.name(), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// Drops the edge node from the plan and brings it back; returns the new program's id.
pub(crate) async fn edge_dropped(mec: &KwokCluster, hub: &Client, node: &RealNode) -> Result<u64> {
    let member = mec.client();
    let pods: Api<Pod> = Api::namespaced(member.clone(), MEMBER_NS);
    let hsn_nodes: Api<HsnNode> = Api::namespaced(hub.clone(), "default");
    let edge = format!("{NETWORK}.mec-a.edge.{}", node.name());
    ensure!(xdp_prog(node)?.is_some(), "no program on the edge node");

    let started = Instant::now();
    set_edge_label(mec, node, None).await?;
    wait_for("the dropped edge's HsnNode removed", DEADLINE, || async {
        hsn_nodes.get_opt(&edge).await.ok()?.is_none().then_some(())
    })
    .await?;
    // The pod stays Terminating while its agent drains (the epoch's end, then shipping);
    // its log is read meanwhile (it goes with the pod).
    let log = std::sync::Mutex::new(String::new());
    wait_for_ok("the dropped edge's pod gone", DEADLINE, || async {
        let list = pods
            .list(&ListParams::default().labels("hsn.io/role=edge"))
            .await
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = list.items.iter().map(ResourceExt::name_any).collect();
        let Some(name) = names.first() else {
            return Ok(());
        };
        // Once the container has exited the kubelet answers with a note instead.
        if let Ok(text) = pods.logs(name, &LogParams::default()).await
            && !text.starts_with("unable to retrieve container logs")
        {
            *log.lock().unwrap() = text;
        }
        Err(format!("edge pods: {names:?}"))
    })
    .await?;
    let log = log.into_inner().unwrap();
    ensure!(
        log.contains("draining: closing the open epoch at its end"),
        "the dropped agent did not drain; its last log read:\n{log}"
    );
    let gone = started.elapsed();
    ensure!(
        xdp_prog(node)?.is_none(),
        "the dropped edge's program stayed on eth0"
    );
    let agents: Vec<u32> = node
        .pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "hsn-agent")
        })
        .collect();
    ensure!(agents.is_empty(), "agent processes left: {agents:?}");
    let pins = node.exec("ls", &["-A", &format!("/sys/fs/bpf/hsn/{NETWORK}")]);
    ensure!(
        pins.is_err(),
        "the network's pins stayed on the node: {pins:?}"
    );
    // The pods' hostPath `/var/lib/hsn/<network>`, an edge's at its subPath `edge`, is the
    // agent's `/var/lib/hsn`, where its state directory is `<network>/`. The spool keeps the
    // newest acknowledged epoch file (the snapshot the next close starts from).
    let state = node.dir().join("root/var/lib/hsn");
    let spool = state.join(NETWORK).join("edge").join(NETWORK).join("spool");
    let shipped = match std::fs::read_dir(&spool) {
        Ok(files) => files.count(),
        Err(e) => {
            let found = Command::new("find").arg(&state).output()?;
            bail!(
                "{}: {e}; the node's /var/lib/hsn:\n{}",
                spool.display(),
                String::from_utf8_lossy(&found.stdout)
            );
        }
    };
    let unsent = hsn_agent::spool::unsent(&spool)?;
    ensure!(
        shipped > 0 && unsent.is_empty(),
        "the spool ({shipped} files) holds epochs the ledger did not acknowledge: {:?}",
        unsent.iter().map(|f| f.epoch).collect::<Vec<_>>()
    );
    println!(
        "edge dropped: HsnNode and pod gone {:.1} s after the label, no program or agent left on {}, its {shipped} spool files acknowledged",
        gone.as_secs_f64(),
        node.name()
    );

    set_edge_label(mec, node, Some("true")).await?;
    running_agents(&member, "edge", 1).await?;
    let prog = wait_for("the returning edge's program on eth0", DEADLINE, || async {
        xdp_prog(node).ok().flatten()
    })
    .await?;
    println!("edge back: program {prog} attached afresh");
    Ok(prog)
}
