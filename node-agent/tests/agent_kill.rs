//! The real `hsn-agent` binary, SIGKILLed in the middle of a traffic run and started again:
//! its spool must account for every byte exactly once.
//!
//! `ue <-> edge <-> super <-> service` in network namespaces (hsn-testkit's `topology`:
//! veths without ARP/ND, static neighbours). The agent runs standalone in the edge namespace
//! (`--routes-file`, `--next-hop`, one-second epochs, counters, state maps and XDP links
//! pinned on a bpffs this test mounts); the super node runs the super program from this
//! test. Traffic never
//! pauses: TCP connections to two tenants (IPv4, IPv6) and lock-step UDP to both tenants
//! and to a non-tenant address run from before the kill until after the restarted agent
//! has taken over. The program stays attached through its pinned link while no agent runs
//! (it keeps metering and redirecting: tenant uplink the edge's kernel got instead would
//! be lost, as it has no route for it), and the new agent swaps its program in atomically.
//! The independent measure is a capture on the UE's link, checked against the interface's
//! own packet counters; the super node's counters must agree, both ways. An agent that
//! starts while another program holds its interface waits for it to leave.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use common::Bpffs;
use hsn_agent::spool::EpochFile;
use hsn_core::{Direction, MacAddr, TenantId};
use hsn_ebpf::{
    EdgeConfig, EdgeDatapath, EdgeNode, NextHop, PinDir, SuperConfig, SuperDatapath, TenantPrefixes,
};
use hsn_testkit::bpf::xdp_prog_id;
use hsn_testkit::netns::{Capture, LinkStats, NsChild};
use hsn_testkit::topology::{self, Chain, EDGE_UE_IF, UE_IF};
use hsn_testkit::traffic::{TcpFlow, UdpEcho, join, ue_traffic};

const ACME: TenantId = TenantId::new(7).unwrap();
const BETA: TenantId = TenantId::new(9).unwrap();
const ACME_V4: &str = "10.7.0.10";
const ACME_V6: &str = "2001:db8:7::10";
const BETA_V4: &str = "10.9.0.5";
const BETA_V6: &str = "2001:db8:9::5";
const OTHER_V4: &str = "198.51.100.10";
/// The edge's identity on the super node: its tunnel's outer source.
const EDGE_ID: &str = topology::EDGE_V4;
/// The edge's MAC towards the super node, and the super node's: the next hop.
const EDGE_MAC: MacAddr = topology::edge_super_mac(0);
const SUPER_MAC: MacAddr = topology::super_edge_mac(0);
/// The agent's /metrics, on loopback inside the edge namespace (which nothing else uses).
const METRICS: &str = "127.0.0.1:9100";
/// Bound on every wait.
const TIMEOUT: Duration = Duration::from_secs(15);

fn tenants() -> Vec<TenantPrefixes> {
    let t = |tenant, v4: &str, v6: &str| TenantPrefixes {
        tenant,
        prefixes: vec![v4.parse().unwrap(), v6.parse().unwrap()],
    };
    vec![
        t(ACME, "10.7.0.0/16", "2001:db8:7::/48"),
        t(BETA, "10.9.0.0/16", "2001:db8:9::/48"),
    ]
}

/// The standalone agent's routes table: one super node, this edge, two tenants.
fn routes_json(network: &str) -> String {
    serde_json::json!({
        "version": 1,
        "network": network,
        "epochSeconds": 1,
        "supers": [{"id": "c1/super-0", "address": "192.168.1.2"}],
        "edges": [{"node": "e1", "superId": "c1/super-0"}],
        "tenants": [
            {"name": "acme", "id": ACME, "prefixes": ["10.7.0.0/16", "2001:db8:7::/48"]},
            {"name": "beta", "id": BETA, "prefixes": ["10.9.0.0/16", "2001:db8:9::/48"]},
        ],
    })
    .to_string()
}

fn tenant_of(addr: IpAddr) -> Option<TenantId> {
    tenants()
        .into_iter()
        .find(|t| t.prefixes.iter().any(|p| p.contains(&addr)))
        .map(|t| t.tenant)
}

/// Namespaces and links (see the module comment), with one super node.
fn build_chain() -> anyhow::Result<Chain> {
    let mut chain = Chain::builder();
    for addr in [ACME_V4, BETA_V4, OTHER_V4, ACME_V6, BETA_V6] {
        chain = chain.service_addr(addr);
    }
    // Non-tenant only: tenant uplink gets to the super node by the redirect or not at all.
    chain
        .edge_route(OTHER_V4)
        .build()
        .context("the chain (needs ethtool: hack/install-deps.sh)")
}

/// The super program on the super node's edge-facing veth (it takes the edge's uplink out
/// of its tunnel, and gives the veth the NAPI that the edge's native redirect into it
/// needs) and on its service-facing veth (it tunnels the downlink back to the edge).
fn super_datapath(chain: &Chain) -> anyhow::Result<SuperDatapath> {
    chain.supers[0].run(|| -> anyhow::Result<_> {
        let mut dp = SuperDatapath::load(&SuperConfig::default())?;
        dp.attach(&topology::super_edge_if(0))?;
        dp.attach(&topology::super_service_if(0))?;
        dp.set_tenants(&tenants())?;
        let edge = EDGE_ID.parse()?;
        let back = NextHop::via(
            &topology::super_edge_if(0),
            EDGE_MAC,
            topology::super_edge_v4(0).parse()?,
            edge,
        )?;
        dp.set_edges(&[EdgeNode {
            addr: edge,
            route: Some(back),
        }])?;
        Ok(dp)
    })?
}

/// One `hsn-agent` process in the edge namespace, its output in files.
struct Agent {
    child: NsChild,
    log: PathBuf,
}

fn start_agent(
    chain: &Chain,
    network: &str,
    dir: &Path,
    bpffs: &Path,
    run: u32,
) -> anyhow::Result<Agent> {
    let log = dir.join(format!("agent-{run}.log"));
    let mut cmd = chain.edge.command(env!("CARGO_BIN_EXE_hsn-agent"));
    cmd.args(["--role", "edge", "--network", network, "--node-name", "e1"])
        .arg("--routes-file")
        .arg(dir.join("routes.json"))
        .args(["--interface", EDGE_UE_IF])
        .args(["--interface", &topology::edge_super_if(0)])
        .args([
            "--next-hop",
            &format!("{},{SUPER_MAC}", topology::edge_super_if(0)),
        ])
        .args(["--advertise-address", EDGE_ID])
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--bpffs")
        .arg(bpffs)
        .args(["--no-ledger", "--metrics-addr", METRICS])
        // As in the table: the epoch loop takes its first sleep before reading the table.
        .args(["--epoch-seconds", "1"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log)?)
        .stderr(fs::File::create(dir.join(format!("agent-{run}.err")))?);
    Ok(Agent {
        child: NsChild::spawn(cmd)?,
        log,
    })
}

impl Agent {
    /// Waits until the agent has programmed its maps (tenants and next hop) once.
    fn wait_programmed(&mut self, chain: &Chain) -> anyhow::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the agent exited ({status}): {}", self.output());
            }
            let body = chain.edge.run(metrics)?.unwrap_or_default();
            let programmed = body
                .lines()
                .filter_map(|l| l.strip_prefix("hsn_agent_map_update_seconds_count "))
                .any(|n| n.trim().parse::<u64>().is_ok_and(|n| n >= 1));
            if programmed {
                // A live agent's /metrics, as Prometheus lints it.
                let (_, text) = body.split_once("\r\n\r\n").unwrap_or_default();
                hsn_testkit::promtool::check_metrics(text).map_err(anyhow::Error::msg)?;
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the agent did not program its maps within {TIMEOUT:?}: {}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn output(&self) -> String {
        let err = self.log.with_extension("err");
        format!(
            "\n--- {} ---\n{}\n--- {} ---\n{}",
            self.log.display(),
            fs::read_to_string(&self.log).unwrap_or_default(),
            err.display(),
            fs::read_to_string(&err).unwrap_or_default()
        )
    }
}

/// GET /metrics (called on a thread inside the edge namespace); `None` until it answers.
fn metrics() -> Option<String> {
    let mut s = TcpStream::connect_timeout(&METRICS.parse().ok()?, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Writes 64 KiB every 5 ms into a TCP connection that stays open across the agent's
/// restart, until `stop`; then hands the flow back.
fn pump(mut flow: TcpFlow, stop: Arc<AtomicBool>) -> JoinHandle<anyhow::Result<TcpFlow>> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            flow.write(1 << 16)?;
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(flow)
    })
}

/// Lock-step UDP from the UE, round robin over `dsts`, each datagram echoed back, until
/// `stop`; returns how many round trips were made. A datagram lost (e.g. tenant uplink the
/// edge's kernel got instead of the program) fails it.
fn udp(
    chain: &Chain,
    dsts: &[&str],
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<anyhow::Result<u64>>> {
    let echoes = dsts
        .iter()
        .map(|dst| UdpEcho::bind(chain, dst))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(std::thread::spawn(move || {
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let size = 64 + (i as usize * 97) % 1300;
            echoes[i as usize % echoes.len()].round_trip(i, size)?;
            i += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(i)
    }))
}

/// The id of the XDP program on the edge's UE-facing interface.
fn xdp_prog(chain: &Chain) -> anyhow::Result<Option<u32>> {
    Ok(xdp_prog_id(&chain.edge, EDGE_UE_IF)?)
}

/// Tenant uplink packets the super node has counted.
fn super_uplink(dp: &SuperDatapath) -> anyhow::Result<u64> {
    Ok(dp
        .counters()?
        .iter()
        .filter(|c| c.direction == Direction::Uplink)
        .map(|c| c.packets)
        .sum())
}

/// Polls `ready` every 10 ms until it holds, at most [`TIMEOUT`].
fn wait_until(what: &str, mut ready: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while !ready()? {
        ensure!(Instant::now() < deadline, "{what}: not within {TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

type Totals = BTreeMap<(TenantId, Direction), (u64, u64)>;

/// Every closed epoch in the spool, by epoch. Read directly: `Spool::open` would delete the
/// running agent's in-progress `.tmp` file.
fn spool(dir: &Path) -> anyhow::Result<BTreeMap<u64, EpochFile>> {
    let mut out = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(out);
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let file: EpochFile = serde_json::from_str(&fs::read_to_string(&path)?)
                .with_context(|| format!("{}", path.display()))?;
            ensure!(out.insert(file.epoch, file).is_none(), "epoch twice");
        }
    }
    Ok(out)
}

fn spooled(files: &BTreeMap<u64, EpochFile>) -> Totals {
    let mut out = Totals::new();
    for r in files.values().flat_map(|f| &f.records) {
        let dir = r.direction;
        let e = out.entry((r.tenant_id, dir)).or_default();
        *e = (e.0 + r.packets, e.1 + r.bytes);
    }
    out
}

#[test]
fn a_sigkilled_agent_restarts_from_its_pins_and_spool_without_losing_or_doubling_a_byte()
-> anyhow::Result<()> {
    if !common::can_bpf() {
        return Ok(());
    }
    let chain = build_chain()?;
    let super_dp = super_datapath(&chain)?;
    let bpffs = Bpffs::mount()?;
    let network = format!("kill{}", std::process::id());
    let pins = PinDir::under(bpffs.0.path(), &network)?;
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("routes.json"), routes_json(&network))?;
    let spool_dir = dir.path().join("state").join("spool");

    let mut agent = start_agent(&chain, &network, dir.path(), bpffs.0.path(), 1)?;
    agent.wait_programmed(&chain)?;
    let capture = Capture::start(&chain.ue, Duration::from_secs(120))?;
    let ue0 = chain.ue.link_stats(UE_IF)?;
    let super0 = super_dp.counters()?;
    ensure!(super0.is_empty() && spool(&spool_dir)?.values().all(|f| f.records.is_empty()));

    // Traffic from here until after the restart, without a pause.
    let stop = Arc::new(AtomicBool::new(false));
    let pumps = vec![
        pump(TcpFlow::open(&chain, ACME_V4)?, stop.clone()),
        pump(TcpFlow::open(&chain, BETA_V6)?, stop.clone()),
    ];
    let datagrams = udp(&chain, &[ACME_V6, BETA_V4, OTHER_V4], stop.clone())?;
    wait_until("an epoch with traffic in the spool", || {
        Ok(!spooled(&spool(&spool_dir)?).is_empty())
    })
    .with_context(|| agent.output())?;

    let first_prog = xdp_prog(&chain)?.context("the agent attached to e-ue")?;
    let status = agent.child.kill()?;
    println!("agent killed: {status}");
    ensure!(
        pins.path().join("edge_slot_counters").exists()
            && pins.path().join("link_hsn_edge_e-ue_native").exists(),
        "counters and links are pinned"
    );
    // With no agent running the program stays attached, meters into the pinned counters
    // and redirects to the super node.
    let pinned = EdgeDatapath::load(&EdgeConfig {
        pin: Some(pins.clone()),
        ..EdgeConfig::default()
    })?;
    let metered = |dp: &EdgeDatapath| -> anyhow::Result<u64> {
        Ok(dp.counters()?.iter().map(|c| c.packets).sum())
    };
    let (metered0, redirected0) = (metered(&pinned)?, super_uplink(&super_dp)?);
    wait_until("metering and redirecting with no agent", || {
        Ok(metered(&pinned)? > metered0 + 100 && super_uplink(&super_dp)? > redirected0 + 100)
    })?;
    ensure!(
        xdp_prog(&chain)? == Some(first_prog),
        "still the first agent's program"
    );
    drop(pinned);

    let mut agent = start_agent(&chain, &network, dir.path(), bpffs.0.path(), 2)?;
    agent.wait_programmed(&chain)?;
    let second_prog = xdp_prog(&chain)?.context("attached")?;
    ensure!(
        second_prog != first_prog,
        "the new agent's program took the link over"
    );
    let newest = *spool(&spool_dir)?.keys().last().context("epochs")?;
    wait_until("an epoch closed by the new agent", || {
        Ok(spool(&spool_dir)?.keys().last() > Some(&newest))
    })
    .with_context(|| agent.output())?;
    stop.store(true, Ordering::SeqCst);
    for pump in pumps {
        join(pump)?.close()?;
    }
    println!("{} UDP round trips", join(datagrams)?);

    // What crossed the UE's link: the capture, once it has every frame ue0 counted.
    let link = || -> anyhow::Result<LinkStats> { Ok(chain.ue.link_stats(UE_IF)?.since(&ue0)) };
    wait_until("capture caught up with ue0", || {
        let l = link()?;
        Ok(capture.seen() == l.tx_packets + l.rx_packets)
    })?;
    let frames = capture.stop()?;
    let l = link()?;
    ensure!(
        frames.len() as u64 == l.tx_packets + l.rx_packets,
        "capture {} frames, ue0 counted {l:?}",
        frames.len()
    );
    let sent = ue_traffic(&frames, tenant_of)?.tenant;
    ensure!(sent.len() == 4, "both tenants, both directions: {sent:?}");
    ensure!(
        agent.output().contains("took over the pinned link"),
        "{}",
        agent.output()
    );

    // The spool reaches exactly that once the epochs after the traffic have closed, and
    // stays there: a later epoch adds nothing.
    let mut last = Totals::new();
    wait_until("spool totals equal the traffic", || {
        last = spooled(&spool(&spool_dir)?);
        Ok(last == sent)
    })
    .with_context(|| format!("spool {last:?}\n sent {sent:?}{}", agent.output()))?;
    let newest = *spool(&spool_dir)?.keys().last().context("epochs")?;
    wait_until("one more epoch", || {
        Ok(spool(&spool_dir)?.keys().last() > Some(&newest))
    })?;
    let files = spool(&spool_dir)?;
    assert_eq!(spooled(&files), sent, "still exact an epoch later");
    let sequences: Vec<u64> = files
        .values()
        .flat_map(|f| f.records.iter().map(|r| r.sequence))
        .collect();
    assert!(
        sequences.windows(2).all(|w| w[0] < w[1]),
        "record sequences increase across the restart: {sequences:?}"
    );

    // The super node saw exactly the same, both ways (uplink out of the edge's tunnel,
    // downlink into it), all of it from this edge.
    let mut observed = Totals::new();
    for c in super_dp.counters()? {
        assert_eq!(c.edge.to_string(), EDGE_ID);
        observed.insert((c.tenant, c.direction), (c.packets, c.bytes));
    }
    assert_eq!(observed, sent, "super-node counters vs traffic");

    drop(agent);
    pins.remove()?;
    ensure!(!pins.path().exists());
    Ok(())
}

/// An agent whose interface runs another program (a super node placed on a node of the
/// network's edges finds that edge's program there until the edge agent has drained) waits
/// for it to go, then attaches and programs its maps: no exit into the kubelet's restart
/// backoff.
#[test]
fn an_agent_waits_for_another_program_to_leave_its_interface() -> anyhow::Result<()> {
    if !common::can_bpf() {
        return Ok(());
    }
    let chain = build_chain()?;
    let _super_dp = super_datapath(&chain)?;
    let bpffs = Bpffs::mount()?;
    let network = format!("busy{}", std::process::id());
    let dir = tempfile::tempdir()?;
    fs::write(dir.path().join("routes.json"), routes_json(&network))?;
    // Another role's program on the UE-facing interface: the draining agent's.
    let other = chain.edge.run(|| -> anyhow::Result<_> {
        let mut dp = SuperDatapath::load(&SuperConfig::default())?;
        dp.attach(EDGE_UE_IF)?;
        Ok(dp)
    })??;
    let other_prog = xdp_prog(&chain)?.context("the other program on e-ue")?;

    let mut agent = start_agent(&chain, &network, dir.path(), bpffs.0.path(), 1)?;
    wait_until("the agent waiting for the interface", || {
        Ok(agent
            .output()
            .contains("another program runs on the interface"))
    })
    .with_context(|| agent.output())?;
    std::thread::sleep(Duration::from_secs(2));
    ensure!(
        agent.child.try_wait()?.is_none(),
        "the agent waits, it does not exit: {}",
        agent.output()
    );
    ensure!(
        xdp_prog(&chain)? == Some(other_prog),
        "the other program stays"
    );

    drop(other);
    agent.wait_programmed(&chain)?;
    let prog = xdp_prog(&chain)?.context("the agent's program on e-ue")?;
    ensure!(prog != other_prog, "the agent attached its own program");
    println!("the agent attached once the other program left (program {other_prog} → {prog})");
    Ok(())
}
