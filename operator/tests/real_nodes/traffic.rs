//! UE traffic through the operator's pods, paid from the one chain: a UE and the tenants'
//! services are namespaces on the nodes' network; the UE routes both tenants' prefixes (v4
//! and v6) via the edge node, whose agent meters and redirects them to its super node in
//! XDP; the super node's agent observes them per edge and the node forwards them to the
//! services. The edge ships its records and the super its observations to the super pod's
//! ledger over TLS; once the epochs are sealed, `hsnctl ledger verify` passes on the replica
//! and `hsnctl ledger rewards` pays the edge, by its HsnNode name, exactly the bytes sent.
//!
//! What the test wires here is the network around the cluster, as a site's routers would:
//! the UE's routes to the edge, the services behind the super node, and that node
//! forwarding (a Kubernetes node with a CNI forwards already). No agent or ledger flag.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use hsn_api::HsnNode;
use hsn_testkit::netns::Netns;
use hsn_testkit::node::{NodeNetwork, RealNode};
use hsn_testkit::operator::DEADLINE;
use hsn_testkit::wait_for_ok;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

use crate::{MEMBER_NS, NETWORK};

/// The tenants of the test's network: name, id, the services' addresses (v4, v6), prefixes.
pub(crate) const TENANTS: [(&str, u16, &str, &str, [&str; 2]); 2] = [
    (
        "acme",
        1,
        "10.77.0.1",
        "fd77::1",
        ["10.77.0.0/16", "fd77::/48"],
    ),
    (
        "globex",
        2,
        "10.78.0.1",
        "fd78::1",
        ["10.78.0.0/16", "fd78::/48"],
    ),
];
/// Epoch length and late window of the test's network: short, so the epochs the traffic
/// falls in are sealed within a minute or two. The window must cover the super pod's
/// replacement and the edge's backoff while its ledger is away.
pub(crate) const EPOCH_SECONDS: u64 = 10;
pub(crate) const LATE_WINDOW_SECONDS: u64 = 60;
/// UDP payload per datagram and datagrams per tenant and family.
const PAYLOAD: usize = 1000;
const DATAGRAMS: u64 = 150;
/// Datagrams in flight before the sender waits for the services to have them all.
const WINDOW: u64 = 25;
const PORT: u16 = 7000;

/// The UE and the services, on the nodes' network.
struct Site {
    ue: Netns,
    services: Netns,
}

impl Site {
    fn plug(network: &NodeNetwork, edge: &RealNode, super_node: &RealNode) -> Result<Self> {
        let pid = std::process::id();
        let ue = Netns::unique("ue")?;
        network.attach(&ue, &format!("hu{pid}"))?;
        let services = Netns::unique("svc")?;
        let svc = network.attach(&services, &format!("hs{pid}"))?;
        for (_, _, v4, v6, prefixes) in TENANTS {
            services.ip(&["addr", "add", &format!("{v4}/32"), "dev", "lo"])?;
            services.ip(&["-6", "addr", "add", &format!("{v6}/128"), "dev", "lo"])?;
            for prefix in prefixes {
                let (family, edge_addr, svc_addr) = if prefix.contains(':') {
                    (
                        "-6",
                        network.v6(edge.ip()).to_string(),
                        network.v6(svc).to_string(),
                    )
                } else {
                    ("-4", edge.ip().to_string(), svc.to_string())
                };
                // The UE's site routes the tenants via the edge node ...
                ue.ip(&[family, "route", "add", prefix, "via", &edge_addr])?;
                // ... and the super node's site has the services behind it.
                super_node
                    .netns()
                    .ip(&[family, "route", "add", prefix, "via", &svc_addr])?;
            }
        }
        super_node.netns().set_router()?;
        // A frame the edge redirects in XDP leaves the veth as it arrived: a checksum left
        // to "the NIC" would stay unfinished. A real NIC would have finished it.
        ue.exec("ethtool", &["-K", "eth0", "tx", "off"])?;
        Ok(Self { ue, services })
    }

    /// Sends [`DATAGRAMS`] to every tenant service over v4 and v6, [`WINDOW`] at a time,
    /// each window received by the services before the next; returns the IP bytes sent per
    /// tenant.
    fn send(&self) -> Result<BTreeMap<&'static str, u64>> {
        let mut sent = BTreeMap::new();
        for (tenant, _, v4, v6, _) in TENANTS {
            for dst in [v4, v6] {
                let dst: IpAddr = dst.parse()?;
                let server = self
                    .services
                    .run(|| UdpSocket::bind(SocketAddr::new(dst, PORT)))??;
                server.set_read_timeout(Some(Duration::from_secs(5)))?;
                let client = self.ue.run(|| {
                    let any: IpAddr = if dst.is_ipv4() {
                        Ipv4Addr::UNSPECIFIED.into()
                    } else {
                        std::net::Ipv6Addr::UNSPECIFIED.into()
                    };
                    UdpSocket::bind(SocketAddr::new(any, 0))
                })??;
                let payload = vec![0x5a; PAYLOAD];
                let mut buf = vec![0; PAYLOAD + 1];
                for start in (0..DATAGRAMS).step_by(WINDOW as usize) {
                    let n = WINDOW.min(DATAGRAMS - start);
                    for _ in 0..n {
                        client.send_to(&payload, SocketAddr::new(dst, PORT))?;
                    }
                    for i in 0..n {
                        let got = server.recv(&mut buf).with_context(|| {
                            format!(
                                "{tenant} {dst}: datagram {} of {DATAGRAMS} did not reach the service",
                                start + i + 1
                            )
                        })?;
                        ensure!(got == PAYLOAD, "{got} bytes received");
                    }
                }
                let header = if dst.is_ipv4() { 28 } else { 48 };
                *sent.entry(tenant).or_default() += DATAGRAMS * (PAYLOAD as u64 + header);
            }
        }
        Ok(sent)
    }
}

impl Site {
    /// Where the packets went: every hop's routes, neighbours, counters and datapath stats.
    fn diagnose(&self, edge: &RealNode, super_node: &RealNode) {
        let mut hops: Vec<(&str, &Netns)> = vec![("ue", &self.ue)];
        hops.extend([("edge", edge.netns()), ("super", super_node.netns())]);
        hops.push(("services", &self.services));
        for (name, ns) in hops {
            for cmd in [
                &["ip", "-6", "route"][..],
                &["ip", "-6", "neigh"],
                &["ip", "-s", "link", "show", "eth0"],
                &["nstat", "-az"],
                &["bpftool", "map", "dump", "name", "edge_stats"],
                &["bpftool", "map", "dump", "name", "super_stats"],
            ] {
                let out = ns.exec(cmd[0], &cmd[1..]).unwrap_or_else(|e| e.to_string());
                let out: String = out
                    .lines()
                    .filter(|l| !l.contains(" 0 ") || !cmd.contains(&"nstat"))
                    .collect::<Vec<_>>()
                    .join("\n");
                eprintln!("{name}: {}:\n{out}", cmd.join(" "));
            }
        }
    }
}

/// `hsnctl ledger <args>` against the super node's ledger over TLS; its JSON output.
fn hsnctl(url: &str, ca: &Path, args: &[&str]) -> Result<Value> {
    let out = Command::new(hsn_testkit::cargo_bin("hsnctl")?)
        .args(["ledger", "--addr", url, "--ca"])
        .arg(ca)
        .args([
            "--tls-domain",
            &hsn_operator::resources::ledger_server_name(NETWORK),
            "-o",
            "json",
        ])
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "hsnctl ledger {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The super agent hands the operator's registry changes to its ledger as they are
/// published (not when the kubelet refreshes the ledger's mounted copy, about a minute).
async fn registry_followed(member: &Client) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(member.clone(), MEMBER_NS);
    let params = LogParams {
        container: Some("agent".into()),
        ..LogParams::default()
    };
    wait_for_ok(
        "the super agent handing a registry change to its ledger",
        DEADLINE,
        || async {
            let log = pods
                .logs("hsn-super-node-0", &params)
                .await
                .map_err(|e| e.to_string())?;
            if log.contains("registry change handed to the ledger") {
                Ok(())
            } else {
                Err(log.lines().rev().take(5).collect::<Vec<_>>().join("\n"))
            }
        },
    )
    .await?;
    Ok(())
}

/// One BPF map entry's raw bytes: (key, value).
type MapEntry = (Vec<u8>, Vec<u8>);

/// The raw entries of every BPF map named `name` (map names are the kernel's, not the
/// node's: every agent's map of that name, whichever node).
fn map_entries(node: &RealNode, name: &str) -> Result<Vec<MapEntry>, String> {
    let dump = node
        .exec("bpftool", &["-j", "map", "dump", "name", name])
        .map_err(|e| e.to_string())?;
    let entries: Value = serde_json::from_str(&dump).map_err(|e| format!("{e}: {dump}"))?;
    let bytes = |v: &Value| -> Vec<u8> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| {
                b.as_str()
                    .and_then(|s| u8::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                    .or_else(|| b.as_u64().and_then(|v| u8::try_from(v).ok()))
            })
            .collect()
    };
    // One map: its entries; several of that name: one object per map, with "entries".
    let flat = entries.as_array().into_iter().flatten().flat_map(|e| {
        e.get("entries")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| vec![e.clone()])
    });
    Ok(flat
        .map(|e| (bytes(&e["key"]), bytes(&e["value"])))
        .collect())
}

/// An address as the programs key it: IPv6, or IPv4 mapped.
fn addr16(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Waits until the edge's agent programmed its tunnel to the super node (a next hop whose
/// outer destination is the super's address: `struct hsn_next_hop`, ifindex first, remote
/// at byte 32) and the super node's agent knows the edge by its address with a way back.
async fn tunnelled(edge: &RealNode, super_node: &RealNode) -> Result<()> {
    let (edge_addr, super_addr) = (addr16(edge.ip().into()), addr16(super_node.ip().into()));
    let programmed = |entries: &[MapEntry], key: Option<&[u8]>, remote: &[u8]| {
        entries.iter().any(|(k, v)| {
            key.is_none_or(|key| k.as_slice() == key)
                && v.len() >= 48
                && v[..4] != [0; 4]
                && &v[32..48] == remote
        })
    };
    wait_for_ok(
        "the edge tunnelling to its super node",
        DEADLINE,
        || async {
            let entries = map_entries(edge, "next_hop")?;
            if programmed(&entries, None, &super_addr) {
                Ok(())
            } else {
                Err(format!("{entries:?}"))
            }
        },
    )
    .await?;
    wait_for_ok(
        "the super node knowing the edge and its way back",
        DEADLINE,
        || async {
            let entries = map_entries(super_node, "super_edges")?;
            if programmed(&entries, Some(&edge_addr), &edge_addr) {
                Ok(())
            } else {
                Err(format!("{entries:?}"))
            }
        },
    )
    .await?;
    Ok(())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The name of the edge's HsnNode in the hub.
async fn hsn_node_of(hub: &Client, edge: &RealNode) -> Result<String> {
    let nodes = Api::<HsnNode>::namespaced(hub.clone(), "default")
        .list(&ListParams::default())
        .await?;
    nodes
        .items
        .iter()
        .find(|n| n.spec.node_name.as_deref() == Some(edge.name()))
        .map(ResourceExt::name_any)
        .with_context(|| format!("no HsnNode for node {}", edge.name()))
}

/// What the UE sent, through the nodes, and when.
pub(crate) struct Traffic {
    /// Kept until the end: the namespaces go with it.
    _site: Site,
    sent: BTreeMap<&'static str, u64>,
    first_epoch: u64,
    last_epoch: u64,
}

/// Sends the UE's traffic once the edge redirects to its super node.
pub(crate) async fn send(
    network: &NodeNetwork,
    member: &Client,
    edge: &RealNode,
    super_node: &RealNode,
) -> Result<Traffic> {
    tunnelled(edge, super_node).await?;
    registry_followed(member).await?;
    let site = Site::plug(network, edge, super_node)?;
    // The traffic starts just after an epoch begins and ends well before it does: the edge
    // and the super close an epoch at slightly different instants, so bytes crossing a
    // boundary can land in different epochs on each side, which the ledger judges as a
    // dispute (a known limit until the datapath dates packets itself; README).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let into = now.as_millis() % u128::from(EPOCH_SECONDS * 1000);
    let wait = u64::try_from(u128::from(EPOCH_SECONDS * 1000) - into)? + 300;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let first_epoch = unix_now() / EPOCH_SECONDS;
    let sent = match tokio::task::block_in_place(|| site.send()) {
        Ok(sent) => sent,
        Err(e) => {
            site.diagnose(edge, super_node);
            return Err(e);
        }
    };
    let last_epoch = unix_now() / EPOCH_SECONDS;
    println!(
        "UE → edge {} ═tunnel═▶ super → services: {sent:?} IP bytes, epochs {first_epoch}..={last_epoch}",
        edge.name()
    );
    Ok(Traffic {
        _site: site,
        sent,
        first_epoch,
        last_epoch,
    })
}

impl Traffic {
    /// The traffic's epochs sealed in the chain: `hsnctl ledger rewards` pays the edge, by
    /// its HsnNode's name, exactly the bytes sent, nothing is disputed, unobserved or
    /// unclaimed, and `hsnctl ledger verify` passes on the replica.
    pub(crate) async fn paid(
        &self,
        hub: &Client,
        member: &Client,
        edge: &RealNode,
        super_node: &RealNode,
    ) -> Result<()> {
        let (first_epoch, last_epoch) = (self.first_epoch, self.last_epoch);
        let total: u64 = self.sent.values().sum();
        let (ca_dir, _) = hsn_testkit::operator::ledger_tls(member, MEMBER_NS, NETWORK).await?;
        let ca = ca_dir.path().join(hsn_operator::resources::CA_CERT_KEY);
        let url = format!("https://{}:{}", super_node.ip(), hsn_core::ports::LEDGER);
        let (from, to) = (first_epoch.to_string(), last_epoch.to_string());
        // Sealed once the last epoch's late window is over (block time), plus shipping.
        let started = Instant::now();
        let rewards = wait_for_ok(
            "the traffic's epochs sealed and paid",
            DEADLINE * 2,
            || async {
                let rewards = tokio::task::block_in_place(|| {
                    hsnctl(&url, &ca, &["rewards", "--from", &from, "--to", &to])
                })
                .map_err(|e| e.to_string())?;
                let final_through = rewards["final_through"].as_u64();
                if final_through.is_some_and(|f| f >= last_epoch) {
                    Ok(rewards)
                } else {
                    Err(format!("not final yet: {rewards}"))
                }
            },
        )
        .await?;
        println!(
            "sealed {} s after the traffic: {rewards}",
            started.elapsed().as_secs()
        );
        let edge_name = hsn_node_of(hub, edge).await?;
        let nodes = rewards["nodes"].as_array().context("nodes")?;
        let paid: Vec<(&str, u64)> = nodes
            .iter()
            .map(|n| {
                (
                    n["name"].as_str().unwrap_or("?"),
                    n["attested_bytes"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        ensure!(
            paid == [(edge_name.as_str(), total)],
            "rewards paid {paid:?}, want {edge_name} for {total} bytes: {rewards}"
        );
        for field in ["disputed", "unobserved", "unclaimed"] {
            ensure!(rewards[field] == 0, "{field}: {rewards}");
        }
        let verified = tokio::task::block_in_place(|| hsnctl(&url, &ca, &["verify"]))?;
        ensure!(
            verified["entries"].as_u64() >= Some(2) && verified["network"] == NETWORK,
            "hsnctl ledger verify: {verified}"
        );
        println!("hsnctl ledger verify on the replica: {verified}");
        Ok(())
    }
}
