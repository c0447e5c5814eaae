//! hsn-testkit's routed topology (`ue ↔ edge ↔ router ↔ super A1 | super B1 ↔ service`)
//! with the programs attached, and traffic between the UE and the service.
//!
//! The edge runs on its UE-facing and router-facing links, each super node on its
//! router-facing and service-facing links, and the router runs a bare `XDP_PASS` (the bench
//! object's) on its three ends: frames the edge and the super nodes redirect into their
//! router links are taken only by a veth with NAPI, which an XDP program gives it without
//! GRO (see hsn-testkit's `topology::routed`).

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};

use anyhow::{Context as _, ensure};
use aya::programs::Xdp;
use aya::programs::xdp::XdpMode;
use aya::{Ebpf, EbpfLoader};
use hsn_ebpf::{
    AttachMode, EdgeConfig, EdgeDatapath, EdgeNode, Hook, NextHop, SuperConfig, SuperDatapath,
};
pub use hsn_testkit::topology::routed::*;
use hsn_testkit::traffic::IO_TIMEOUT;

use super::{A_V4, A_V6, B_V4, B_V6, attach_mode, tenants};

/// The service's addresses: tenant A, tenant B; IPv4 then IPv6.
pub const SERVICE_ADDRS: [&str; 4] = [A_V4, B_V4, A_V6, B_V6];
/// The port the service answers UDP on.
const UDP_PORT: u16 = 7000;
/// The port the service accepts TCP on.
const TCP_PORT: u16 = 7001;

/// The bench object's bare `XDP_PASS` (`src/bench.bpf.c`), the router's program.
static BENCH_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/bench.bpf.o"));
const PASS: &str = "hsn_bench_pass";

/// The tunnel's outer family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outer {
    V4,
    V6,
}

impl Outer {
    /// The edge's address: the tunnel's outer source, the key super nodes count it under.
    pub fn edge(self) -> IpAddr {
        let addr = match self {
            Self::V4 => EDGE_V4,
            Self::V6 => EDGE_V6,
        };
        addr.parse().expect("plan addresses parse")
    }

    /// The super node of `site`: the tunnel's far end.
    pub fn super_node(self, site: &Site) -> IpAddr {
        let addr = match self {
            Self::V4 => site.super_v4,
            Self::V6 => site.super_v6,
        };
        addr.parse().expect("plan addresses parse")
    }

    /// Bytes the outer header adds.
    pub fn overhead(self) -> u32 {
        match self {
            Self::V4 => 20,
            Self::V6 => 40,
        }
    }

    /// The outer header's protocol numbers: IP in IPv4 (4) and IPv6 in IP (41).
    pub fn is_tunnel_protocol(protocol: u8) -> bool {
        matches!(protocol, 4 | 41)
    }
}

/// The topology with the service on [`SERVICE_ADDRS`].
pub fn build() -> anyhow::Result<Routed> {
    let mut net = Routed::builder();
    for addr in SERVICE_ADDRS {
        net = net.service_addr(addr);
    }
    Ok(net.build()?)
}

/// The programs, attached (see the module docs), and the router's `XDP_PASS`.
pub struct Datapaths {
    pub edge: EdgeDatapath,
    pub supers: [SuperDatapath; 2],
    pub outer: Outer,
    /// Detaches from the router's ends when dropped.
    _router: Ebpf,
}

impl std::fmt::Debug for Datapaths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datapaths")
            .field("edge", &self.edge)
            .field("supers", &self.supers)
            .field("outer", &self.outer)
            .finish_non_exhaustive()
    }
}

/// The edge's tunnel to `site`'s super node: out of its router link to the router's MAC.
/// Call it inside the edge's namespace (the device is looked up there).
pub fn edge_hop(site: &Site, outer: Outer) -> anyhow::Result<NextHop> {
    Ok(NextHop::via(
        EDGE_ROUTER_IF,
        ROUTER_EDGE_MAC,
        outer.edge(),
        outer.super_node(site),
    )?)
}

impl Datapaths {
    /// Everything attached at `hook` and configured, tenant uplink tunnelled to super A1.
    pub fn attach(net: &Routed, outer: Outer, hook: Hook) -> anyhow::Result<Self> {
        let router = net.router.run(attach_router_pass)??;
        let edge = net.edge.run(|| -> anyhow::Result<_> {
            let mut dp = EdgeDatapath::load_with_hook(&EdgeConfig::default(), hook)?;
            for dev in [EDGE_UE_IF, EDGE_ROUTER_IF] {
                ensure!(dp.attach(dev)? == attach_mode(hook), "{dev}: not {hook:?}");
            }
            dp.set_tenants(&tenants())?;
            // Tunnelled downlink is taken from either cluster's super node.
            dp.set_supers(&SITES.map(|s| outer.super_node(&s)))?;
            dp.set_next_hop(edge_hop(&A1, outer)?)?;
            Ok(dp)
        })??;
        let load_super = |i: usize| {
            let site = SITES[i];
            net.supers[i].run(|| -> anyhow::Result<_> {
                let mut dp = SuperDatapath::load_with_hook(&SuperConfig::default(), hook)?;
                for dev in [site.super_if, site.super_service_if] {
                    ensure!(dp.attach(dev)? == attach_mode(hook), "{dev}: not {hook:?}");
                }
                dp.set_tenants(&tenants())?;
                // The way back to the edge: out of the router link, to the router's MAC.
                let back = NextHop::via(
                    site.super_if,
                    site.router_mac,
                    outer.super_node(&site),
                    outer.edge(),
                )?;
                dp.set_edges(&[EdgeNode {
                    addr: outer.edge(),
                    route: Some(back),
                }])?;
                Ok(dp)
            })?
        };
        Ok(Self {
            edge,
            supers: [load_super(0)?, load_super(1)?],
            outer,
            _router: router,
        })
    }

    /// Re-homes the edge to site `i`'s super node: one next-hop write on the edge (no
    /// reload), and the service's route to the UEs moved to that super node, which is what
    /// a re-home does to the route the serving super node advertises.
    pub fn rehome(&mut self, net: &Routed, i: usize) -> anyhow::Result<()> {
        let (edge, outer) = (&mut self.edge, self.outer);
        net.edge.run(|| -> anyhow::Result<()> {
            edge.set_next_hop(edge_hop(&SITES[i], outer)?)?;
            Ok(())
        })??;
        net.route_ues_via(i)?;
        Ok(())
    }
}

/// Loads the bench object and attaches its `XDP_PASS` natively to the router's ends; call
/// it inside the router's namespace.
fn attach_router_pass() -> anyhow::Result<Ebpf> {
    ensure!(!BENCH_OBJECT.is_empty(), "bench.bpf.o is an empty stub");
    let mut ebpf = EbpfLoader::new()
        .load(BENCH_OBJECT)
        .context("loading bench.bpf.o")?;
    let prog: &mut Xdp = ebpf.program_mut(PASS).context(PASS)?.try_into()?;
    prog.load().context(PASS)?;
    for dev in Routed::router_ifs() {
        prog.attach(dev, XdpMode::Driver)
            .with_context(|| format!("{PASS} on {dev}"))?;
    }
    Ok(ebpf)
}

/// One UDP datagram per size from the UE to `dst`, each echoed back (half of it, plus
/// one byte) in lock step; fails when either is lost or altered.
pub fn udp_exchange(net: &Routed, dst: &str, sizes: &[usize]) -> anyhow::Result<()> {
    let dst: IpAddr = dst.parse()?;
    let src: IpAddr = if dst.is_ipv4() { UE_V4 } else { UE_V6 }.parse()?;
    let server = net
        .service
        .run(|| UdpSocket::bind(SocketAddr::new(dst, UDP_PORT)))??;
    let client = net.ue.run(|| UdpSocket::bind(SocketAddr::new(src, 0)))??;
    for sock in [&server, &client] {
        sock.set_read_timeout(Some(IO_TIMEOUT))?;
    }
    let mut buf = [0u8; 2048];
    for (i, &size) in sizes.iter().enumerate() {
        let fill = i as u8;
        client.send_to(&vec![fill; size], (dst, UDP_PORT))?;
        let (got, from) = server
            .recv_from(&mut buf)
            .with_context(|| format!("datagram {i} ({size} B) to {dst} never arrived"))?;
        ensure!(
            got == size && buf[..got].iter().all(|b| *b == fill),
            "datagram {i} to {dst}: {got} B, not {size} B of {fill}"
        );
        let reply = size / 2 + 1;
        server.send_to(&buf[..reply], from)?;
        let got = client
            .recv(&mut buf)
            .with_context(|| format!("reply {i} from {dst} never arrived"))?;
        ensure!(
            got == reply && buf[..got].iter().all(|b| *b == fill),
            "reply {i} from {dst}: {got} B"
        );
    }
    Ok(())
}

/// The byte at offset `at` of every stream: a pattern that shows lost or reordered data.
fn pattern(at: u64) -> u8 {
    (at % 251) as u8
}

/// A TCP connection from the UE to the service, both ends in the test's hands.
#[derive(Debug)]
pub struct TcpPair {
    ue: TcpStream,
    service: TcpStream,
    up: u64,
    down: u64,
}

impl TcpPair {
    /// Connects from the UE to `dst`:7001, a listener in the service.
    pub fn open(net: &Routed, dst: &str) -> anyhow::Result<Self> {
        let addr = SocketAddr::new(dst.parse()?, TCP_PORT);
        let listener = net.service.run(|| TcpListener::bind(addr))??;
        let ue = net
            .ue
            .run(|| TcpStream::connect_timeout(&addr, IO_TIMEOUT))?
            .with_context(|| format!("connect to {addr}"))?;
        // The connection is established: accept returns at once.
        let (service, _) = listener.accept()?;
        for s in [&ue, &service] {
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
        }
        Ok(Self {
            ue,
            service,
            up: 0,
            down: 0,
        })
    }

    /// `len` more bytes from the UE to the service, checked as they arrive.
    pub fn upload(&mut self, len: u64) -> anyhow::Result<()> {
        transfer(&self.ue, &self.service, self.up, len).context("upload")?;
        self.up += len;
        Ok(())
    }

    /// `len` more bytes from the service to the UE, checked as they arrive.
    pub fn download(&mut self, len: u64) -> anyhow::Result<()> {
        transfer(&self.service, &self.ue, self.down, len).context("download")?;
        self.down += len;
        Ok(())
    }

    /// Closes both ways, the UE first, and waits for the service's FIN: when it returns,
    /// every packet of the connection but the UE's last ACK has crossed the UE's link.
    pub fn close(self) -> anyhow::Result<()> {
        let mut buf = [0u8; 64];
        self.ue.shutdown(Shutdown::Write)?;
        let n = (&self.service)
            .read(&mut buf)
            .context("waiting for the UE's FIN")?;
        ensure!(n == 0, "the UE sent {n} bytes more");
        self.service.shutdown(Shutdown::Write)?;
        let n = (&self.ue)
            .read(&mut buf)
            .context("waiting for the service's FIN")?;
        ensure!(n == 0, "the service sent {n} bytes more");
        Ok(())
    }
}

/// Writes `len` pattern bytes (stream offset `from` on) on `tx` while reading and checking
/// them on `rx`.
fn transfer(tx: &TcpStream, rx: &TcpStream, from: u64, len: u64) -> anyhow::Result<()> {
    const CHUNK: u64 = 1 << 16;
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> anyhow::Result<()> {
            let mut tx = tx;
            let mut at = from;
            let mut buf = Vec::with_capacity(CHUNK as usize);
            while at < from + len {
                let n = CHUNK.min(from + len - at);
                buf.clear();
                buf.extend((at..at + n).map(pattern));
                tx.write_all(&buf)?;
                at += n;
            }
            Ok(())
        });
        let mut rx = rx;
        let mut buf = vec![0u8; CHUNK as usize];
        let mut at = from;
        while at < from + len {
            let want = CHUNK.min(from + len - at) as usize;
            let n = rx
                .read(&mut buf[..want])
                .with_context(|| format!("{} of {len} bytes arrived", at - from))?;
            ensure!(n > 0, "the stream ended after {} of {len} bytes", at - from);
            if let Some(i) = (0..n).find(|&i| buf[i] != pattern(at + i as u64)) {
                anyhow::bail!("byte {} of the stream is wrong", at + i as u64);
            }
            at += n as u64;
        }
        match writer.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A connection to `dst` that uploads `up` bytes, downloads `down` bytes and closes.
pub fn tcp_exchange(net: &Routed, dst: &str, up: u64, down: u64) -> anyhow::Result<()> {
    let mut tcp = TcpPair::open(net, dst)?;
    tcp.upload(up)?;
    tcp.download(down)?;
    tcp.close()
}
