//! `ue <-> edge <-> super{1,2} <-> service` (hsn-testkit's [`Chain`]) with the edge and
//! super-node programs attached, and the traffic and counting helpers the end-to-end tests
//! share.
//!
//! The edge has no kernel route to any tenant prefix: tenant uplink reaches the service only
//! through the XDP redirect to a super node, which routes it (one TTL hop). Non-tenant
//! traffic is routed by the edge's kernel via super 1 (two hops). The service answers via
//! super 1, so downlink always enters the edge from super 1.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use hsn_core::{Direction, TenantId};
use hsn_ebpf::{
    AttachMode, EdgeConfig, EdgeDatapath, EdgeNode, NextHop, SuperConfig, SuperDatapath,
};
use hsn_testkit::netns::{Frame, LinkStats};
pub use hsn_testkit::topology::{
    Chain, edge_super_if, edge_super_mac, super_edge_if, super_edge_mac,
};

use super::{A_V4, A_V6, B_V4, B_V6, Deltas, UE_V4, UE_V6, tenants};

/// A destination in no tenant prefix.
pub const NT_V4: &str = "198.51.100.10";
pub const NT_V6: &str = "2001:db8:ff::10";
/// The edge's identity on the super nodes.
pub const EDGE_ID: &str = "192.0.2.1";
/// Every service address: tenant A, tenant B, non-tenant; IPv4 then IPv6.
pub const SERVICE_ADDRS: [&str; 6] = [A_V4, B_V4, NT_V4, A_V6, B_V6, NT_V6];

pub const UDP_PORT: u16 = 7000;
pub const TCP_PORT: u16 = 7001;
/// Bound on every socket operation, so a broken path fails the test instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Two super nodes, the service on [`SERVICE_ADDRS`], the edge routing non-tenant only.
pub fn build_chain() -> anyhow::Result<Chain> {
    let mut chain = Chain::builder().supers(2);
    for addr in SERVICE_ADDRS {
        chain = chain.service_addr(addr);
    }
    // Non-tenant only: the edge's kernel must not be able to route tenant traffic.
    Ok(chain.edge_route(NT_V4).edge_route(NT_V6).build()?)
}

/// Fails naming every veth end that dropped or errored since `before`.
pub fn assert_nothing_dropped(
    chain: &Chain,
    before: &BTreeMap<String, LinkStats>,
) -> anyhow::Result<()> {
    let lost = chain.lost_since(before)?;
    ensure!(lost.is_empty(), "veths dropped or errored: {lost:#?}");
    Ok(())
}

/// The programs, attached: the edge on its UE-facing veth (uplink) and both super-facing
/// veths (downlink); each super node on its edge-facing veth.
#[derive(Debug)]
pub struct Datapaths {
    pub edge: EdgeDatapath,
    pub supers: [SuperDatapath; 2],
}

impl Datapaths {
    pub fn attach(chain: &Chain) -> anyhow::Result<Self> {
        let edge = chain.edge.run(|| -> anyhow::Result<_> {
            let mut dp = EdgeDatapath::load(&EdgeConfig::default())?;
            for dev in ["e-ue", "e-s1", "e-s2"] {
                ensure!(dp.attach(dev)? == AttachMode::Native, "{dev}: not native");
            }
            dp.set_tenants(&tenants())?;
            dp.set_next_hop(NextHop::via(&edge_super_if(0), super_edge_mac(0))?)?;
            Ok(dp)
        })??;
        let load_super = |i: usize| {
            chain.supers[i].run(|| -> anyhow::Result<_> {
                let config = SuperConfig {
                    pin: None,
                    // Only the edge's MAC identifies it: nothing is counted by IP source.
                    edge_by_addr: false,
                };
                let mut dp = SuperDatapath::load(&config)?;
                let dev = super_edge_if(i);
                // Native: it also gives the veth the NAPI the edge's redirect needs.
                ensure!(dp.attach(&dev)? == AttachMode::Native, "{dev}: not native");
                dp.set_tenants(&tenants())?;
                dp.set_edges(&[EdgeNode {
                    mac: edge_super_mac(i),
                    addr: EDGE_ID.parse()?,
                }])?;
                Ok(dp)
            })?
        };
        Ok(Self {
            edge,
            supers: [load_super(0)?, load_super(1)?],
        })
    }

    /// Points tenant uplink at super `i` (0 or 1): one map write from inside the edge's
    /// namespace, where the devmap resolves the egress ifindex.
    pub fn switch_to(&mut self, chain: &Chain, i: usize) -> anyhow::Result<()> {
        let edge = &mut self.edge;
        chain.edge.run(|| -> anyhow::Result<()> {
            edge.set_next_hop(NextHop::via(&edge_super_if(i), super_edge_mac(i))?)?;
            Ok(())
        })?
    }
}

/// Longest-prefix tenant of an address, as the programs decide it.
pub fn tenant_of(addr: IpAddr) -> Option<TenantId> {
    tenants()
        .into_iter()
        .flat_map(|t| t.prefixes.into_iter().map(move |p| (t.tenant, p)))
        .filter(|(_, p)| p.contains(&addr))
        .max_by_key(|(_, p)| p.prefix_len())
        .map(|(tenant, _)| tenant)
}

/// The programs' classification: a tenant destination is uplink, else a tenant source is
/// downlink (destination wins).
pub fn classify(src: IpAddr, dst: IpAddr) -> Option<(TenantId, Direction)> {
    tenant_of(dst)
        .map(|t| (t, Direction::Uplink))
        .or_else(|| tenant_of(src).map(|t| (t, Direction::Downlink)))
}

/// What the UE put on and took off its link, from its capture.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UeTraffic {
    /// (packets, IP bytes) per (tenant, direction).
    pub tenant: Deltas<(TenantId, Direction)>,
    /// IP packets of no tenant, both directions.
    pub non_tenant: u64,
    /// Of those, sent by the UE.
    pub non_tenant_up: u64,
    /// Of those, received by the UE.
    pub non_tenant_down: u64,
    /// Frames sent and received.
    pub link: (u64, u64),
}

/// Sums the frames captured on the UE's `ue0`, refusing anything that is not one plain IP
/// packet per frame (a GSO super-frame or a non-IP frame would make byte counts apples and
/// oranges).
pub fn ue_traffic(frames: &[Frame]) -> anyhow::Result<UeTraffic> {
    let mut out = UeTraffic::default();
    for frame in frames.iter().filter(|f| f.ifname == "ue0") {
        let Some(ip) = frame.ip else {
            bail!("a non-IP frame on ue0 (the link should be quiet): {frame:?}");
        };
        ensure!(
            frame.len == ip.len as usize + 14,
            "frame of {} bytes carries {} IP bytes (GSO or padding?): {frame:?}",
            frame.len,
            ip.len
        );
        if frame.outgoing {
            out.link.0 += 1;
        } else {
            out.link.1 += 1;
        }
        match classify(ip.src, ip.dst) {
            Some(key) => {
                let entry = out.tenant.entry(key).or_default();
                *entry = (entry.0 + 1, entry.1 + u64::from(ip.len));
            }
            None if frame.outgoing => {
                out.non_tenant += 1;
                out.non_tenant_up += 1;
            }
            None => {
                out.non_tenant += 1;
                out.non_tenant_down += 1;
            }
        }
    }
    Ok(out)
}

/// Polls `read` until it returns `expected`, at most `timeout`; fails with both values.
pub fn eventually<T: PartialEq + Debug>(
    what: &str,
    timeout: Duration,
    expected: &T,
    mut read: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = read()?;
        if &got == expected {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{what}: after {timeout:?}\n expected {expected:#?}\n      got {got:#?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One UDP datagram per size from the UE to `dst`, each echoed back at half its size plus
/// one, in lock step. Returns the IP bytes (up, down) sent by the applications.
pub fn udp_exchange(chain: &Chain, dst: &str, sizes: &[usize]) -> anyhow::Result<(u64, u64)> {
    let dst: IpAddr = dst.parse()?;
    let (ue_addr, ip_header) = if dst.is_ipv4() {
        (UE_V4.parse::<IpAddr>()?, 20 + 8)
    } else {
        (UE_V6.parse()?, 40 + 8)
    };
    let server = chain
        .service
        .run(|| UdpSocket::bind(SocketAddr::new(dst, UDP_PORT)))??;
    let client = chain
        .ue
        .run(|| UdpSocket::bind(SocketAddr::new(ue_addr, 0)))??;
    for sock in [&server, &client] {
        sock.set_read_timeout(Some(IO_TIMEOUT))?;
    }
    let mut buf = vec![0u8; 2048];
    let (mut up, mut down) = (0, 0);
    for (i, &size) in sizes.iter().enumerate() {
        client.send_to(&vec![i as u8; size], (dst, UDP_PORT))?;
        let (got, from) = server
            .recv_from(&mut buf)
            .with_context(|| format!("datagram {i} ({size} B) to {dst} never arrived"))?;
        ensure!(got == size && buf[..got].iter().all(|b| *b == i as u8));
        let reply = size / 2 + 1;
        server.send_to(&buf[..reply], from)?;
        let got = client
            .recv(&mut buf)
            .with_context(|| format!("reply {i} from {dst} never arrived"))?;
        ensure!(got == reply);
        up += (size + ip_header) as u64;
        down += (reply + ip_header) as u64;
    }
    Ok((up, down))
}

/// A TCP server on `addr` in the service namespace that reads one connection to EOF and
/// closes it; `received` counts as it reads.
#[derive(Debug)]
pub struct Sink {
    pub addr: SocketAddr,
    pub received: Arc<AtomicU64>,
    thread: JoinHandle<anyhow::Result<u64>>,
}

impl Sink {
    pub fn start(chain: &Chain, addr: &str) -> anyhow::Result<Self> {
        let addr = SocketAddr::new(addr.parse()?, TCP_PORT);
        let listener = chain.service.run(|| TcpListener::bind(addr))??;
        listener.set_nonblocking(true)?;
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        let thread = std::thread::spawn(move || -> anyhow::Result<u64> {
            let deadline = Instant::now() + IO_TIMEOUT;
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        ensure!(Instant::now() < deadline, "no connection to {addr}");
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            stream.set_nonblocking(false)?;
            stream.set_read_timeout(Some(IO_TIMEOUT))?;
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = stream.read(&mut buf).context("sink read")?;
                if n == 0 {
                    return Ok(count.load(Ordering::SeqCst));
                }
                count.fetch_add(n as u64, Ordering::SeqCst);
            }
        });
        Ok(Self {
            addr,
            received,
            thread,
        })
    }

    /// Bytes received once the client closed.
    pub fn join(self) -> anyhow::Result<u64> {
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Connects from the UE to `to`.
pub fn connect(chain: &Chain, to: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = chain
        .ue
        .run(|| TcpStream::connect_timeout(&to, IO_TIMEOUT))?
        .with_context(|| format!("connect to {to}"))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Writes `len` bytes of a recognisable pattern.
pub fn write_pattern(stream: &mut TcpStream, len: usize) -> anyhow::Result<()> {
    let chunk: Vec<u8> = (0..1 << 16).map(|i| (i % 251) as u8).collect();
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n])?;
        left -= n;
    }
    Ok(())
}

/// Half-closes, then waits for the server's close (its FIN), so every packet of the
/// connection has crossed the UE's link when this returns.
pub fn finish(mut stream: TcpStream) -> anyhow::Result<()> {
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut buf = [0u8; 64];
    let n = stream
        .read(&mut buf)
        .context("waiting for the server's FIN")?;
    ensure!(n == 0, "the sink sent data");
    Ok(())
}

/// Sends `len` bytes from the UE to a fresh sink on `addr` and closes; returns what the sink
/// received.
pub fn tcp_stream(chain: &Chain, addr: &str, len: usize) -> anyhow::Result<u64> {
    let sink = Sink::start(chain, addr)?;
    let mut stream = connect(chain, sink.addr)?;
    write_pattern(&mut stream, len)?;
    finish(stream)?;
    sink.join()
}
