//! Command-line flags (each also readable from the environment).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// The HSN operator: reconciles HsnNetworks onto MEC clusters.
#[derive(Parser, Debug, Clone)]
#[command(name = "hsn-operator", version)]
pub struct Args {
    /// Kubeconfig of the hub cluster; in a pod the service account is used.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch HsnNetworks in this namespace only (default: all namespaces).
    #[arg(long, env = "HSN_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Namespace of the leader-election Lease, and the default namespace of kubeconfig Secrets.
    #[arg(long, env = "POD_NAMESPACE", default_value = "hsn-system")]
    pub operator_namespace: String,
    /// Networks reconciled at the same time.
    #[arg(long, env = "HSN_CONCURRENCY", default_value_t = 4)]
    pub concurrency: u16,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "HSN_METRICS_ADDR", default_value_t = SocketAddr::from(([0, 0, 0, 0], hsn_core::ports::OPERATOR_METRICS)))]
    pub metrics_addr: SocketAddr,
    /// Seconds between probes of a member cluster.
    #[arg(long, env = "HSN_PROBE_INTERVAL", default_value_t = 10)]
    pub probe_interval_seconds: u64,
    /// Seconds of failed probes before a member turns NotReady and its edges are re-homed.
    #[arg(long, env = "HSN_CLUSTER_GRACE", default_value_t = 30)]
    pub cluster_grace_seconds: u64,
    /// Timeout in seconds of one request to a member cluster.
    #[arg(long, env = "HSN_MEMBER_TIMEOUT", default_value_t = 10)]
    pub member_timeout_seconds: u64,
    /// Seconds between reconciles of a converged network (Lease expiry, drift).
    #[arg(long, env = "HSN_RESYNC", default_value_t = 10)]
    pub resync_seconds: u64,
    /// Elect a leader through a Lease so that only one replica writes.
    #[arg(long, env = "HSN_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "HSN_LEASE_NAME", default_value = "hsn-operator")]
    pub lease_name: String,
    /// Identity in the leader Lease and in Events (default: the pod name, else host and pid).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "HSN_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}
