//! Attaching at start, and taking over a previous agent's program. A restarted agent finds
//! its predecessor's program still attached through a pinned link; it keeps that program
//! running on the same pinned maps until the writer has programmed them once (a role's last
//! write, the next hop or the edges, ends each programming), so a new program never runs on
//! state that is not in force yet, e.g. maps a layout change replaced.

use std::time::Duration;

use hsn_ebpf::{AttachMode, EdgeNode, NextHop, TenantPrefixes};

use crate::datapath::{CounterKey, Datapath, Loaded, Totals, mode_label};

/// How the datapath was attached at start.
#[derive(Debug)]
pub struct Attached<D> {
    /// The datapath, taking over pinned links once programmed.
    pub datapath: TakeOver<D>,
    /// Each interface and its mode (taken-over links with the mode they run in).
    pub interfaces: Vec<(String, AttachMode)>,
}

impl<D> Attached<D> {
    /// The weakest mode, as reported in the Lease and metrics (`detached` with none).
    pub fn mode_label(&self) -> String {
        mode_label(&self.interfaces.iter().map(|(_, m)| *m).collect::<Vec<_>>())
    }
}

/// How often an agent whose interface runs another program tries again.
pub const BUSY_RETRY: Duration = Duration::from_secs(1);

/// Attaches `dp` to each of `interfaces` where no previous program runs; the others (with
/// a pinned link) are taken over once the maps are programmed. An interface that runs
/// another program (`is_busy`: when a super node is placed on a node of the network's
/// edges, that edge's agent drains and detaches its program first) is tried again every
/// [`BUSY_RETRY`] until `stop`, rather than failing the agent into the kubelet's growing
/// restart backoff; `None` when stopped first.
pub async fn attach<D: Loaded>(
    mut dp: D,
    interfaces: &[String],
    stop: impl Future<Output = ()>,
) -> Result<Option<Attached<D>>, hsn_ebpf::Error> {
    let mut stop = std::pin::pin!(stop);
    for pin in dp.replaced_pins() {
        tracing::warn!(%pin, "incompatible state map from another build; the writer refills it");
    }
    let mut modes = Vec::new();
    let mut pending = Vec::new();
    for ifname in interfaces {
        if let Some(mode) = dp.pinned_attachment(ifname) {
            tracing::info!(interface = ifname, %mode,
                "the previous program runs on; taking it over once the maps are programmed");
            modes.push((ifname.clone(), mode));
            pending.push(ifname.clone());
            continue;
        }
        let mut waiting = false;
        let mode = loop {
            match dp.attach(ifname) {
                Ok(mode) => break mode,
                Err(e) if e.is_busy() => {
                    if !waiting {
                        tracing::warn!(interface = ifname, error = %e,
                            "another program runs on the interface (an agent of another role draining?); attaching once it is gone");
                        waiting = true;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(BUSY_RETRY) => {}
                        () = &mut stop => return Ok(None),
                    }
                }
                Err(e) => return Err(e),
            }
        };
        tracing::info!(interface = ifname, %mode, "attached");
        modes.push((ifname.clone(), mode));
    }
    Ok(Some(Attached {
        datapath: TakeOver { inner: dp, pending },
        interfaces: modes,
    }))
}

/// The datapath with the pinned links of a previous agent still to take over.
#[derive(Debug)]
pub struct TakeOver<D> {
    inner: D,
    pending: Vec<String>,
}

impl<D: Datapath> TakeOver<D> {
    fn programmed(&mut self) {
        for ifname in std::mem::take(&mut self.pending) {
            match self.inner.attach(&ifname) {
                Ok(mode) => tracing::info!(interface = ifname, %mode, "took over the pinned link"),
                Err(error) => tracing::error!(%error, interface = ifname,
                    "taking over the pinned link failed; the previous program keeps running"),
            }
        }
    }
}

impl<D: Datapath> Datapath for TakeOver<D> {
    fn set_tenants(&mut self, tenants: &[TenantPrefixes]) -> Result<(), hsn_ebpf::Error> {
        self.inner.set_tenants(tenants)
    }

    fn set_next_hop(&mut self, hop: Option<NextHop>) -> Result<(), hsn_ebpf::Error> {
        self.inner.set_next_hop(hop)?;
        self.programmed();
        Ok(())
    }

    fn set_supers(&mut self, supers: &[std::net::IpAddr]) -> Result<(), hsn_ebpf::Error> {
        self.inner.set_supers(supers)
    }

    fn set_edges(&mut self, edges: &[EdgeNode]) -> Result<(), hsn_ebpf::Error> {
        self.inner.set_edges(edges)?;
        self.programmed();
        Ok(())
    }

    fn counters(&self) -> Result<Vec<(CounterKey, Totals)>, hsn_ebpf::Error> {
        self.inner.counters()
    }

    fn parse_errors(&self) -> Result<u64, hsn_ebpf::Error> {
        self.inner.parse_errors()
    }

    fn attach(&mut self, ifname: &str) -> Result<AttachMode, hsn_ebpf::Error> {
        self.inner.attach(ifname)
    }

    /// A link still to take over is the previous agent's: it is not taken over any more, and
    /// goes when the pins are removed.
    fn detach(&mut self, ifname: &str) -> Result<(), hsn_ebpf::Error> {
        if let Some(i) = self.pending.iter().position(|p| p == ifname) {
            self.pending.remove(i);
            return Ok(());
        }
        self.inner.detach(ifname)
    }
}
