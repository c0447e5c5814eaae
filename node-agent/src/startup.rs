//! Starting an agent from its [`Config`]: identity, the cluster's clients, the datapath
//! (loaded, attached or taken over), the agent's tasks and its admin server; then, once
//! stopped, the shutdown policy ([`crate::shutdown`]).

use hsn_ebpf::{EdgeConfig, EdgeDatapath, PinDir, SuperConfig, SuperDatapath};
use hsn_runtime::admin::{self, Readiness};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

use crate::Error;
use crate::agent::{Agent, AgentConfig, LeaseConfig, RoutesSource};
use crate::config::{ClusterSettings, Config, RoutesSettings};
use crate::datapath::Datapath;
use crate::identity::Identity;
use crate::lease::LeaseIdentity;
use crate::metrics::AttachLabels;
use crate::nexthop::NextHops;
use crate::shipper::ShipperConfig;
use crate::shutdown::{self, Departure, Drained, Residence};
use crate::spool::SpoolHeader;
use crate::takeover::{self, Attached};
use hsn_core::Role;

/// Runs the agent until `shutdown` resolves, then applies the shutdown policy.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let identity = match &config.identity_file {
        Some(path) => Identity::load_file(path)?,
        None => Identity::load_or_create(&config.state_dir)?,
    };
    tracing::info!(role = config.role.as_str(), network = config.network, pool = ?config.pool,
        public_key = identity.public_key_hex(), state_dir = %config.state_dir.display(),
        "hsn-agent starting");
    let (routes, lease, residence) = match &config.routes {
        RoutesSettings::File(path) => (RoutesSource::File(path.clone()), None, None),
        RoutesSettings::Cluster(cluster) => {
            let (routes, lease, residence) = cluster_parts(&config, cluster, &identity).await?;
            (routes, Some(lease), Some(residence))
        }
    };
    let next_hops = match &config.datapath.next_hop {
        Some(flag) => NextHops::from_flag(flag)?,
        None => NextHops::Kernel,
    };
    let agent_config = |mode: String| AgentConfig {
        network: config.network.clone(),
        me: config.me.clone(),
        spool_header: SpoolHeader {
            network: config.network.clone(),
            role: config.role.as_str().into(),
            agent: config.name.clone(),
            public_key: identity.public_key_hex(),
        },
        spool_dir: config.spool_dir(),
        routes,
        next_hops,
        tunnel_address: config.datapath.tunnel_address,
        lease,
        default_epoch_seconds: config.default_epoch_seconds,
        epoch_loop: true,
        datapath_mode: mode,
        shipper: shipper_config(&config, &identity),
        ledger_relay_dir: config.ledger_relay_dir.clone(),
    };
    let pin = Some(PinDir::under(&config.datapath.bpffs, &config.network)?);
    let interfaces = &config.datapath.interfaces;
    let mut shutdown = std::pin::pin!(shutdown);
    let parts = |shutdown| ServeParts {
        config: &config,
        agent_config,
        shutdown,
        residence: residence.as_ref(),
    };
    let served = match config.role {
        Role::Edge => {
            let dp = EdgeDatapath::load_with_hook(
                &EdgeConfig {
                    pin,
                    redirect_uplink: true,
                },
                config.datapath.hook,
            )?;
            match takeover::attach(dp, interfaces, shutdown.as_mut()).await? {
                Some(attached) => serve(attached, parts(shutdown)).await,
                None => Ok((departure(residence.as_ref()).await, None)),
            }
        }
        Role::Super => {
            let dp = SuperDatapath::load_with_hook(&SuperConfig { pin }, config.datapath.hook)?;
            match takeover::attach(dp, interfaces, shutdown.as_mut()).await? {
                Some(attached) => serve(attached, parts(shutdown)).await,
                None => Ok((departure(residence.as_ref()).await, None)),
            }
        }
    };
    let (departure, drained) = match &served {
        Ok(stopped) => *stopped,
        // The task or server error is the agent's exit; whether one follows is still asked.
        Err(_) => (departure(residence.as_ref()).await, None),
    };
    shutdown::after_stop(departure, drained, &config.datapath.bpffs, &config.network)?;
    served.map(drop)
}

async fn departure(residence: Option<&Residence>) -> Option<Departure> {
    match residence {
        Some(residence) => residence.departure().await,
        None => None,
    }
}

/// What [`serve`] needs besides the datapath.
struct ServeParts<'a, F, S> {
    config: &'a Config,
    agent_config: F,
    shutdown: S,
    residence: Option<&'a Residence>,
}

/// Starts the agent's tasks on the attached datapath and serves `/metrics` until `shutdown`
/// resolves or a task ends; then asks whether another agent will follow and, when the
/// network no longer places this one here, drains it ([`shutdown::drain`]) while its tasks
/// still run.
async fn serve<D: Datapath>(
    attached: Attached<D>,
    parts: ServeParts<'_, impl FnOnce(String) -> AgentConfig, impl Future<Output = ()>>,
) -> Result<(Option<Departure>, Option<Drained>), Error> {
    let ServeParts {
        config,
        agent_config,
        shutdown,
        residence,
    } = parts;
    let label = attached.mode_label();
    let mut agent = Agent::start(agent_config(label.clone()), attached.datapath)?;
    for (interface, _) in &attached.interfaces {
        let labels = AttachLabels {
            interface: interface.clone(),
            mode: label.clone(),
        };
        agent.metrics.attached.get_or_create(&labels).set(1);
    }
    let (bound, server) = admin::serve(
        config.metrics_addr,
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
    let departure = departure(residence).await;
    let drained = match departure {
        Some(Departure::Dropped(reason)) => {
            tracing::info!(reason, "no agent will follow on this node");
            let interfaces: Vec<String> =
                attached.interfaces.iter().map(|(i, _)| i.clone()).collect();
            Some(
                shutdown::drain(
                    &agent,
                    &interfaces,
                    &config.spool_dir(),
                    config.ledger.is_some(),
                )
                .await,
            )
        }
        _ => None,
    };
    Ok((departure, drained))
}

/// The routes ConfigMap, the Lease and the namespace of a cluster-mode agent.
async fn cluster_parts(
    config: &Config,
    cluster: &ClusterSettings,
    identity: &Identity,
) -> Result<(RoutesSource, LeaseConfig, Residence), Error> {
    let client = kube::Client::try_default().await?;
    let lease = LeaseConfig {
        api: Api::<Lease>::namespaced(client.clone(), &cluster.namespace),
        identity: LeaseIdentity {
            name: config.name.clone(),
            holder: cluster.holder.clone(),
            pod_uid: cluster.pod_uid.clone(),
            role: config.role,
            public_key: identity.public_key_hex(),
            duration_seconds: cluster.lease_seconds,
            address: cluster.advertise_address,
        },
        heartbeat: cluster.heartbeat,
    };
    let residence = Residence {
        namespaces: Api::all(client.clone()),
        namespace: cluster.namespace.clone(),
        leases: lease.api.clone(),
        lease: config.name.clone(),
    };
    let api = Api::<ConfigMap>::namespaced(client, &cluster.namespace);
    let routes = RoutesSource::ConfigMap(Box::new(api), cluster.configmap.clone());
    Ok((routes, lease, residence))
}

/// The ledger shipper, when the agent ships.
fn shipper_config(config: &Config, identity: &Identity) -> Option<ShipperConfig> {
    let ledger = config.ledger.as_ref()?;
    let mut c = ShipperConfig::new(
        &config.network,
        config.role,
        identity.signing_key().clone(),
        config.spool_dir(),
    );
    c.endpoint = ledger.endpoint.clone();
    c.tls = ledger.tls.clone();
    c.edge_keys = ledger.edge_keys.clone();
    c.backoff_max = ledger.backoff_max;
    Some(c)
}
