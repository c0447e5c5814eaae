//! Capturing the frames of a namespace's interfaces (AF_PACKET), as an independent count of
//! what went over a link.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, LinkAddr, SockFlag, SockProtocol, SockType, recvfrom, setsockopt, socket,
    sockopt,
};
use nix::sys::time::TimeVal;

use super::{Error, Netns};

/// `PACKET_OUTGOING`: a frame this host sent.
const PACKET_OUTGOING: u8 = 4;
/// Kernel socket buffer for captured frames; large enough for a few seconds of veth traffic.
const RCVBUF: usize = 256 << 20;
/// Bigger than any GSO frame (64 KiB); a frame filling it is reported as truncated.
const FRAME_BUF: usize = 256 << 10;
/// How often the reader looks at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// The IP header of a captured frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpHeader {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP bytes as the header states them: IPv4 total length, IPv6 40 + payload length.
    pub len: u32,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 protocol or IPv6 next header (of the fixed header).
    pub protocol: u8,
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// When the capture read it.
    pub at: Instant,
    /// The interface, by index.
    pub ifindex: u32,
    /// The interface, by name (when it still existed at [`Capture::stop`]).
    pub ifname: String,
    /// True for a frame the namespace sent on the interface, false for one it received.
    pub outgoing: bool,
    /// Frame bytes (Ethernet header included, no FCS).
    pub len: usize,
    /// The IPv4/IPv6 header of an untagged IP frame.
    pub ip: Option<IpHeader>,
}

/// A running capture of every frame sent or received on any interface of a namespace
/// (including interfaces created after it started). Frames are read on a thread into
/// memory, so keep captures to bounded test traffic.
///
/// The kernel drops frames when the socket buffer overflows; compare totals with the
/// interfaces' own counters ([`Netns::link_stats`]) to prove nothing was missed. Frames
/// redirected by XDP leave without passing the capture point; received frames are seen after
/// XDP and GRO (which may have merged several into one).
#[derive(Debug)]
pub struct Capture {
    ns_name: String,
    seen: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<Result<Vec<Frame>, Error>>>,
}

impl Capture {
    /// Starts capturing in `ns`; reads for at most `max` (then the capture ends by itself).
    pub fn start(ns: &Netns, max: Duration) -> Result<Self, Error> {
        let fd = ns.run(open_socket)??;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(AtomicU64::new(0));
        let (flag, count) = (stop.clone(), seen.clone());
        let reader = std::thread::Builder::new()
            .name(format!("capture {}", ns.name()))
            .spawn(move || read_frames(&fd, &flag, &count, max))
            .map_err(Error::Thread)?;
        Ok(Self {
            ns_name: ns.name().to_owned(),
            seen,
            stop,
            reader: Some(reader),
        })
    }

    /// Frames read so far (all interfaces), to wait until the capture has caught up with
    /// an interface's counters before stopping it.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    /// Stops the capture once every frame queued so far is read, and returns the frames in
    /// the order read, with interface names resolved.
    pub fn stop(mut self) -> Result<Vec<Frame>, Error> {
        self.stop.store(true, Ordering::Relaxed);
        let reader = self.reader.take().expect("only stop() takes the reader");
        let mut frames = match reader.join() {
            Ok(result) => result?,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let names = interface_names(&self.ns_name)?;
        for frame in &mut frames {
            if let Some(name) = names.get(&frame.ifindex) {
                frame.ifname.clone_from(name);
            }
        }
        Ok(frames)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn open_socket() -> Result<OwnedFd, Error> {
    let err = |step: &str, e: Errno| Error::Capture {
        step: step.to_owned(),
        source: e.into(),
    };
    let fd = socket(
        AddressFamily::Packet,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::EthAll,
    )
    .map_err(|e| err("socket(AF_PACKET)", e))?;
    setsockopt(&fd, sockopt::RcvBufForce, &RCVBUF).map_err(|e| err("SO_RCVBUFFORCE", e))?;
    let poll = TimeVal::new(0, POLL.as_micros() as _);
    setsockopt(&fd, sockopt::ReceiveTimeout, &poll).map_err(|e| err("SO_RCVTIMEO", e))?;
    Ok(fd)
}

/// Reads until stopped (and drained) or `max` elapsed.
fn read_frames(
    fd: &OwnedFd,
    stop: &AtomicBool,
    seen: &AtomicU64,
    max: Duration,
) -> Result<Vec<Frame>, Error> {
    let deadline = Instant::now() + max;
    let mut buf = vec![0u8; FRAME_BUF];
    let mut frames = Vec::new();
    while Instant::now() < deadline {
        match recvfrom::<LinkAddr>(fd.as_raw_fd(), &mut buf) {
            Ok((len, Some(addr))) => {
                if len == buf.len() {
                    return Err(Error::Capture {
                        step: "recvfrom".into(),
                        source: std::io::Error::other(format!("a frame of {len}+ bytes")),
                    });
                }
                frames.push(Frame {
                    at: Instant::now(),
                    ifindex: addr.ifindex() as u32,
                    ifname: String::new(),
                    outgoing: addr.pkttype() == PACKET_OUTGOING,
                    len,
                    ip: parse_ip(&buf[..len]),
                });
                seen.fetch_add(1, Ordering::Relaxed);
            }
            Ok((_, None)) => {}
            // The poll interval passed with nothing queued: done if asked to stop.
            Err(Errno::EAGAIN | Errno::EINTR) if !stop.load(Ordering::Relaxed) => {}
            Err(Errno::EAGAIN) => break,
            Err(e) => {
                return Err(Error::Capture {
                    step: "recvfrom".into(),
                    source: e.into(),
                });
            }
        }
    }
    Ok(frames)
}

/// The IP header of an untagged Ethernet frame carrying IPv4 or IPv6.
pub(crate) fn parse_ip(frame: &[u8]) -> Option<IpHeader> {
    let ethertype = u16::from_be_bytes(frame.get(12..14)?.try_into().ok()?);
    let ip = frame.get(14..)?;
    match ethertype {
        0x0800 if ip.len() >= 20 => Some(IpHeader {
            src: IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&ip[12..16]).ok()?)),
            dst: IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&ip[16..20]).ok()?)),
            len: u16::from_be_bytes([ip[2], ip[3]]).into(),
            ttl: ip[8],
            protocol: ip[9],
        }),
        0x86dd if ip.len() >= 40 => Some(IpHeader {
            src: IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?)),
            dst: IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).ok()?)),
            len: 40 + u32::from(u16::from_be_bytes([ip[4], ip[5]])),
            ttl: ip[7],
            protocol: ip[6],
        }),
        _ => None,
    }
}

/// ifindex → name of every interface in the namespace.
fn interface_names(ns_name: &str) -> Result<BTreeMap<u32, String>, Error> {
    let json = super::ns::run_ip(&["-n", ns_name, "-j", "link", "show"])?;
    let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| Error::Output {
        cmd: format!("ip -n {ns_name} -j link show"),
        reason: e.to_string(),
    })?;
    Ok(value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|link| {
            let index = u32::try_from(link["ifindex"].as_u64()?).ok()?;
            Some((index, link["ifname"].as_str()?.to_owned()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_and_ipv6_headers() {
        let mut v4 = vec![0u8; 14 + 28];
        v4[12..14].copy_from_slice(&[0x08, 0x00]);
        v4[14] = 0x45;
        v4[16..18].copy_from_slice(&28u16.to_be_bytes());
        v4[22] = 63;
        v4[23] = 17;
        v4[26..30].copy_from_slice(&[10, 0, 0, 1]);
        v4[30..34].copy_from_slice(&[10, 0, 0, 2]);
        let h = parse_ip(&v4).unwrap();
        assert_eq!((h.len, h.ttl, h.protocol), (28, 63, 17));
        assert_eq!(
            (h.src.to_string(), h.dst.to_string()),
            ("10.0.0.1".into(), "10.0.0.2".into())
        );

        let mut v6 = vec![0u8; 14 + 48];
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        v6[18..20].copy_from_slice(&8u16.to_be_bytes());
        v6[20] = 6;
        v6[21] = 62;
        v6[14 + 23] = 1;
        v6[14 + 39] = 2;
        let h = parse_ip(&v6).unwrap();
        assert_eq!((h.len, h.ttl, h.protocol), (48, 62, 6));
        assert_eq!(
            (h.src.to_string(), h.dst.to_string()),
            ("::1".into(), "::2".into())
        );

        assert_eq!(parse_ip(&v4[..20]), None, "truncated");
        let mut arp = v4.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(parse_ip(&arp), None, "not IP");
    }
}
