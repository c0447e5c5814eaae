//! Traffic between the UE and the service of a [`Chain`], and what of it crossed the UE's
//! link: lock-step UDP echoes ([`UdpEcho`]), TCP connections into a counting reader
//! ([`TcpFlow`]), and the sum of a capture on the UE's link per tenant and direction
//! ([`ue_traffic`]).
//!
//! Every socket operation is bounded by [`IO_TIMEOUT`], so a broken path fails the test
//! instead of hanging it. Errors are `anyhow`'s: every caller is a test or a bench.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use hsn_core::{Direction, TenantId};

use crate::netns::Frame;
use crate::topology::{Chain, UE_IF, UE_V4, UE_V6};

/// The port the service answers UDP on.
pub const UDP_PORT: u16 = 7000;
/// The port the service accepts TCP on.
pub const TCP_PORT: u16 = 7001;
/// Bound on every socket operation.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// What TCP flows write: 64 KiB of a recognisable pattern.
static PATTERN: LazyLock<Vec<u8>> =
    LazyLock::new(|| (0..1 << 16).map(|i| (i % 251) as u8).collect());

/// A UDP server on a service address and a client on the UE's address of the same family:
/// one datagram at a time, each echoed back.
#[derive(Debug)]
pub struct UdpEcho {
    dst: IpAddr,
    server: UdpSocket,
    client: UdpSocket,
}

impl UdpEcho {
    /// Binds the server on `dst`:[`UDP_PORT`] in the service and the client in the UE.
    pub fn bind(chain: &Chain, dst: &str) -> anyhow::Result<Self> {
        let dst: IpAddr = dst.parse()?;
        let src: IpAddr = if dst.is_ipv4() { UE_V4 } else { UE_V6 }.parse()?;
        let server = chain
            .service
            .run(|| UdpSocket::bind(SocketAddr::new(dst, UDP_PORT)))??;
        let client = chain
            .ue
            .run(|| UdpSocket::bind(SocketAddr::new(src, 0)))??;
        for sock in [&server, &client] {
            sock.set_read_timeout(Some(IO_TIMEOUT))?;
        }
        Ok(Self {
            dst,
            server,
            client,
        })
    }

    /// Datagram `i`: `size` bytes of `i as u8` from the UE, which the service must receive
    /// intact and answers with the first `size / 2 + 1` of them; fails when either is lost.
    pub fn round_trip(&self, i: u64, size: usize) -> anyhow::Result<()> {
        let dst = self.dst;
        let mut buf = [0u8; 2048];
        self.client.send_to(&vec![i as u8; size], (dst, UDP_PORT))?;
        let (got, from) = self
            .server
            .recv_from(&mut buf)
            .with_context(|| format!("datagram {i} ({size} B) to {dst} never arrived"))?;
        ensure!(
            got == size && buf[..got].iter().all(|b| *b == i as u8),
            "datagram {i} to {dst}: {got} B arrived, not {size} B of {}",
            i as u8
        );
        let reply = size / 2 + 1;
        self.server.send_to(&buf[..reply], from)?;
        let got = self
            .client
            .recv(&mut buf)
            .with_context(|| format!("reply {i} from {dst} never arrived"))?;
        ensure!(got == reply, "reply {i} from {dst}: {got} B, not {reply} B");
        Ok(())
    }
}

/// A TCP connection from the UE to a service address, whose service end a thread reads
/// to EOF, counting.
#[derive(Debug)]
pub struct TcpFlow {
    client: TcpStream,
    /// Bytes the service has read so far.
    pub received: Arc<AtomicU64>,
    reader: JoinHandle<anyhow::Result<()>>,
    written: u64,
}

impl TcpFlow {
    /// Connects from the UE to `dst`:[`TCP_PORT`], a listener in the service.
    pub fn open(chain: &Chain, dst: &str) -> anyhow::Result<Self> {
        let addr = SocketAddr::new(dst.parse()?, TCP_PORT);
        let listener = chain.service.run(|| TcpListener::bind(addr))??;
        let client = chain
            .ue
            .run(|| TcpStream::connect_timeout(&addr, IO_TIMEOUT))?
            .with_context(|| format!("connect to {addr}"))?;
        client.set_write_timeout(Some(IO_TIMEOUT))?;
        client.set_read_timeout(Some(IO_TIMEOUT))?;
        // The connection is established: accept returns at once.
        let (mut server, _) = listener.accept()?;
        server.set_read_timeout(Some(IO_TIMEOUT))?;
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        let reader = std::thread::spawn(move || -> anyhow::Result<()> {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match server.read(&mut buf).context("service read")? {
                    0 => return Ok(()),
                    n => count.fetch_add(n as u64, Ordering::SeqCst),
                };
            }
        });
        Ok(Self {
            client,
            received,
            reader,
            written: 0,
        })
    }

    /// Writes `len` bytes of a recognisable pattern.
    pub fn write(&mut self, len: usize) -> anyhow::Result<()> {
        let mut left = len;
        while left > 0 {
            let n = left.min(PATTERN.len());
            self.client.write_all(&PATTERN[..n])?;
            self.written += n as u64;
            left -= n;
        }
        Ok(())
    }

    /// Half-closes, lets the service read to EOF and close, and waits for its FIN, so every
    /// packet of the connection has crossed the UE's link when this returns. Fails unless
    /// the service received every byte written; returns how many that was.
    pub fn close(self) -> anyhow::Result<u64> {
        let Self {
            mut client,
            received,
            reader,
            written,
        } = self;
        client.shutdown(Shutdown::Write)?;
        join(reader)?;
        let received = received.load(Ordering::SeqCst);
        ensure!(
            received == written,
            "the service received {received} of {written} bytes"
        );
        let mut buf = [0u8; 64];
        let n = client
            .read(&mut buf)
            .context("waiting for the service's FIN")?;
        ensure!(n == 0, "the service sent data");
        Ok(received)
    }
}

/// Joins a thread, re-raising its panic.
pub fn join<T>(handle: JoinHandle<T>) -> T {
    match handle.join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// What the UE put on and took off its link, from a capture in its namespace.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UeTraffic {
    /// (packets, IP bytes) per (tenant, direction).
    pub tenant: BTreeMap<(TenantId, Direction), (u64, u64)>,
    /// IP packets of no tenant, both directions.
    pub non_tenant: u64,
    /// Of those, sent by the UE.
    pub non_tenant_up: u64,
    /// Of those, received by the UE.
    pub non_tenant_down: u64,
    /// Frames sent and received.
    pub link: (u64, u64),
}

/// Sums the frames captured on the UE's [`UE_IF`] by tenant and direction as the datapath
/// classifies them (a destination of a tenant is its uplink, else a source of a tenant its
/// downlink), with `tenant_of` the tenant owning an address. Refuses anything that is not
/// one plain IP packet per frame: a GSO super-frame or a non-IP frame would make byte
/// counts apples and oranges.
pub fn ue_traffic(
    frames: &[Frame],
    tenant_of: impl Fn(IpAddr) -> Option<TenantId>,
) -> anyhow::Result<UeTraffic> {
    let mut out = UeTraffic::default();
    for frame in frames.iter().filter(|f| f.ifname == UE_IF) {
        let Some(ip) = frame.ip else {
            bail!("a non-IP frame on {UE_IF} (the link should be quiet): {frame:?}");
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
        let class = tenant_of(ip.dst)
            .map(|t| (t, Direction::Uplink))
            .or_else(|| tenant_of(ip.src).map(|t| (t, Direction::Downlink)));
        match class {
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
