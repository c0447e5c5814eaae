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
//! own packet counters; the super node's counters must agree on uplink.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use common::Bpffs;
use hsn_agent::spool::EpochFile;
use hsn_core::{Direction, MacAddr, TenantId};
use hsn_ebpf::{
    EdgeConfig, EdgeDatapath, EdgeNode, PinDir, SuperConfig, SuperDatapath, TenantPrefixes,
};
use hsn_testkit::bpf::xdp_prog_id;
use hsn_testkit::netns::{Capture, Frame, LinkStats, NsChild};
use hsn_testkit::topology::{self, Chain, EDGE_UE_IF, UE_IF, UE_V4, UE_V6};

const ACME: TenantId = TenantId::new(7).unwrap();
const BETA: TenantId = TenantId::new(9).unwrap();
const ACME_V4: &str = "10.7.0.10";
const ACME_V6: &str = "2001:db8:7::10";
const BETA_V4: &str = "10.9.0.5";
const BETA_V6: &str = "2001:db8:9::5";
const OTHER_V4: &str = "198.51.100.10";
/// The edge's identity on the super node.
const EDGE_ID: &str = "192.0.2.1";
/// The edge's MAC towards the super node, and the super node's: the next hop.
const EDGE_MAC: MacAddr = topology::edge_super_mac(0);
const SUPER_MAC: MacAddr = topology::super_edge_mac(0);
/// The agent's /metrics, on loopback inside the edge namespace (which nothing else uses).
const METRICS: &str = "127.0.0.1:9100";
const TCP_PORT: u16 = 7001;
const UDP_PORT: u16 = 7000;
/// Bound on every socket operation and wait.
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

/// The super program on the super node's edge-facing veth: it meters the edge's uplink and
/// gives the veth the NAPI that the edge's native redirect into it needs.
fn super_datapath(chain: &Chain) -> anyhow::Result<SuperDatapath> {
    chain.supers[0].run(|| -> anyhow::Result<_> {
        let mut dp = SuperDatapath::load(&SuperConfig {
            pin: None,
            edge_by_addr: false,
        })?;
        dp.attach(&topology::super_edge_if(0))?;
        dp.set_tenants(&tenants())?;
        dp.set_edges(&[EdgeNode {
            mac: EDGE_MAC,
            addr: EDGE_ID.parse()?,
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

/// A TCP connection from the UE to the service that stays open across the agent's restart.
struct Flow {
    client: TcpStream,
    received: Arc<AtomicU64>,
    sink: JoinHandle<anyhow::Result<()>>,
    written: u64,
}

impl Flow {
    fn open(chain: &Chain, dst: &str) -> anyhow::Result<Self> {
        let addr = SocketAddr::new(dst.parse()?, TCP_PORT);
        let listener = chain.service.run(|| TcpListener::bind(addr))??;
        let client = chain
            .ue
            .run(|| TcpStream::connect_timeout(&addr, TIMEOUT))?
            .with_context(|| format!("connect to {addr}"))?;
        client.set_write_timeout(Some(TIMEOUT))?;
        client.set_read_timeout(Some(TIMEOUT))?;
        // The connection is established: accept returns at once.
        let (mut server, _) = listener.accept()?;
        server.set_read_timeout(Some(TIMEOUT))?;
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        let sink = std::thread::spawn(move || -> anyhow::Result<()> {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match server.read(&mut buf).context("sink read")? {
                    0 => return Ok(()),
                    n => count.fetch_add(n as u64, Ordering::SeqCst),
                };
            }
        });
        Ok(Self {
            client,
            received,
            sink,
            written: 0,
        })
    }

    /// Writes 64 KiB every 5 ms until `stop`, then hands the flow back.
    fn pump(mut self, stop: Arc<AtomicBool>) -> JoinHandle<anyhow::Result<Self>> {
        std::thread::spawn(move || {
            let chunk: Vec<u8> = (0..1 << 16).map(|i| (i % 251) as u8).collect();
            while !stop.load(Ordering::SeqCst) {
                self.client.write_all(&chunk)?;
                self.written += chunk.len() as u64;
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(self)
        })
    }

    /// Half-closes, lets the sink see EOF and close, waits for its FIN.
    fn close(self) -> anyhow::Result<()> {
        let Self {
            mut client,
            sink,
            received,
            written,
        } = self;
        client.shutdown(std::net::Shutdown::Write)?;
        join(sink)?;
        ensure!(
            received.load(Ordering::SeqCst) == written,
            "every byte written was received"
        );
        let mut buf = [0u8; 16];
        ensure!(client.read(&mut buf)? == 0, "the sink sent data");
        Ok(())
    }
}

/// Lock-step UDP from the UE, round robin over `dsts`, each datagram echoed back, until
/// `stop`; returns how many round trips were made. A datagram lost (e.g. tenant uplink the
/// edge's kernel got instead of the program) fails it.
fn udp(
    chain: &Chain,
    dsts: &[&str],
    stop: Arc<AtomicBool>,
) -> anyhow::Result<JoinHandle<anyhow::Result<u64>>> {
    let mut pairs = Vec::new();
    for dst in dsts {
        let dst: IpAddr = dst.parse()?;
        let src: IpAddr = if dst.is_ipv4() { UE_V4 } else { UE_V6 }.parse()?;
        let server = chain
            .service
            .run(|| UdpSocket::bind(SocketAddr::new(dst, UDP_PORT)))??;
        let client = chain
            .ue
            .run(|| UdpSocket::bind(SocketAddr::new(src, 0)))??;
        for sock in [&server, &client] {
            sock.set_read_timeout(Some(TIMEOUT))?;
        }
        pairs.push((dst, server, client));
    }
    Ok(std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let (dst, server, client) = &pairs[i as usize % pairs.len()];
            let size = 64 + (i as usize * 97) % 1300;
            client.send_to(&vec![i as u8; size], (*dst, UDP_PORT))?;
            let (n, from) = server
                .recv_from(&mut buf)
                .with_context(|| format!("datagram {i} to {dst}"))?;
            ensure!(n == size);
            server.send_to(&buf[..n / 2 + 1], from)?;
            client
                .recv(&mut buf)
                .with_context(|| format!("echo {i} from {dst}"))?;
            i += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(i)
    }))
}

fn join<T>(handle: JoinHandle<anyhow::Result<T>>) -> anyhow::Result<T> {
    match handle.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
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

/// Per (tenant, direction) packets and IP bytes that crossed the UE's link.
fn captured(frames: &[Frame]) -> anyhow::Result<Totals> {
    let mut out = Totals::new();
    for f in frames.iter().filter(|f| f.ifname == UE_IF) {
        let ip =
            f.ip.with_context(|| format!("non-IP frame on ue0: {f:?}"))?;
        ensure!(
            f.len == ip.len as usize + 14,
            "not one packet per frame: {f:?}"
        );
        let key = match (tenant_of(ip.dst), tenant_of(ip.src)) {
            (Some(t), _) => (t, Direction::Uplink),
            (None, Some(t)) => (t, Direction::Downlink),
            (None, None) => continue,
        };
        let e = out.entry(key).or_default();
        *e = (e.0 + 1, e.1 + u64::from(ip.len));
    }
    Ok(out)
}

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
        Flow::open(&chain, ACME_V4)?.pump(stop.clone()),
        Flow::open(&chain, BETA_V6)?.pump(stop.clone()),
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
    let sent = captured(&frames)?;
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

    // The super node saw exactly the uplink, all of it from this edge.
    let mut uplink = Totals::new();
    for c in super_dp.counters()? {
        assert_eq!(c.edge.to_string(), EDGE_ID);
        uplink.insert((c.tenant, c.direction), (c.packets, c.bytes));
    }
    let sent_up: Totals = sent
        .iter()
        .filter(|((_, d), _)| *d == Direction::Uplink)
        .map(|(k, v)| (*k, *v))
        .collect();
    assert_eq!(uplink, sent_up, "super-node counters vs uplink sent");

    drop(agent);
    pins.remove()?;
    ensure!(!pins.path().exists());
    Ok(())
}
