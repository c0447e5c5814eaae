//! The operator's own pods on real nodes (containerd + kubelet, `hsn_testkit::node`): the
//! chart installed in a hub with a real node, where its operator Deployment runs from the
//! image built from this tree; a member cluster registered through the chart's member
//! identity, an HsnNetwork applied; the agent containers start from the image built from
//! this tree with exactly the capabilities the README documents, attach XDP to their node's
//! interface, hold their Leases, and their HsnNodes turn Ready. A deleted edge pod comes
//! back and its agent takes the pinned program over: the program never leaves the
//! interface. A UE's traffic for two tenants, v4 and v6, crosses the edge and super nodes
//! ([`traffic`]); the super pod's ledger container runs the network's chain (one validator
//! here) from the operator's genesis and the pod's identity, over TLS, as a user without
//! privilege, its state in the super node's own claim (`superNodes.storage`, bound to a
//! volume on its node), and goes on when the super pod is replaced ([`chain`]); the traffic's epochs are sealed in that chain, which
//! verifies, and pay the edge exactly the bytes sent. The plan drops the edge node and takes
//! it back: the dropped agent drains and leaves nothing ([`dropped`]). The edge node's kubelet dies, then the network is
//! deleted: nothing of it is left on the node whose kubelet lives, nor in the hub ([`lost`]).
//! Root only (skipped, saying why, elsewhere); CI runs as root.

mod chain;
mod dropped;
mod lost;
mod traffic;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use hsn_api::{HsnNetwork, HsnNode};
use hsn_operator::member::EDGE_CAPABLE_LABEL;
use hsn_operator::plan::{REGION_LABEL, ZONE_LABEL};
use hsn_testkit::node::{NodeImages, NodeNetwork, NodeSpec, RealNode, missing};
use hsn_testkit::operator::{
    AGENTS_TAINT, DEADLINE, OPERATOR_NS, kubeconfig_secret, mec_cluster, member_access,
};
use hsn_testkit::{KwokCluster, wait_for, wait_for_ok};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolume, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/hsn");
const RELEASE: &str = "hsn";
/// The chart's operator pods (`hsn.selector`).
const OPERATOR_SELECTOR: &str = "app.kubernetes.io/instance=hsn";
const NETWORK: &str = "metro";
/// The network's namespace in a member.
const MEMBER_NS: &str = "hsn-metro";
/// CapEff of BPF (39), PERFMON (38) and NET_ADMIN (12): what the README documents.
const AGENT_CAPS: &str = "000000c000001000";

fn helm(kubeconfig: &Path, home: &Path, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new(hsn_testkit::bin("helm"));
    for var in ["HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"] {
        cmd.env(var, home.join(var));
    }
    let out = cmd
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()?;
    ensure!(
        out.status.success(),
        "helm {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `kubeconfig` (JSON, as `member_access` writes it) with every cluster's server set to
/// `server`.
fn with_server(kubeconfig: &[u8], server: &str) -> Result<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(kubeconfig)?;
    for cluster in value["clusters"].as_array_mut().into_iter().flatten() {
        cluster["cluster"]["server"] = server.into();
    }
    Ok(serde_json::to_vec(&value)?)
}

/// Whether every container of the pod is ready.
fn all_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|cs| cs.iter().all(|c| c.ready))
}

/// The chart's operator pods Running and ready in the hub; the name of the leader (the
/// holder of the leader Lease).
async fn operator_running(hub: &Client) -> Result<String> {
    let pods: Api<Pod> = Api::namespaced(hub.clone(), OPERATOR_NS);
    let leases: Api<Lease> = Api::namespaced(hub.clone(), OPERATOR_NS);
    let (pods, leases) = (&pods, &leases);
    Ok(wait_for_ok(
        "the chart's operator pods ready, one leading",
        DEADLINE,
        || async move {
            let list = pods
                .list(&ListParams::default().labels(OPERATOR_SELECTOR))
                .await
                .map_err(|e| e.to_string())?;
            let ready = list.items.iter().filter(|p| all_ready(p)).count();
            if ready < 2 {
                return Err(format!(
                    "{ready} of {} operator pods ready",
                    list.items.len()
                ));
            }
            let all = leases
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            all.items
                .iter()
                .filter_map(|l| l.spec.as_ref()?.holder_identity.clone())
                .find(|h| list.items.iter().any(|p| p.name_any() == *h))
                .ok_or_else(|| "no operator pod holds the leader Lease yet".to_owned())
        },
    )
    .await?)
}

/// The chart's operator pods' last log lines.
fn operator_logs(hub: &KwokCluster) -> Result<String> {
    let out = hub
        .kubectl()
        .args([
            "-n",
            OPERATOR_NS,
            "logs",
            "-l",
            OPERATOR_SELECTOR,
            "--tail",
            "40",
            "--prefix",
        ])
        .output()?;
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// The agent pods of `role` in the member, Running with their container ready.
async fn running_agents(member: &Client, role: &str, count: usize) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(member.clone(), MEMBER_NS);
    let selector = format!("hsn.io/role={role}");
    let (pods, selector) = (&pods, &selector);
    let what = format!("{count} {role} agent pods running");
    Ok(wait_for_ok(&what, DEADLINE, || async move {
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| e.to_string())?;
        let ready: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(all_ready)
            .collect();
        if ready.len() == count {
            Ok(ready)
        } else {
            let states: Vec<String> = ready.iter().map(|p| p.name_any()).collect();
            Err(format!("ready: {states:?}"))
        }
    })
    .await?)
}

/// How long `pod` took from its creation to its last container's start, and the member's
/// FailedMount events for it (a volume its kubelet could not mount yet retries with a
/// growing backoff).
async fn startup(member: &Client, pod: &Pod) -> Result<(f64, usize)> {
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .context("creationTimestamp")?
        .0;
    let started = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.running.as_ref()?.started_at.as_ref())
        .map(|t| t.0)
        .max()
        .context("no running container")?;
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(member.clone(), MEMBER_NS);
    let selector = format!("involvedObject.name={},reason=FailedMount", pod.name_any());
    let mounts = events
        .list(&ListParams::default().fields(&selector))
        .await?
        .items
        .iter()
        .map(|e| e.count.unwrap_or(1).max(1) as usize)
        .sum();
    let took = started.duration_since(created).as_millis() as f64 / 1000.0;
    Ok((took, mounts))
}

/// The id of the XDP program on the node's `eth0`, if one is attached.
fn xdp_prog(node: &RealNode) -> Result<Option<u64>> {
    let out = node.exec("ip", &["-d", "-j", "link", "show", "eth0"])?;
    let links: serde_json::Value = serde_json::from_str(&out)?;
    Ok(links[0]["xdp"]["prog"]["id"].as_u64())
}

/// The maps program `prog` uses on the node, by name.
fn prog_maps(node: &RealNode, prog: u64) -> Result<BTreeMap<String, u64>> {
    let shown: serde_json::Value = serde_json::from_str(
        &node.exec("bpftool", &["-j", "prog", "show", "id", &prog.to_string()])?,
    )?;
    let mut maps = BTreeMap::new();
    for id in shown["map_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_u64())
    {
        let map: serde_json::Value = serde_json::from_str(
            &node.exec("bpftool", &["-j", "map", "show", "id", &id.to_string()])?,
        )?;
        maps.insert(map["name"].as_str().unwrap_or_default().to_owned(), id);
    }
    Ok(maps)
}

/// CapEff of the node's `hsn-agent` process.
fn agent_caps(node: &RealNode) -> Result<Vec<String>> {
    let mut caps = Vec::new();
    for pid in node.pids() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "hsn-agent" {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
            let line = status.lines().find(|l| l.starts_with("CapEff:"));
            caps.push(
                line.unwrap_or_default()
                    .trim_start_matches("CapEff:")
                    .trim()
                    .to_owned(),
            );
        }
    }
    Ok(caps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_agents_run_on_real_nodes() -> Result<()> {
    if let Some(why) = missing() {
        eprintln!("skipped: {why}");
        return Ok(());
    }
    hsn_testkit::require_binaries(&["helm"])?;
    let operator_bin = hsn_testkit::cargo_bin("hsn-operator")?;
    let bins = operator_bin.parent().context("binary dir")?;
    hsn_testkit::cargo_bin("hsn-agent")?;
    hsn_testkit::cargo_bin("hsn-ledger")?;
    hsn_testkit::require_binaries(&["cometbft"])?;
    let images = NodeImages::build(&["hsn-agent", "hsn-ledger", "hsn-operator"], bins)?;
    let network = NodeNetwork::create()?;

    // The hub with a real node: `helm install` and the chart's operator Deployment runs
    // there, from the image built from this tree, as the chart's ServiceAccount.
    let hub = KwokCluster::create_for_nodes("hub", network.gateway()).await?;
    let _hub_node = RealNode::start(&hub, &network, NodeSpec::new("hub-1").images(&images)).await?;
    let home = tempfile::tempdir()?;
    helm(
        hub.kubeconfig(),
        home.path(),
        &[
            "install",
            RELEASE,
            CHART,
            "-n",
            OPERATOR_NS,
            "--create-namespace",
        ],
    )?;

    // A member with two real nodes: one for edges (tainted, as kind/ sets edge nodes
    // aside), one where the super node lands.
    let mec = KwokCluster::create_for_nodes("mec-a", network.gateway()).await?;
    let edge_node = RealNode::start(
        &mec,
        &network,
        NodeSpec::new("mec-a-edge")
            .label(EDGE_CAPABLE_LABEL, "true")
            .label(AGENTS_TAINT, "edge")
            .label(REGION_LABEL, "mec-a")
            .label(ZONE_LABEL, "mec-a-1a")
            .taint(AGENTS_TAINT, "edge", "NoSchedule")
            .images(&images),
    )
    .await?;
    let super_node = RealNode::start(
        &mec,
        &network,
        NodeSpec::new("mec-a-super")
            .label(REGION_LABEL, "mec-a")
            .label(ZONE_LABEL, "mec-a-1b")
            .images(&images),
    )
    .await?;
    // The chart's member identity, at the address the operator's pod reaches the member by.
    let member_kubeconfig = member_access(&mec.client(), &mec.self_contained_kubeconfig()?).await?;
    let server = mec
        .node_server_url()
        .context("member made for real nodes")?;
    let member_kubeconfig = with_server(&member_kubeconfig, server)?;
    let admin = hub.client();
    kubeconfig_secret(&admin, "mec-a", &member_kubeconfig).await?;
    mec_cluster(&admin, "mec-a", "mec-a", "mec-a").await?;
    let leader = operator_running(&admin).await;
    let leader = match leader {
        Ok(pod) => pod,
        Err(e) => {
            eprintln!("operator pods:\n{}", operator_logs(&hub)?);
            return Err(e);
        }
    };
    println!("the chart's operator runs on a real node: {leader}");

    // The super node keeps its state in a claim (`superNodes.storage`; the demo runs the
    // default, the node's directory): a volume on the super's node, which this test makes
    // as a cluster's administrator would (no provisioner runs here).
    let volume: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": "hsn-state-0"},
        "spec": {
            "storageClassName": chain::STATE_CLASS,
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": chain::STATE_VOLUME_PATH, "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{
                "key": "kubernetes.io/hostname", "operator": "In",
                "values": [super_node.name()]}]}]}}
        }
    }))?;
    Api::<PersistentVolume>::all(mec.client())
        .create(&PostParams::default(), &volume)
        .await?;
    let spec: HsnNetwork = serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": NETWORK, "namespace": "default"},
        "spec": {
            "superNodes": {"replicas": 1,
                           "storage": {"storageClassName": chain::STATE_CLASS, "size": "1Gi"}},
            "edgePools": [{
                "name": "edge", "sliceType": "eMBB",
                "nodeSelector": {"matchLabels": {EDGE_CAPABLE_LABEL: "true"}},
                "tolerations": [{"key": AGENTS_TAINT, "operator": "Equal", "value": "edge",
                                 "effect": "NoSchedule"}],
            }],
            "metering": {
                "epochSeconds": traffic::EPOCH_SECONDS,
                "ledger": {"lateWindowSeconds": traffic::LATE_WINDOW_SECONDS},
                "tenants": traffic::TENANTS.iter().map(|(name, id, _, _, prefixes)| {
                    json!({"name": name, "id": id, "prefixes": prefixes})
                }).collect::<Vec<_>>(),
            },
        },
    }))?;
    Api::<HsnNetwork>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &spec)
        .await?;

    let result = check(&network, &mec, &admin, &edge_node, &super_node).await;
    if result.is_err() {
        eprintln!("operator log:\n{}", operator_logs(&hub)?);
        for node in [&edge_node, &super_node] {
            let log = node.dir().join("kubelet.log");
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            eprintln!(
                "{} kubelet log tail:\n{}",
                node.name(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let out = mec
            .kubectl()
            .args([
                "-n",
                MEMBER_NS,
                "logs",
                "-l",
                "hsn.io/role",
                "--tail",
                "30",
                "--prefix",
            ])
            .output()?;
        eprintln!("agent logs:\n{}", String::from_utf8_lossy(&out.stdout));
    }
    result
}

async fn check(
    network: &NodeNetwork,
    mec: &KwokCluster,
    hub: &Client,
    edge_node: &RealNode,
    super_node: &RealNode,
) -> Result<()> {
    let member = mec.client();
    let edges = running_agents(&member, "edge", 1).await?;
    let supers = running_agents(&member, "super", 1).await?;
    let edge_pod = &edges[0];
    for pod in [edge_pod, &supers[0]] {
        let (took, failed_mounts) = startup(&member, pod).await?;
        println!(
            "{}: created -> containers started {took:.1} s ({failed_mounts} failed mounts)",
            pod.name_any()
        );
    }
    ensure!(edge_pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(edge_node.name()));
    ensure!(
        supers[0].spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(super_node.name())
    );

    // The restricted security context, as the pods really run.
    for node in [edge_node, super_node] {
        let caps = agent_caps(node)?;
        ensure!(
            caps == [AGENT_CAPS],
            "{}: CapEff {caps:?}, want [{AGENT_CAPS}]",
            node.name()
        );
    }
    let container = &edge_pod.spec.as_ref().context("spec")?.containers[0];
    let security = container
        .security_context
        .as_ref()
        .context("securityContext")?;
    ensure!(security.privileged == Some(false), "{security:?}");

    // XDP on each node's interface, attached by the agents themselves.
    let edge_prog = wait_for("XDP on the edge node's eth0", DEADLINE, || async {
        xdp_prog(edge_node).ok().flatten()
    })
    .await?;
    wait_for("XDP on the super node's eth0", DEADLINE, || async {
        xdp_prog(super_node).ok().flatten()
    })
    .await?;

    // Leases held by the pods, HsnNodes Ready in the hub.
    let leases: Api<Lease> = Api::namespaced(member.clone(), MEMBER_NS);
    let edge_lease = format!("edge-{}", edge_node.name());
    let holder = |name: String| {
        let leases = leases.clone();
        async move {
            let lease = leases.get_opt(&name).await.ok()??;
            lease.spec?.holder_identity
        }
    };
    let held = wait_for("the edge's Lease", DEADLINE, || holder(edge_lease.clone())).await?;
    ensure!(held == edge_pod.name_any(), "edge Lease held by {held}");
    wait_for("the super node's Lease", DEADLINE, || {
        holder("super-0".into())
    })
    .await?;
    let hsn_nodes: Api<HsnNode> = Api::namespaced(hub.clone(), "default");
    let ready_nodes = wait_for_ok("2 HsnNodes Ready", DEADLINE, || async {
        let list = hsn_nodes
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let ready: BTreeMap<String, bool> = list
            .items
            .iter()
            .map(|n| {
                let ok = n.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                });
                (n.name_any(), ok)
            })
            .collect();
        if ready.len() == 2 && ready.values().all(|r| *r) {
            Ok(ready)
        } else {
            Err(format!("{ready:?}"))
        }
    })
    .await?;
    println!("HsnNodes Ready: {ready_nodes:?}");
    // UE traffic through the nodes, then the super pod replaced: the records and
    // observations of that traffic still make it into the chain, and are paid.
    let traffic = traffic::send(network, &member, edge_node, super_node).await?;
    chain::super_ledger(hub, &member, &supers[0], super_node).await?;
    traffic.paid(hub, &member, edge_node, super_node).await?;

    // Delete the edge pod: the DaemonSet brings it back, the new agent takes the pinned
    // link over. A program stays on the interface throughout (sampled while the pod is
    // replaced), and the new agent's program counts into the same pinned counters map.
    let counters = prog_maps(edge_node, edge_prog)?;
    let counters = *counters
        .get("edge_counters")
        .with_context(|| format!("maps {counters:?}"))?;
    let pods: Api<Pod> = Api::namespaced(member.clone(), MEMBER_NS);
    pods.delete(&edge_pod.name_any(), &DeleteParams::default())
        .await?;
    let old = edge_pod.name_any();
    let mut samples = 0;
    let replaced = loop {
        ensure!(
            xdp_prog(edge_node)?.is_some(),
            "no program on eth0 while the edge pod was replaced"
        );
        samples += 1;
        let list = pods
            .list(&ListParams::default().labels("hsn.io/role=edge"))
            .await?;
        let new = list
            .items
            .into_iter()
            .find(|p| p.name_any() != old && all_ready(p));
        if let Some(new) = new {
            break new;
        }
        if samples > 600 {
            bail!("no new edge pod ready after {samples} samples");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let held = wait_for("the new pod's Lease", DEADLINE, || async {
        let name = holder(edge_lease.clone()).await?;
        (name == replaced.name_any()).then_some(name)
    })
    .await?;
    let taken_over = wait_for("the new agent's program on eth0", DEADLINE, || async {
        xdp_prog(edge_node)
            .ok()
            .flatten()
            .filter(|&p| p != edge_prog)
    })
    .await?;
    let maps = prog_maps(edge_node, taken_over)?;
    ensure!(
        maps.get("edge_counters") == Some(&counters),
        "the new program's counters {maps:?}, the old one's edge_counters {counters}"
    );
    let logs = mec
        .kubectl()
        .args(["-n", MEMBER_NS, "logs", &replaced.name_any()])
        .output()?;
    let logs = String::from_utf8_lossy(&logs.stdout);
    ensure!(
        logs.contains("took over the pinned link"),
        "new agent's log:\n{logs}"
    );
    println!(
        "edge pod replaced by {held} ({samples} samples with a program on eth0); program {edge_prog} → {taken_over}, counters map {counters} kept"
    );
    let returned = dropped::edge_dropped(mec, hub, edge_node).await?;
    lost::kubelet_dies(mec, hub, edge_node, returned).await?;
    lost::network_deleted(mec, hub, super_node).await
}
