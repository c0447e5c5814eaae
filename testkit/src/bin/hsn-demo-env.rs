//! The clusters and nodes of `make demo`, held until SIGTERM or SIGINT (`make demo-down`):
//! a hub and member clusters (real control planes, `hsn_testkit::KwokCluster`), and in each
//! member either real nodes (containerd + kubelet, `hsn_testkit::node`) running the images
//! built from this tree, where the operator's agent and ledger pods really run, or kwok's
//! fake nodes (not root). Beside the real nodes, on their network: one namespace of UEs per
//! edge node and one of the tenants' services. Everything is torn down when this process
//! ends, also when it is killed (the toolkit's watchdogs).
//!
//! ```text
//! hsn-demo-env --dir DIR --hub NAME [--member NAME=REGION]... [--nodes-per-zone N]
//!              [--super-nodes N --edge-nodes N --images BIN_DIR]
//! ```
//!
//! Writes `DIR/<cluster>.kubeconfig` and `DIR/<cluster>.kwok-workdir` (its `KWOK_WORKDIR`,
//! for `kwokctl stop|start cluster`) for every cluster, `DIR/real-nodes` (one line per
//! namespace on the nodes' network: `<kind> <member> <name> <network namespace> <IPv4>
//! <IPv6>`, kind `super`, `edge`, `ue` (named after its edge node) or `services`) and, once
//! all is up, `DIR/env.ready`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use hsn_testkit::netns::Netns;
use hsn_testkit::node::{NodeImages, NodeNetwork, NodeSpec, RealNode};
use hsn_testkit::{FakeNode, KwokCluster};

/// What a node offers, as the demo's example network selects nodes (kwok's nodes get the
/// same labels from `hsn_testkit::operator::nodes`: the first four of each zone edge-capable,
/// alternating broadband and IoT slices).
const EDGE: &str = hsn_operator::member::EDGE_CAPABLE_LABEL;
const SLICE: &str = "hsn.io/slice";
/// The taint only the example's IoT edge pool tolerates: super pods stay off edge nodes.
const EDGE_ONLY: &str = "hsn.io/edge-only";

struct Options {
    dir: PathBuf,
    hub: String,
    members: Vec<(String, String)>,
    nodes_per_zone: usize,
    super_nodes: usize,
    edge_nodes: usize,
    images: Option<PathBuf>,
}

fn options() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        dir: PathBuf::new(),
        hub: String::new(),
        members: Vec::new(),
        nodes_per_zone: 5,
        super_nodes: 0,
        edge_nodes: 0,
        images: None,
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--dir" => o.dir = value()?.into(),
            "--hub" => o.hub = value()?,
            "--member" => {
                let v = value()?;
                let (name, region) = v.split_once('=').context("--member NAME=REGION")?;
                o.members.push((name.into(), region.into()));
            }
            "--nodes-per-zone" => o.nodes_per_zone = value()?.parse()?,
            "--super-nodes" => o.super_nodes = value()?.parse()?,
            "--edge-nodes" => o.edge_nodes = value()?.parse()?,
            "--images" => o.images = Some(value()?.into()),
            other => bail!("unknown argument {other} (see the doc comment of hsn-demo-env)"),
        }
    }
    if o.dir.as_os_str().is_empty() || o.hub.is_empty() {
        bail!("usage: hsn-demo-env --dir DIR --hub NAME [--member NAME=REGION]...");
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> Result<()> {
    let o = options()?;
    std::fs::create_dir_all(&o.dir)?;
    let _ = std::fs::remove_file(o.dir.join("env.ready"));
    let write_kubeconfig = |name: &str, cluster: &KwokCluster| -> Result<()> {
        let path = o.dir.join(format!("{name}.kubeconfig"));
        std::fs::copy(cluster.kubeconfig(), &path)
            .with_context(|| format!("writing {}", path.display()))?;
        let workdir = cluster.kwok_workdir().display().to_string();
        std::fs::write(o.dir.join(format!("{name}.kwok-workdir")), workdir)?;
        Ok(())
    };

    let real = o.super_nodes + o.edge_nodes > 0;
    if real && let Some(why) = hsn_testkit::node::missing() {
        bail!("{why}; run without --super-nodes and --edge-nodes for kwok nodes only");
    }
    let network = real.then(NodeNetwork::create).transpose()?;
    let images = match (&network, &o.images) {
        (Some(_), Some(bin)) => Some(NodeImages::build(&["hsn-agent", "hsn-ledger"], bin)?),
        (Some(_), None) => bail!("real nodes need --images BIN_DIR (where hsn-agent is)"),
        _ => None,
    };

    eprintln!("hsn-demo-env: {}: creating the hub", o.hub);
    let hub = KwokCluster::create(&o.hub).await?;
    hub.add_nodes(&[FakeNode::new("hub-node-1", "eu-central", "eu-central-1a")])
        .await?;
    write_kubeconfig(&o.hub, &hub)?;

    let mut members = BTreeMap::new();
    let mut nodes = Vec::new();
    let mut listing = String::new();
    let mut sites = Vec::new();
    for (name, region) in &o.members {
        eprintln!("hsn-demo-env: {name}: creating a member in {region}");
        let cluster = match &network {
            Some(net) => KwokCluster::create_for_nodes(name, net.gateway()).await?,
            None => KwokCluster::create(name).await?,
        };
        if !real {
            cluster
                .add_nodes(&hsn_testkit::operator::nodes(region, o.nodes_per_zone, 4))
                .await?;
        }
        if let (Some(net), Some(images)) = (&network, &images) {
            let roles = std::iter::repeat_n("super", o.super_nodes)
                .chain(std::iter::repeat_n("edge", o.edge_nodes));
            for (i, role) in roles.enumerate() {
                let zone = format!("{region}-1{}", if i % 2 == 0 { 'a' } else { 'b' });
                let node_name = format!("{region}-{role}-{}", i + 1);
                let mut spec = NodeSpec::new(&node_name)
                    .label("topology.kubernetes.io/region", region)
                    .label("topology.kubernetes.io/zone", &zone)
                    .images(images);
                if role == "edge" {
                    spec = spec.label(EDGE, "true").label(SLICE, "mmtc").taint(
                        EDGE_ONLY,
                        "true",
                        "NoSchedule",
                    );
                }
                let node = RealNode::start(&cluster, net, spec).await?;
                eprintln!(
                    "hsn-demo-env: {name}: real {role} node {node_name} Ready at {}",
                    node.ip()
                );
                listing.push_str(&line(role, name, &node_name, node.netns(), node.ip(), net));
                if role == "edge" {
                    let ue = Netns::unique("ue")?;
                    let addr =
                        net.attach(&ue, &format!("hu{}-{}", std::process::id(), sites.len()))?;
                    listing.push_str(&line("ue", name, &node_name, &ue, addr, net));
                    sites.push(ue);
                }
                nodes.push(node);
            }
        }
        write_kubeconfig(name, &cluster)?;
        members.insert(name.clone(), cluster);
    }
    if let Some(net) = &network {
        let services = Netns::unique("svc")?;
        let addr = net.attach(&services, &format!("hs{}", std::process::id()))?;
        listing.push_str(&line("services", "-", "services", &services, addr, net));
        sites.push(services);
    }
    std::fs::write(o.dir.join("real-nodes"), listing)?;
    std::fs::write(o.dir.join("env.ready"), format!("{}\n", std::process::id()))?;
    eprintln!("hsn-demo-env: ready; SIGTERM or SIGINT tears everything down");

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("hsn-demo-env: tearing down");
    let _ = std::fs::remove_file(o.dir.join("env.ready"));
    drop(sites);
    for node in nodes {
        node.stop().await;
    }
    for (_, cluster) in members {
        cluster.delete().await;
    }
    hub.delete().await;
    drop(network);
    Ok(())
}

/// One line of `DIR/real-nodes`.
fn line(
    kind: &str,
    member: &str,
    name: &str,
    ns: &Netns,
    v4: std::net::Ipv4Addr,
    net: &NodeNetwork,
) -> String {
    format!("{kind} {member} {name} {} {v4} {}\n", ns.name(), net.v6(v4))
}
