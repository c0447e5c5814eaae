//! The HSN operator: MecCluster and HsnNetwork controllers, placement and edge-to-super
//! assignment, member-cluster apply, status and failover.

pub mod cli;
pub mod conditions;
pub mod context;
pub mod lists;
pub mod meccluster;
pub mod member;
pub mod metrics;
pub mod network;
pub mod plan;
pub mod resources;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use hsn_runtime::admin::{self, Readiness};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_lease_manager::LeaseManagerBuilder;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::cli::Args;
use crate::context::{Context, Settings};
use crate::member::{Inventory, MemberClients};
use crate::metrics::Metrics;

/// A shutdown that many tasks can wait on.
#[derive(Clone)]
struct Stop(watch::Receiver<bool>);

impl Stop {
    fn wait(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

/// How long in-flight reconciles may run after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the operator until `shutdown` resolves (or this replica loses leadership).
pub async fn run(
    args: Args,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = hub_config(&args).await?;
    let hub = Client::try_from(config.clone()).context("building the hub client")?;
    let identity = args.identity.clone().unwrap_or_else(default_identity);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop = Stop(stop_rx);
    let stopper = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stopper.send(true);
    });

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let ready = Readiness::pending("not leading");
    let (addr, server) = admin::serve(
        args.metrics_addr,
        Arc::new(registry),
        ready.clone(),
        stop.wait(),
    )
    .await
    .with_context(|| format!("binding {}", args.metrics_addr))?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    let server = tokio::spawn(server);

    let lost_leadership = Arc::new(AtomicBool::new(false));
    // Held while this replica may write; dropping every receiver makes the Lease manager
    // release the Lease, so a standby takes over at once instead of after its expiry.
    let mut leadership = None;
    if args.leader_election {
        let manager = LeaseManagerBuilder::new(hub.clone(), &args.lease_name)
            .with_namespace(&args.operator_namespace)
            .with_identity(&identity)
            .with_duration(15)
            .with_grace(5)
            .build()
            .await
            .context("creating the leader-election Lease manager")?;
        let (mut leading, task) = manager.watch().await;
        tracing::info!(identity, lease = args.lease_name, "waiting for leadership");
        tokio::select! {
            r = leading.wait_for(|l| *l) => { r.context("leader election stopped")?; }
            () = stop.wait() => { let _ = server.await; return Ok(()); }
        }
        tracing::info!(identity, "leading");
        let lost = lost_leadership.clone();
        let stopper = stop_tx.clone();
        let mut watching = leading.clone();
        let stopping = stop.wait();
        tokio::spawn(async move {
            tokio::select! {
                _ = watching.wait_for(|l| !*l) => {
                    tracing::error!("lost leadership; stopping so that only one replica writes");
                    lost.store(true, Ordering::SeqCst);
                    let _ = stopper.send(true);
                }
                () = stopping => {}
            }
        });
        leadership = Some((leading, task));
    }

    // Marks every namespace this operator writes in a member, so that it deletes only its own.
    let hub_identity = member::cluster_identity(&hub)
        .await
        .context("reading the hub's identity (namespace kube-system)")?;
    let (inventory, changed) = Inventory::new();
    let mec_controller = meccluster::controller(hub.clone());
    let ctx = Arc::new(Context {
        hub: hub.clone(),
        members: MemberClients::new(
            hub.clone(),
            config,
            args.operator_namespace.clone(),
            Duration::from_secs(args.member_timeout_seconds),
            metrics.clone(),
        ),
        inventory,
        clusters: mec_controller.store(),
        metrics,
        recorder: Context::recorder(hub.clone(), Some(identity)),
        settings: Settings {
            probe_interval: Duration::from_secs(args.probe_interval_seconds),
            cluster_grace: Duration::from_secs(args.cluster_grace_seconds),
            member_timeout: Duration::from_secs(args.member_timeout_seconds),
            resync: Duration::from_secs(args.resync_seconds),
            operator_namespace: args.operator_namespace.clone(),
        },
        hub_identity,
    });
    ready.set(true);
    let controllers = async {
        tokio::join!(
            meccluster::run(ctx.clone(), mec_controller, stop.wait()),
            network::run(
                ctx,
                args.watch_namespace.clone(),
                args.concurrency,
                changed,
                stop.wait()
            ),
        )
    };
    // In-flight reconciles finish on shutdown; one stuck on a member that stopped answering
    // must not keep this replica (and its Lease) alive.
    let stopping = stop.wait();
    tokio::select! {
        _ = controllers => {}
        () = async { stopping.await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "reconciles still running after the shutdown grace; exiting anyway");
        }
    }
    ready.set(false);
    if let Some((leading, task)) = leadership {
        drop(leading);
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => tracing::info!("released the leader Lease"),
            Ok(Ok(Err(error))) => {
                tracing::warn!(%error, "releasing the leader Lease failed; it expires on its own")
            }
            Ok(Err(_)) | Err(_) => {
                tracing::warn!("releasing the leader Lease timed out; it expires on its own")
            }
        }
    }
    let _ = server.await;
    anyhow::ensure!(!lost_leadership.load(Ordering::SeqCst), "lost leadership");
    Ok(())
}

async fn hub_config(args: &Args) -> anyhow::Result<Config> {
    match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .context("loading the hub kubeconfig")
        }
        None => Config::infer()
            .await
            .context("finding the hub cluster (in-cluster or ~/.kube/config)"),
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}
