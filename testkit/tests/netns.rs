//! Real namespaces and veths (needs root; skipped with a reason otherwise).

use std::io::Write as _;
use std::net::UdpSocket;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use hsn_core::MacAddr;
use hsn_testkit::netns::{Capture, Netns, NsChild, VethEnd, is_root, veth};

fn skip() -> bool {
    if is_root() {
        return false;
    }
    // To the stderr handle, not eprintln!, which the harness captures in a passing run.
    let _ = writeln!(
        std::io::stderr(),
        "{}: skipped: needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) for network namespaces",
        std::thread::current().name().unwrap_or("test")
    );
    true
}

const A_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0a]);
const B_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x0b]);

/// Two namespaces joined by a veth with static neighbours.
fn pair() -> anyhow::Result<(Netns, Netns)> {
    let a = Netns::unique("a")?;
    let b = Netns::unique("b")?;
    let pair = veth(
        VethEnd::new(&a, "a0")
            .mac(A_MAC)
            .addr("192.0.2.1/24")
            .addr("2001:db8::1/64"),
        VethEnd::new(&b, "b0")
            .mac(B_MAC)
            .addr("192.0.2.2/24")
            .addr("2001:db8::2/64"),
    )?;
    assert_eq!((pair.a_mac, pair.b_mac), (A_MAC, B_MAC));
    pair.static_neighbours()?;
    Ok((a, b))
}

#[test]
fn a_quiet_link_carries_exactly_what_is_sent() -> anyhow::Result<()> {
    if skip() {
        return Ok(());
    }
    let (a, b) = pair()?;
    let path = a.path();
    assert!(path.exists());
    assert_eq!(a.mac("a0")?, A_MAC);

    let receiver = b.run(|| -> anyhow::Result<_> {
        let v4 = UdpSocket::bind("192.0.2.2:4000")?;
        let v6 = UdpSocket::bind("[2001:db8::2]:4000")?;
        Ok((v4, v6))
    })??;
    let capture = Capture::start(&b, Duration::from_secs(30))?;
    let before = a.link_stats("a0")?;
    let b_before = b.link_stats("b0")?;
    // The largest fits a 1500-byte MTU over IPv6 too (no fragments).
    let payloads = [1usize, 100, 1000, 1452];
    a.run(|| -> anyhow::Result<()> {
        let v4 = UdpSocket::bind("192.0.2.1:0")?;
        let v6 = UdpSocket::bind("[2001:db8::1]:0")?;
        for len in payloads {
            v4.send_to(&vec![7u8; len], "192.0.2.2:4000")?;
            v6.send_to(&vec![7u8; len], "[2001:db8::2]:4000")?;
        }
        Ok(())
    })??;
    let mut buf = [0u8; 2048];
    for sock in [&receiver.0, &receiver.1] {
        sock.set_read_timeout(Some(Duration::from_secs(5)))?;
        for len in payloads {
            assert_eq!(sock.recv(&mut buf)?, len);
        }
    }
    let delta = a.link_stats("a0")?.since(&before);
    // Ethernet 14 + IPv4 20 / IPv6 40 + UDP 8 per datagram; nothing else on the wire.
    let frames: u64 = payloads
        .iter()
        .map(|l| (14 + 20 + 8 + l) as u64)
        .sum::<u64>()
        + payloads
            .iter()
            .map(|l| (14 + 40 + 8 + l) as u64)
            .sum::<u64>();
    assert_eq!((delta.tx_packets, delta.tx_bytes), (8, frames), "{delta:?}");
    assert_eq!(delta.lost(), 0);
    let b_delta = b.link_stats("b0")?.since(&b_before);
    assert_eq!((b_delta.rx_packets, b_delta.lost()), (8, 0), "{b_delta:?}");

    // The capture saw the same frames the interface counted, with their IP headers. Those
    // the receiver answered (ICMP) are outgoing; none here, the ports are open.
    let frames = capture.stop()?;
    assert!(
        frames.iter().all(|f| f.ifname == "b0" && !f.outgoing),
        "{frames:?}"
    );
    let bytes: usize = frames.iter().map(|f| f.len).sum();
    assert_eq!(
        (frames.len() as u64, bytes as u64),
        (b_delta.rx_packets, b_delta.rx_bytes)
    );
    for (frame, len) in frames
        .iter()
        .zip(payloads.iter().flat_map(|l| [l + 28, l + 48]))
    {
        let ip = frame.ip.expect("IP frames");
        assert_eq!(
            (ip.len as usize, frame.len, ip.ttl),
            (len, len + 14, 64),
            "{frame:?}"
        );
    }

    drop(receiver);
    drop(a);
    assert!(!path.exists(), "dropping the Netns deletes it");
    Ok(())
}

#[test]
fn children_and_threads_run_inside_and_children_die_on_drop() -> anyhow::Result<()> {
    if skip() {
        return Ok(());
    }
    let (a, b) = pair()?;
    let ns_inode = std::fs::metadata(a.path())?.ino();
    let mut cmd = a.command("sleep");
    cmd.arg("30");
    let child = NsChild::spawn(cmd)?;
    let pid = child.id();
    // `ip netns exec` execs the program in place; wait (bounded) until it has.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
        if exe.ends_with("sleep") {
            break;
        }
        assert!(Instant::now() < deadline, "still {exe:?} after 5 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let child_ns = std::fs::metadata(format!("/proc/{pid}/ns/net"))?.ino();
    assert_eq!(child_ns, ns_inode, "the child runs in the namespace");
    let thread_ns = a.run(|| std::fs::metadata("/proc/thread-self/ns/net").map(|m| m.ino()))??;
    assert_eq!(thread_ns, ns_inode, "the closure runs in the namespace");
    assert_ne!(
        std::fs::metadata("/proc/thread-self/ns/net")?.ino(),
        ns_inode
    );

    // A router in the middle: b forwards between a and a third namespace.
    let c = Netns::unique("c")?;
    veth(
        VethEnd::new(&b, "b1").addr("198.51.100.1/24"),
        VethEnd::new(&c, "c0").addr("198.51.100.2/24"),
    )?
    .static_neighbours()?;
    b.set_router()?;
    a.ip(&["route", "add", "198.51.100.0/24", "via", "192.0.2.2"])?;
    c.ip(&["route", "add", "192.0.2.0/24", "via", "198.51.100.1"])?;
    let server = c.run(|| UdpSocket::bind("198.51.100.2:4000"))??;
    server.set_read_timeout(Some(Duration::from_secs(5)))?;
    a.run(|| UdpSocket::bind("192.0.2.1:0")?.send_to(b"via b", "198.51.100.2:4000"))??;
    let mut buf = [0u8; 16];
    let (len, from) = server.recv_from(&mut buf)?;
    assert_eq!(
        (&buf[..len], from.ip().to_string().as_str()),
        (&b"via b"[..], "192.0.2.1")
    );
    let exe = c.exec("sh", &["-c", "readlink /proc/self/ns/net"])?;
    assert_eq!(
        exe.trim(),
        format!(
            "net:[{ns_inode_c}]",
            ns_inode_c = std::fs::metadata(c.path())?.ino()
        )
    );
    let err = c.sysctl("net.ipv4.no_such_key", "1").unwrap_err();
    assert!(err.to_string().contains("no_such_key"), "{err}");

    drop(child);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "dropping the NsChild kills and reaps it"
    );
    Ok(())
}
