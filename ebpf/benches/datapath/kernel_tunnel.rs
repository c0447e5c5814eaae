//! Part 3's Linux tunnels: the edge namespace's kernel forwarding the tenant prefix into IP in
//! IP toward super 0, as the edge program does (same outer addresses, DF, TTL 64, inner TOS),
//! and the routes that switch the prefix between them and plain forwarding.
//!
//! - an `ipip` device (`ip link add hsn-ipip type ipip local EDGE_V4 remote <super> ttl 64`),
//!   where the kernel has one (`CONFIG_NET_IPIP`); otherwise that path is not measured and
//!   the report says why;
//! - the stand-in on every kernel with lightweight tunnels: a route whose `encap bpf xmit` is
//!   `hsn_bench_lwt_ipip`, which pushes the outer header; the kernel then routes the outer
//!   packet, resolves the neighbour and transmits (what an ipip device does after its own
//!   transmit step).

use std::io::Write as _;

use anyhow::Context as _;
use hsn_testkit::netns::Netns;
use hsn_testkit::topology::{EDGE_V4, edge_super_if, super_edge_v4};

use crate::frames::{HIT_PREFIX, UNDERLAY_MTU};
use crate::object::{LWT_SECTION, OBJECT};

/// The edge's ipip device toward super 0.
const IPIP_IF: &str = "hsn-ipip";
/// The outer addresses `hsn_bench_lwt_ipip` has compiled in (`HSN_BENCH_LWT_LOCAL`/`REMOTE`).
const LWT_LOCAL: &str = "192.0.2.1";
const LWT_REMOTE: &str = "192.168.1.2";
/// Outer IPv4 header: what the `encap bpf` route reserves and the ipip device's MTU leaves.
const OUTER: u32 = 20;

/// Where the edge's kernel sends the tenant prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Via super 0 on the edge ↔ super link, unencapsulated.
    Plain,
    /// Into the ipip device.
    Ipip,
    /// Via super 0 through `hsn_bench_lwt_ipip`.
    Lwt,
}

/// The edge namespace's kernel tunnels; what they cannot do on this kernel, and why.
pub struct KernelTunnels {
    /// bench.bpf.o on disk, for iproute2 (deleted on drop).
    object: tempfile::NamedTempFile,
    /// `Err(why)` when this kernel has no ipip device.
    pub ipip: Result<(), String>,
    /// `Err(why)` when the kernel refused the `encap bpf` route.
    pub lwt: Result<(), String>,
}

impl KernelTunnels {
    /// Creates the ipip device (if the kernel can) in `edge` and the plain route; probes the
    /// lwt route once. Everything lives in `edge` and goes with it.
    pub fn set_up(edge: &Netns) -> anyhow::Result<Self> {
        let remote = super_edge_v4(0);
        anyhow::ensure!(
            EDGE_V4 == LWT_LOCAL && remote == LWT_REMOTE,
            "hsn_bench_lwt_ipip writes {LWT_LOCAL} -> {LWT_REMOTE}, the plan has {EDGE_V4} -> \
             {remote}: update bench.bpf.c"
        );
        let mut object = tempfile::Builder::new()
            .prefix("hsn-bench-")
            .suffix(".bpf.o")
            .tempfile()
            .context("a file for bench.bpf.o")?;
        object.write_all(OBJECT)?;
        object.flush()?;
        let ipip = edge
            .ip(&[
                "link", "add", IPIP_IF, "type", "ipip", "local", EDGE_V4, "remote", &remote, "ttl",
                "64", "tos", "inherit",
            ])
            .map_err(|e| match e {
                hsn_testkit::netns::Error::Command { stderr, .. } => {
                    format!("this kernel has no ipip device (ip link add ... type ipip: {stderr})")
                }
                other => other.to_string(),
            })
            .map(drop);
        if ipip.is_ok() {
            let mtu = (UNDERLAY_MTU - OUTER).to_string();
            edge.ip(&["link", "set", "dev", IPIP_IF, "mtu", &mtu, "up"])?;
        }
        let mut tunnels = Self {
            object,
            ipip,
            lwt: Ok(()),
        };
        ip(edge, &tunnels.route_args(Route::Plain, "add"))?;
        tunnels.lwt = ip(edge, &tunnels.route_args(Route::Lwt, "replace"))
            .map_err(|e| e.to_string())
            .map(drop);
        tunnels.route(edge, Route::Plain)?;
        Ok(tunnels)
    }

    /// Sends the tenant prefix along `route`.
    pub fn route(&self, edge: &Netns, route: Route) -> anyhow::Result<()> {
        ip(edge, &self.route_args(route, "replace"))?;
        Ok(())
    }

    fn route_args(&self, route: Route, verb: &'static str) -> Vec<String> {
        let prefix = HIT_PREFIX.to_string();
        let via = ["via".to_owned(), super_edge_v4(0)];
        let dev = ["dev".to_owned(), edge_super_if(0)];
        let mut args: Vec<String> = vec!["route".into(), verb.into(), prefix];
        match route {
            Route::Plain => args.extend(via.into_iter().chain(dev)),
            Route::Ipip => args.extend(["dev".into(), IPIP_IF.into()]),
            Route::Lwt => {
                let object = self.object.path().to_string_lossy().into_owned();
                args.extend(
                    ["encap", "bpf", "xmit", "obj"]
                        .map(String::from)
                        .into_iter()
                        .chain([object, "sec".into(), LWT_SECTION.into()])
                        .chain(["headroom".into(), OUTER.to_string()])
                        .chain(via)
                        .chain(dev),
                );
            }
        }
        args
    }
}

/// `ip -n <ns> <args>`.
fn ip(ns: &Netns, args: &[String]) -> Result<String, hsn_testkit::netns::Error> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ns.ip(&args)
}
