//! Attaching to real interfaces, in a network namespace private to the test thread: native
//! XDP where the driver has it (veth), generic where it does not (loopback), detach on drop.

mod common;

use std::process::Command;

use common::*;
use hsn_ebpf::{
    AttachMode, EdgeConfig, EdgeDatapath, Error, NextHop, SuperConfig, SuperDatapath, XdpAction,
};
use nix::sched::{CloneFlags, unshare};

fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip").args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// `ip link` shows "prog/xdp id N" for an attached XDP program, in any mode.
fn has_xdp(dev: &str) -> anyhow::Result<bool> {
    Ok(ip(&["link", "show", "dev", dev])?.contains("prog/xdp"))
}

/// Waits (at most two seconds) until `dev` has no XDP program: the kernel may release a
/// detached link a moment after its last file descriptor closes.
fn xdp_gone(dev: &str) -> anyhow::Result<bool> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        if !has_xdp(dev)? {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A fresh network namespace for this thread (the test harness runs each test on its own
/// thread, and `ip` children inherit the thread's namespace).
fn private_netns() -> anyhow::Result<()> {
    unshare(CloneFlags::CLONE_NEWNET)?;
    ip(&[
        "link", "add", "hsn-v0", "type", "veth", "peer", "name", "hsn-v1",
    ])?;
    for dev in ["hsn-v0", "hsn-v1", "lo"] {
        ip(&["link", "set", dev, "up"])?;
    }
    Ok(())
}

#[test]
fn edge_attaches_native_or_generic_and_detaches_on_drop() -> anyhow::Result<()> {
    require_root!();
    private_netns()?;
    let mut edge = EdgeDatapath::load(&EdgeConfig::default())?;
    assert_eq!(edge.attach("hsn-v0")?, AttachMode::Native);
    assert_eq!(
        edge.attach("lo")?,
        AttachMode::Generic,
        "loopback has no driver XDP"
    );
    assert!(has_xdp("hsn-v0")? && has_xdp("lo")?);
    assert!(!has_xdp("hsn-v1")?);
    assert_eq!(
        edge.attachments(),
        [
            ("hsn-v0".to_owned(), AttachMode::Native),
            ("lo".to_owned(), AttachMode::Generic)
        ]
    );

    let err = edge.attach("hsn-v0").unwrap_err();
    assert!(matches!(err, Error::AlreadyAttached { .. }), "{err}");
    let err = edge.attach("hsn-missing").unwrap_err();
    assert!(matches!(err, Error::Attach { .. }), "{err}");
    assert_eq!(err.label(), "attach");

    edge.detach("lo")?;
    assert!(xdp_gone("lo")?, "detach removes the program");
    assert!(matches!(edge.detach("lo"), Err(Error::NotAttached { .. })));

    drop(edge);
    assert!(xdp_gone("hsn-v0")?, "dropping the datapath detaches");
    Ok(())
}

#[test]
fn super_attaches_and_detaches_on_drop() -> anyhow::Result<()> {
    require_root!();
    private_netns()?;
    let mut dp = SuperDatapath::load(&SuperConfig::default())?;
    assert_eq!(dp.attach("hsn-v1")?, AttachMode::Native);
    assert!(has_xdp("hsn-v1")?);
    drop(dp);
    assert!(xdp_gone("hsn-v1")?, "dropping the datapath detaches");
    Ok(())
}

#[test]
fn next_hop_via_reads_the_interface() -> anyhow::Result<()> {
    require_root!();
    private_netns()?;
    let (local, remote) = (EDGE_ADDR_V4.parse()?, SUPER_ADDR_V4.parse()?);
    let hop = NextHop::via("hsn-v0", SUPER_MAC, local, remote)?;
    let link = ip(&["-o", "link", "show", "dev", "hsn-v0"])?;
    let ifindex: u32 = link.split(':').next().unwrap().trim().parse()?;
    let mac = link
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap();
    assert_eq!(hop.ifindex, ifindex);
    assert_eq!(hop.src_mac.to_string(), mac);
    assert_eq!(hop.dst_mac, SUPER_MAC);
    assert_eq!((hop.local, hop.remote, hop.mtu), (local, remote, 1500));
    let err = NextHop::via("hsn-missing", SUPER_MAC, local, remote).unwrap_err();
    assert!(matches!(err, Error::Interface { .. }), "{err}");
    Ok(())
}

#[test]
fn a_next_hop_device_that_disappears_falls_back_to_pass() -> anyhow::Result<()> {
    require_root!();
    private_netns()?;
    let mut edge = EdgeDatapath::load(&EdgeConfig::default())?;
    edge.set_tenants(&tenants())?;
    edge.set_next_hop(NextHop::via(
        "hsn-v0",
        SUPER_MAC,
        EDGE_ADDR_V4.parse()?,
        SUPER_ADDR_V4.parse()?,
    )?)?;
    let frame = hsn_testkit::packet::Packet::v4(UE_V4, A_V4).udp(10).build();
    assert_eq!(edge.run_packet(&frame)?.action, XdpAction::Redirect);

    // The kernel drops the devmap entry of an unregistered device; the next hop still
    // names it, and the program hands the packet to the kernel instead of dropping it.
    ip(&["link", "del", "hsn-v0"])?;
    let before = edge.stats()?;
    let run = edge.run_packet(&frame)?;
    assert_eq!(run.action, XdpAction::Pass);
    assert_eq!(run.packet, frame);
    let delta = edge.stats()?.since(&before);
    assert_eq!(
        (delta.tenant, delta.redirect_errors, delta.passed),
        (1, 1, 1)
    );
    Ok(())
}

/// An interface that runs another program (an agent of another role still draining there)
/// refuses the attach as busy, in native and generic mode, and takes it once that program
/// is gone.
#[test]
fn an_interface_with_another_program_is_busy_until_it_goes() -> anyhow::Result<()> {
    require_root!();
    private_netns()?;
    let mut first = EdgeDatapath::load(&EdgeConfig::default())?;
    let mut second = SuperDatapath::load(&SuperConfig::default())?;
    first.attach("hsn-v0")?;
    first.attach("lo")?;
    for dev in ["hsn-v0", "lo"] {
        let err = second.attach(dev).unwrap_err();
        assert!(err.is_busy(), "{dev}: {err}");
    }
    let missing = second.attach("hsn-missing").unwrap_err();
    assert!(!missing.is_busy(), "{missing}");
    drop(first);
    assert!(xdp_gone("hsn-v0")? && xdp_gone("lo")?);
    assert_eq!(second.attach("hsn-v0")?, AttachMode::Native);
    assert_eq!(second.attach("lo")?, AttachMode::Generic);
    Ok(())
}
