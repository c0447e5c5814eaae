//! The host side real nodes attach to: a bridge with a private /24 whose gateway address
//! the clusters' apiservers are forwarded to (`KwokCluster::create_for_nodes`).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use anyhow::{Context as _, Result, bail};

use crate::cluster::watchdog::Watchdog;
use crate::netns::Netns;

/// The first host number handed to a node; .1 is the gateway.
const FIRST_NODE_HOST: u8 = 11;

/// Bridges this toolkit makes are named `hsnbr<pid>-<seq>` (at most 15 bytes, IFNAMSIZ).
const BRIDGE_PREFIX: &str = "hsnbr";

/// A Linux bridge with the gateway addresses `10.a.b.1/24` and `fd00:a:b::1/64` on it,
/// deleted on drop (and by a watchdog if the test process dies first). Nodes get `10.a.b.11`
/// (and `fd00:a:b::11`) onwards and a default route via the gateway; the host reaches every
/// node and every node the host.
#[derive(Debug)]
pub struct NodeNetwork {
    bridge: String,
    gateway: Ipv4Addr,
    next_host: AtomicU8,
    watchdog: Watchdog,
}

impl NodeNetwork {
    /// Creates the bridge on a /24 no interface of this machine uses yet.
    pub fn create() -> Result<Self> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        remove_stale();
        let pid = std::process::id();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let bridge = format!("{BRIDGE_PREFIX}{pid}-{seq}");
        let gateway = free_subnet(pid, seq)?;
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        let watchdog = Watchdog::spawn(r#"ip link del "$1""#, [&bridge])?;
        let network = Self {
            bridge,
            gateway,
            next_host: AtomicU8::new(FIRST_NODE_HOST),
            watchdog,
        };
        ip(&[
            "addr",
            "add",
            &format!("{gateway}/24"),
            "dev",
            &network.bridge,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/64", network.v6(gateway)),
            "dev",
            &network.bridge,
            "nodad",
        ])?;
        ip(&["link", "set", &network.bridge, "up"])?;
        Ok(network)
    }

    /// The host's address on the bridge, `10.a.b.1`: nodes' default gateway and where they
    /// reach the apiservers.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The IPv6 address of the host that has `v4` on this network: `10.a.b.h` ↔
    /// `fd00:a:b::h` (the decimal digits read as hexadecimal).
    pub fn v6(&self, v4: Ipv4Addr) -> Ipv6Addr {
        let [a, b, _, h] = v4.octets();
        let hex = |n: u8| u16::from_str_radix(&n.to_string(), 16).expect("decimal digits");
        Ipv6Addr::new(0xfd00, hex(a), hex(b), 0, 0, 0, 0, hex(h))
    }

    /// Plugs `ns` in: a veth pair `host_if` (on the bridge) ↔ `eth0` (in `ns`) with the next
    /// free address (and its [`Self::v6`] twin), and default routes via the gateway. Returns
    /// the IPv4 address. Nodes are plugged in so; so is any other namespace a test puts on
    /// the nodes' network (UEs, services).
    ///
    /// The host end has GRO on: a veth takes the frames an XDP program on its peer redirects
    /// (an edge agent sends uplink back out of `eth0`) only when NAPI runs on it, which
    /// an XDP program or GRO turns on, as a NIC's driver always has it.
    pub fn attach(&self, ns: &Netns, host_if: &str) -> Result<Ipv4Addr> {
        let host = self.next_host.fetch_add(1, Ordering::Relaxed);
        if host < FIRST_NODE_HOST || host == u8::MAX {
            bail!("node network {} has no address left", self.bridge);
        }
        let [a, b, c, _] = self.gateway.octets();
        let addr = Ipv4Addr::new(a, b, c, host);
        ip(&[
            "link",
            "add",
            host_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns.name(),
        ])?;
        ip(&["link", "set", host_if, "master", &self.bridge, "up"])?;
        let out = Command::new("ethtool")
            .args(["-K", host_if, "gro", "on"])
            .output()
            .context("running ethtool (make deps installs it)")?;
        if !out.status.success() {
            bail!(
                "ethtool -K {host_if} gro on: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        ns.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
        let v6 = format!("{}/64", self.v6(addr));
        ns.ip(&["-6", "addr", "add", &v6, "dev", "eth0", "nodad"])?;
        // A link-local address as any host on a LAN has: a node forwarding v6 (a super
        // node) solicits the next hop of a packet it did not send from it.
        ns.ip(&["link", "set", "eth0", "addrgenmode", "eui64"])?;
        ns.ip(&["link", "set", "eth0", "up"])?;
        ns.ip(&["route", "add", "default", "via", &self.gateway.to_string()])?;
        let gateway6 = self.v6(self.gateway).to_string();
        ns.ip(&["-6", "route", "add", "default", "via", &gateway6])?;
        Ok(addr)
    }
}

impl Drop for NodeNetwork {
    fn drop(&mut self) {
        if ip(&["link", "del", &self.bridge]).is_ok() {
            self.watchdog.disarm();
        }
    }
}

/// `10.a.b.1` for a /24 in 10.200.0.0–10.249.255.0 that no address of this machine is in,
/// starting from one derived from the process id and sequence number.
fn free_subnet(pid: u32, seq: u32) -> Result<Ipv4Addr> {
    let used = ip(&["-4", "-o", "addr", "show"])?;
    let start = pid
        .wrapping_mul(7919)
        .wrapping_add(seq.wrapping_mul(104_729))
        % (50 * 256);
    for i in 0..50 * 256 {
        let n = (start + i) % (50 * 256);
        let (a, b) = (200 + n / 256, n % 256);
        let prefix = format!(" 10.{a}.{b}.");
        if !used.contains(&prefix) {
            let a = u8::try_from(a).expect("below 250");
            let b = u8::try_from(b).expect("below 256");
            return Ok(Ipv4Addr::new(10, a, b, 1));
        }
    }
    bail!("no free /24 in 10.200.0.0/13 for a node network")
}

/// Deletes bridges of this form whose test process is gone.
fn remove_stale() {
    let Ok(links) = ip(&["-o", "link", "show", "type", "bridge"]) else {
        return;
    };
    for line in links.lines() {
        let Some(name) = line.split(": ").nth(1) else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(BRIDGE_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !crate::process_alive(pid) {
            let _ = ip(&["link", "del", name]);
        }
    }
}

/// `ip <args>` on the host; stdout, or an error with stderr.
pub(crate) fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
