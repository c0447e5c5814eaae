//! `hsn-agent`, the per-node daemon: an ed25519 identity, routes (ConfigMap or file) indexed
//! into desired eBPF map state for the one map writer, epoch metering into an on-disk spool,
//! a Lease heartbeat with the annotations the operator reads, `/metrics` and `/healthz`.

pub mod agent;
pub mod cli;
pub mod datapath;
pub mod epoch;
mod fsutil;
pub mod identity;
pub mod index;
pub mod lease;
pub mod meter;
pub mod metrics;
pub mod nexthop;
pub mod shipper;
pub mod source;
pub mod spool;
pub mod status;
pub mod writer;

use hsn_runtime::admin::{self, Readiness};
use std::time::Duration;

use hsn_api::node::lease as lease_names;
use hsn_ebpf::{AttachMode, EdgeConfig, EdgeDatapath, PinDir, SuperConfig, SuperDatapath};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Api;

use crate::agent::{Agent, AgentConfig, LeaseConfig, RoutesSource};
use crate::cli::{Args, Command, DatapathKind, LedgerTlsError};
use crate::datapath::{Datapath, mode_label};
use crate::identity::{Identity, IdentityError};
use crate::index::Me;
use crate::lease::{LeaseIdentity, LeaseNameError, ordinal_of};
use crate::metrics::AttachLabels;
use crate::nexthop::{NextHopError, NextHops};
use crate::shipper::ShipperConfig;
use crate::spool::{SpoolError, SpoolHeader};
use hsn_core::Role;

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or environment variable is missing or inconsistent.
    #[error("configuration: {0}")]
    Config(&'static str),
    /// `--datapath tc`: hsn-ebpf has XDP programs only.
    #[error("--datapath tc is not supported yet (hsn-ebpf has XDP programs only)")]
    TcUnsupported,
    /// The identity key.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// Super node pod name.
    #[error(transparent)]
    LeaseName(#[from] LeaseNameError),
    /// `--next-hop`.
    #[error(transparent)]
    NextHop(#[from] NextHopError),
    /// Loading or attaching the program.
    #[error("datapath: {0}")]
    Datapath(#[from] hsn_ebpf::Error),
    /// `--ledger-ca`, `--ledger-cert`, `--ledger-key`.
    #[error(transparent)]
    LedgerTls(#[from] LedgerTlsError),
    /// Opening the spool.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// No Kubernetes client.
    #[error("kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    /// The metrics listener.
    #[error("metrics server: {0}")]
    Server(#[from] std::io::Error),
}

/// Runs the agent until `shutdown` resolves (or the `cleanup` subcommand).
pub async fn run(args: Args, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    if args.command == Some(Command::Cleanup) {
        return cleanup(&args);
    }
    if args.datapath == DatapathKind::Tc {
        return Err(Error::TcUnsupported);
    }
    let state_dir = args.state_dir();
    let identity = Identity::load_or_create(&state_dir)?;
    let shipper = shipper_config(&args, &identity, &state_dir)?;
    let node = args.node_name.clone();
    let (me, lease_name) = match args.role {
        Role::Edge => {
            let node = node
                .clone()
                .ok_or(Error::Config("edge needs --node-name or NODE_NAME"))?;
            (
                Me::Edge { node: node.clone() },
                lease_names::edge_lease(&node),
            )
        }
        Role::Super => {
            let pod = args
                .pod_name
                .as_deref()
                .ok_or(Error::Config("super needs --pod-name or POD_NAME"))?;
            let ordinal = ordinal_of(pod)?;
            let me = Me::Super {
                ordinal,
                cluster: None,
            };
            (me, lease_names::super_lease(ordinal))
        }
    };
    tracing::info!(role = args.role.as_str(), network = args.network, pool = ?args.pool,
        public_key = identity.public_key_hex(), state_dir = %state_dir.display(), "hsn-agent starting");

    let (routes, lease, residence) =
        cluster_parts(&args, &identity, &lease_name, node.as_deref()).await?;
    let next_hops = match &args.next_hop {
        Some(flag) => NextHops::from_flag(flag)?,
        None => NextHops::Kernel,
    };
    let config = |mode: String| AgentConfig {
        network: args.network.clone(),
        me,
        spool_header: SpoolHeader {
            network: args.network.clone(),
            role: args.role.as_str().into(),
            agent: lease_name.clone(),
            public_key: identity.public_key_hex(),
        },
        spool_dir: state_dir.join("spool"),
        routes,
        next_hops,
        lease,
        default_epoch_seconds: args.epoch_seconds,
        epoch_loop: true,
        datapath_mode: mode,
        shipper,
    };
    let pin = Some(PinDir::under(&args.bpffs, &args.network)?);
    let served = match args.role {
        Role::Edge => {
            let dp = EdgeDatapath::load(&EdgeConfig {
                pin,
                redirect_uplink: true,
            })?;
            log_replaced(dp.replaced_pins());
            let running = running(&args, |i| dp.pinned_attachment(i));
            serve(&args, dp, running, config, shutdown).await
        }
        Role::Super => {
            let dp = SuperDatapath::load(&SuperConfig {
                pin,
                edge_by_addr: true,
            })?;
            log_replaced(dp.replaced_pins());
            let running = running(&args, |i| dp.pinned_attachment(i));
            serve(&args, dp, running, config, shutdown).await
        }
    };
    // A stopped agent leaves its programs attached for the next one, unless no next one
    // will come: its namespace is being deleted (the network left this cluster).
    let leaving = match &residence {
        Some(residence) => residence.leaving().await,
        None => None,
    };
    match leaving {
        Some(reason) => {
            tracing::info!(
                reason,
                "no agent will follow: removing this network's programs"
            );
            cleanup(&args)?;
        }
        None => tracing::info!("the programs stay attached, counting, for the next agent"),
    }
    served
}

/// Where a cluster-mode agent lives, to tell at shutdown a restart (another agent will take
/// the programs over) from an uninstall (nobody will: leaving them attached would keep
/// steering tenant traffic to a super node that is gone).
struct Residence {
    namespaces: Api<Namespace>,
    namespace: String,
}

impl Residence {
    /// How long shutdown waits for the answer; the pod's grace period is 30 s by default.
    const TIMEOUT: Duration = Duration::from_secs(3);

    /// Why no agent will follow, when the namespace is gone or being deleted, or this
    /// agent's ServiceAccount is (see [`leaving`]). When it cannot tell, `None`: the programs
    /// stay, as for a restart.
    async fn leaving(&self) -> Option<&'static str> {
        let answer = tokio::time::timeout(Self::TIMEOUT, self.namespaces.get_opt(&self.namespace))
            .await
            .unwrap_or_else(|_| Err(kube::Error::Service("timed out".into())));
        match leaving(&answer) {
            Ok(reason) => reason,
            Err(error) => {
                tracing::warn!(%error, namespace = self.namespace,
                    "reading the namespace at shutdown failed; the programs stay attached");
                None
            }
        }
    }
}

/// What the namespace read at shutdown says: gone (404) or being deleted means leaving. So
/// does 401: this agent's ServiceAccount token was rejected, i.e. the ServiceAccount was
/// deleted, which the operator does only with the namespace (a namespace's content is often
/// gone before its pods are stopped). 403 and anything else: cannot tell (an operator whose
/// Role predates the namespace rule gives 403 on every stop).
fn leaving(
    answer: &Result<Option<Namespace>, kube::Error>,
) -> Result<Option<&'static str>, &kube::Error> {
    match answer {
        Ok(None) => Ok(Some("the namespace is gone")),
        Ok(Some(ns)) => Ok(ns
            .metadata
            .deletion_timestamp
            .is_some()
            .then_some("the namespace is being deleted")),
        Err(kube::Error::Api(status)) if status.code == 401 => {
            Ok(Some("the agent's ServiceAccount was deleted (401)"))
        }
        Err(error) => Err(error),
    }
}

/// `hsn-agent cleanup`, and an agent whose namespace is being deleted: unpins the network's
/// links and maps (a program no process holds any more is detached).
fn cleanup(args: &Args) -> Result<(), Error> {
    let pin = PinDir::under(&args.bpffs, &args.network)?;
    pin.remove()?;
    tracing::info!(dir = %pin.path().display(), "removed the pinned XDP links and maps");
    Ok(())
}

fn log_replaced(replaced: &[hsn_ebpf::ReplacedPin]) {
    for pin in replaced {
        tracing::warn!(%pin, "incompatible state map from another build; the writer refills it");
    }
}

/// The `--interface`s a previous agent's program still runs on, through its pinned link.
fn running(args: &Args, pinned: impl Fn(&str) -> Option<AttachMode>) -> Vec<(String, AttachMode)> {
    args.interfaces
        .iter()
        .filter_map(|i| Some((i.clone(), pinned(i)?)))
        .collect()
}

/// The ledger shipper, unless `--no-ledger`; a super ships only with `--ledger-endpoint`.
fn shipper_config(
    args: &Args,
    identity: &Identity,
    state_dir: &std::path::Path,
) -> Result<Option<ShipperConfig>, Error> {
    if args.no_ledger || (args.role == Role::Super && args.ledger_endpoint.is_none()) {
        return Ok(None);
    }
    let mut c = ShipperConfig::new(
        &args.network,
        args.role,
        identity.signing_key().clone(),
        state_dir.join("spool"),
    );
    c.endpoint = args.ledger_endpoint.clone();
    c.tls = args.ledger_tls()?;
    c.edge_keys = args.edge_keys.iter().cloned().collect();
    c.backoff_max = Duration::from_secs(args.ledger_backoff_max_seconds.max(1));
    Ok(Some(c))
}

async fn cluster_parts(
    args: &Args,
    identity: &Identity,
    lease_name: &str,
    node: Option<&str>,
) -> Result<(RoutesSource, Option<LeaseConfig>, Option<Residence>), Error> {
    if let Some(path) = &args.routes_file {
        return Ok((RoutesSource::File(path.clone()), None, None));
    }
    let name = args.routes_configmap.clone().ok_or(Error::Config(
        "one of --routes-configmap and --routes-file is required",
    ))?;
    let namespace = args.namespace.as_deref().ok_or(Error::Config(
        "cluster mode needs --namespace or POD_NAMESPACE",
    ))?;
    let holder = node.ok_or(Error::Config("cluster mode needs --node-name or NODE_NAME"))?;
    let client = kube::Client::try_default().await?;
    let lease = LeaseConfig {
        api: Api::<Lease>::namespaced(client.clone(), namespace),
        identity: LeaseIdentity {
            name: lease_name.to_owned(),
            holder: holder.to_owned(),
            role: args.role,
            public_key: identity.public_key_hex(),
            duration_seconds: args.lease_seconds,
            address: args.advertise_address,
        },
        heartbeat: Duration::from_secs(args.heartbeat_seconds.max(1)),
    };
    let residence = Residence {
        namespaces: Api::all(client.clone()),
        namespace: namespace.to_owned(),
    };
    let api = Api::<ConfigMap>::namespaced(client, namespace);
    Ok((
        RoutesSource::ConfigMap(Box::new(api), name),
        Some(lease),
        Some(residence),
    ))
}

/// Attaches where nothing runs yet, starts the agent, and takes over the links a previous
/// agent left pinned only once the writer has programmed the maps (see [`TakeOver`]).
async fn serve<D: Datapath>(
    args: &Args,
    mut dp: D,
    running: Vec<(String, AttachMode)>,
    config: impl FnOnce(String) -> AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let mut modes: Vec<(String, AttachMode)> = Vec::new();
    let mut pending = Vec::new();
    for ifname in &args.interfaces {
        if let Some((_, mode)) = running.iter().find(|(i, _)| i == ifname) {
            tracing::info!(interface = ifname, %mode,
                "the previous program runs on; taking it over once the maps are programmed");
            modes.push((ifname.clone(), *mode));
            pending.push(ifname.clone());
            continue;
        }
        let mode = dp.attach(ifname)?;
        tracing::info!(interface = ifname, %mode, "attached");
        modes.push((ifname.clone(), mode));
    }
    let label = mode_label(&modes.iter().map(|(_, m)| *m).collect::<Vec<_>>());
    let mut agent = Agent::start(config(label.clone()), TakeOver { inner: dp, pending })?;
    for (interface, _) in &modes {
        let labels = AttachLabels {
            interface: interface.clone(),
            mode: label.clone(),
        };
        agent.metrics.attached.get_or_create(&labels).set(1);
    }
    let (bound, server) = admin::serve(
        args.metrics_addr,
        agent.registry.clone(),
        Readiness::always(),
        std::future::pending(),
    )
    .await?;
    tracing::info!(%bound, "serving /metrics, /healthz and /readyz");
    tokio::select! {
        () = shutdown => tracing::info!("shutting down"),
        result = server => result?,
        () = agent.join_any() => tracing::warn!("an agent task ended"),
    }
    Ok(())
}

/// The datapath with the pinned links of a previous agent still to take over. Its program
/// keeps running on the same pinned maps until the writer has programmed them once (a
/// role's last write, the next hop or the edges, ends each programming), so a new program
/// never runs on state that is not in force yet, e.g. maps a layout change replaced.
struct TakeOver<D> {
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
    fn set_tenants(&mut self, tenants: &[hsn_ebpf::TenantPrefixes]) -> Result<(), hsn_ebpf::Error> {
        self.inner.set_tenants(tenants)
    }

    fn set_next_hop(&mut self, hop: Option<hsn_ebpf::NextHop>) -> Result<(), hsn_ebpf::Error> {
        self.inner.set_next_hop(hop)?;
        self.programmed();
        Ok(())
    }

    fn set_edges(&mut self, edges: &[hsn_ebpf::EdgeNode]) -> Result<(), hsn_ebpf::Error> {
        self.inner.set_edges(edges)?;
        self.programmed();
        Ok(())
    }

    fn counters(&self) -> Result<Vec<(datapath::CounterKey, datapath::Totals)>, hsn_ebpf::Error> {
        self.inner.counters()
    }

    fn parse_errors(&self) -> Result<u64, hsn_ebpf::Error> {
        self.inner.parse_errors()
    }

    fn attach(&mut self, ifname: &str) -> Result<AttachMode, hsn_ebpf::Error> {
        self.inner.attach(ifname)
    }
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
        let leaves = |answer| leaving(&answer).map(|r| r.is_some()).ok();
        let mut ns = Namespace::default();
        assert_eq!(leaves(Ok(Some(ns.clone()))), Some(false));
        ns.metadata.deletion_timestamp = Some(Time(Default::default()));
        assert_eq!(leaves(Ok(Some(ns))), Some(true));
        assert_eq!(leaves(Ok(None)), Some(true));
        assert_eq!(leaves(Err(api_error(401))), Some(true));
        assert!(leaving(&Err(api_error(403))).is_err());
        assert!(leaving(&Err(api_error(500))).is_err());
        assert!(leaving(&Err(kube::Error::Service("timed out".into()))).is_err());
    }
}
