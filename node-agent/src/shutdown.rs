//! What a stopped agent leaves behind. Its programs stay attached, counting, for the next
//! agent (a restart, an upgrade), unless no agent will follow ([`Departure`]): then leaving
//! them attached would keep metering into maps nobody reads and steering tenant traffic
//! into a tunnel nobody serves, so they are removed. An agent the network no longer places
//! on its node first stops steering and closes its open epoch ([`drain`]), so the bytes it
//! counted since the last close are recorded and shipped, not left in maps about to go.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hsn_core::EpochClock;
use hsn_ebpf::PinDir;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use tokio::time::Instant;

use crate::agent::Agent;
use crate::datapath::Datapath;
use crate::spool;
use crate::writer::lock;

/// Why no agent will follow this one on its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    /// The network is leaving the cluster: its namespace is gone or being deleted, or the
    /// agents' ServiceAccount is gone. Its ledgers go with it: the programs are removed at
    /// once.
    Network(&'static str),
    /// The network stays but no longer places this agent here: the node left its pools (or
    /// went to another network), or its super node was scaled away. The operator takes the
    /// agent's Lease out of its Role before it changes the workloads, so the agent's read
    /// of its own Lease is refused (403) by the time its pod is stopped. The agent drains
    /// ([`drain`]) before the programs are removed.
    Dropped(&'static str),
}

impl Departure {
    /// Why, for the log.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Network(reason) | Self::Dropped(reason) => reason,
        }
    }
}

/// Where a cluster-mode agent lives, to tell at shutdown a restart (another agent will take
/// the programs over) from a departure (nobody will).
#[derive(Debug)]
pub struct Residence {
    /// Namespaces of the agent's cluster.
    pub namespaces: Api<Namespace>,
    /// The agent's namespace.
    pub namespace: String,
    /// Leases of the agent's namespace.
    pub leases: Api<Lease>,
    /// The agent's own Lease.
    pub lease: String,
}

impl Residence {
    /// How long shutdown waits for each answer (the pod's grace period is the epoch plus
    /// [`hsn_core::epoch::DRAIN_SECONDS`]).
    const TIMEOUT: Duration = Duration::from_secs(3);

    /// Why no agent will follow, when the namespace or the agent's Lease says so (see
    /// [`namespace_says`], [`lease_says`]). When it cannot tell, `None`: the programs stay,
    /// as for a restart.
    pub async fn departure(&self) -> Option<Departure> {
        let answer = with_timeout(self.namespaces.get_opt(&self.namespace)).await;
        match namespace_says(&answer) {
            Ok(Some(departure)) => return Some(departure),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, namespace = self.namespace,
                "reading the namespace at shutdown failed"),
        }
        let answer = with_timeout(self.leases.get_opt(&self.lease)).await;
        match lease_says(&answer) {
            Ok(departure) => departure,
            Err(error) => {
                tracing::warn!(%error, lease = self.lease,
                    "reading the agent's Lease at shutdown failed; the programs stay attached");
                None
            }
        }
    }
}

async fn with_timeout<T>(
    read: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, kube::Error> {
    tokio::time::timeout(Residence::TIMEOUT, read)
        .await
        .unwrap_or_else(|_| Err(kube::Error::Service("timed out".into())))
}

fn api_code(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// What the namespace read at shutdown says: gone (404) or being deleted means the network
/// leaves. So does 401: this agent's ServiceAccount token was rejected, i.e. the
/// ServiceAccount was deleted, which happens only with the namespace (a namespace's content
/// is often gone before its pods are stopped). 403 (the Role is gone: see [`lease_says`])
/// and anything else: cannot tell.
fn namespace_says(
    answer: &Result<Option<Namespace>, kube::Error>,
) -> Result<Option<Departure>, &kube::Error> {
    match answer {
        Ok(None) => Ok(Some(Departure::Network("the namespace is gone"))),
        Ok(Some(ns)) => Ok(ns
            .metadata
            .deletion_timestamp
            .is_some()
            .then_some(Departure::Network("the namespace is being deleted"))),
        Err(error) if api_code(error) == Some(401) => Ok(Some(Departure::Network(
            "the agent's ServiceAccount was deleted (401)",
        ))),
        Err(error) => Err(error),
    }
}

/// What the read of the agent's own Lease at shutdown says. The agents' Role grants each
/// placed agent its Lease by name, and nothing else of the kind: 403 means the operator
/// placed this agent here no longer. Found or not (a placed agent's Lease may not be
/// written yet): placed. Anything else: cannot tell.
fn lease_says(
    answer: &Result<Option<Lease>, kube::Error>,
) -> Result<Option<Departure>, &kube::Error> {
    match answer {
        Ok(_) => Ok(None),
        Err(error) if api_code(error) == Some(403) => Ok(Some(Departure::Dropped(
            "the network no longer places this agent here: its Role no longer grants the agent's Lease (403)",
        ))),
        Err(error) => Err(error),
    }
}

/// How long after the open epoch's end a draining agent waits for it to be closed.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// How long it then waits for its records to be acknowledged by the ledger.
pub const SHIP_WAIT: Duration = Duration::from_secs(20);

// The two reads at shutdown and the drain fit the grace period past the epoch's end.
const _: () = assert!(
    2 * Residence::TIMEOUT.as_secs() + CLOSE_WAIT.as_secs() + SHIP_WAIT.as_secs() + 5
        <= hsn_core::epoch::DRAIN_SECONDS
);

/// How a drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drained {
    /// The open epoch is closed into the spool (and shipped, or left in the spool for the
    /// next agent of the network on this node): the programs and their maps may go.
    Closed,
    /// The epoch was not closed in time, or no routes table ever numbered the epochs: the
    /// maps keep what they counted, pinned, for a later agent.
    Open,
}

/// A dropped agent's last work: detaches its programs from `interfaces` (the node stops
/// steering tenant traffic into the tunnel; nothing is counted any more), waits for the
/// epoch loop to close the epoch open now, at its end, then, when `ships`, for the spool to
/// be acknowledged ([`SHIP_WAIT`] at most; an edge the routes table no longer lists ships
/// to the super node it last shipped to, a super node whose pod's ledger stops with it to
/// another super node's). Records not acknowledged stay in the spool, which outlives the
/// agent on the node.
pub async fn drain<D: Datapath>(
    agent: &Agent<D>,
    interfaces: &[String],
    spool_dir: &Path,
    ships: bool,
) -> Drained {
    {
        let mut dp = lock(&agent.datapath);
        for ifname in interfaces {
            match dp.detach(ifname) {
                Ok(()) => tracing::info!(interface = ifname, "detached: no longer steering"),
                Err(error) => tracing::warn!(%error, interface = ifname, "detaching failed"),
            }
        }
    }
    let Some(seconds) = agent.desired.borrow().as_ref().map(|d| d.epoch_seconds) else {
        tracing::warn!("no routes table yet: no epoch to close, the maps stay pinned");
        return Drained::Open;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let clock = EpochClock::new(seconds.into());
    let open = clock.at(now.as_secs());
    let deadline = Instant::now() + clock.until_end(now) + CLOSE_WAIT;
    tracing::info!(epoch = open, "draining: closing the open epoch at its end");
    let mut status = agent.status.clone();
    let closed = tokio::time::timeout_at(
        deadline,
        status.wait_for(|s| s.last_epoch.is_some_and(|e| e >= open)),
    )
    .await;
    if !matches!(closed, Ok(Ok(_))) {
        tracing::warn!(
            epoch = open,
            "the open epoch was not closed in time; the maps stay pinned"
        );
        return Drained::Open;
    }
    if !ships {
        return Drained::Closed;
    }
    let deadline = Instant::now() + SHIP_WAIT;
    loop {
        let unsent = spool::unsent(spool_dir).map_or(usize::MAX, |f| f.len());
        if unsent == 0 {
            tracing::info!(
                epoch = open,
                "drained: every record acknowledged by the ledger"
            );
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(unsent, spool = %spool_dir.display(),
                "drained: epoch files not acknowledged stay in the spool for the network's next agent on this node");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Drained::Closed
}

/// Applies the policy once the agent has stopped: removes the network's programs when no
/// agent will follow, unless a drain left the open epoch in the maps.
pub fn after_stop(
    departure: Option<Departure>,
    drained: Option<Drained>,
    bpffs: &Path,
    network: &str,
) -> Result<(), hsn_ebpf::Error> {
    match (departure, drained) {
        (Some(_), Some(Drained::Open)) => {
            tracing::warn!("leaving the maps pinned: they hold counts no epoch recorded");
            Ok(())
        }
        (Some(departure), _) => {
            tracing::info!(
                reason = departure.reason(),
                "no agent will follow: removing this network's programs"
            );
            remove_programs(bpffs, network)
        }
        (None, _) => {
            tracing::info!("the programs stay attached, counting, for the next agent");
            Ok(())
        }
    }
}

/// `hsn-agent cleanup`, and an agent no other will follow: unpins the network's links and
/// maps (a program no process holds any more is detached).
pub fn remove_programs(bpffs: &Path, network: &str) -> Result<(), hsn_ebpf::Error> {
    let pin = PinDir::under(bpffs, network)?;
    pin.remove()?;
    tracing::info!(dir = %pin.path().display(), "removed the pinned XDP links and maps");
    Ok(())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("test", "test")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn gone_deleting_or_unauthenticated_is_leaving_and_the_rest_is_not_or_unknown() {
        let says = |answer| {
            namespace_says(&answer)
                .map(|d| d.map(Departure::reason))
                .ok()
        };
        let mut ns = Namespace::default();
        assert_eq!(says(Ok(Some(ns.clone()))), Some(None));
        ns.metadata.deletion_timestamp = Some(Time(Default::default()));
        assert_eq!(
            says(Ok(Some(ns))),
            Some(Some("the namespace is being deleted"))
        );
        assert_eq!(says(Ok(None)), Some(Some("the namespace is gone")));
        assert!(matches!(
            namespace_says(&Err(api_error(401))),
            Ok(Some(Departure::Network(_)))
        ));
        assert!(namespace_says(&Err(api_error(403))).is_err());
        assert!(namespace_says(&Err(api_error(500))).is_err());
        assert!(namespace_says(&Err(kube::Error::Service("timed out".into()))).is_err());
    }

    #[test]
    fn a_lease_no_longer_granted_is_dropped_and_found_or_not_is_placed() {
        assert_eq!(lease_says(&Ok(Some(Lease::default()))).ok(), Some(None));
        assert_eq!(lease_says(&Ok(None)).ok(), Some(None), "not written yet");
        assert!(matches!(
            lease_says(&Err(api_error(403))),
            Ok(Some(Departure::Dropped(_)))
        ));
        assert!(lease_says(&Err(api_error(401))).is_err());
        assert!(lease_says(&Err(api_error(500))).is_err());
    }

    #[test]
    fn a_departure_removes_the_programs_unless_the_drain_left_an_epoch_open() {
        let bpffs = tempfile::tempdir().unwrap();
        let pins = PinDir::under(bpffs.path(), "metro").unwrap();
        let kept = || {
            std::fs::create_dir_all(pins.path()).unwrap();
            std::fs::write(pins.path().join("edge_counters"), b"").unwrap();
        };
        let dropped = Some(Departure::Dropped("test"));
        for (departure, drained, stays) in [
            (None, None, true),
            (dropped, Some(Drained::Open), true),
            (dropped, Some(Drained::Closed), false),
            (Some(Departure::Network("test")), None, false),
        ] {
            kept();
            after_stop(departure, drained, bpffs.path(), "metro").unwrap();
            assert_eq!(pins.path().exists(), stays, "{departure:?} {drained:?}");
        }
    }
}
