//! Command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Parser, Subcommand, ValueEnum};
use hsn_core::Role;

/// Datapath hook requested by the operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DatapathKind {
    /// XDP, native when the driver supports it, else generic.
    Xdp,
    /// TC ingress (a tcx link): the same programs, counters and maps, where XDP cannot
    /// serve.
    Tc,
}

impl DatapathKind {
    /// The hook hsn-ebpf loads for it.
    pub fn hook(self) -> hsn_ebpf::Hook {
        match self {
            Self::Xdp => hsn_ebpf::Hook::Xdp,
            Self::Tc => hsn_ebpf::Hook::Tc,
        }
    }
}

/// What to do instead of running the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Uninstall: unpin this network's XDP links and maps under `--bpffs`, detaching its
    /// programs (one a running agent holds goes when that agent exits) and dropping the
    /// counters not yet in the spool. The state directory is kept.
    Cleanup,
}

/// `hsn-agent` flags; env fallbacks match what the operator's pod spec sets.
#[derive(Clone, Debug, Parser)]
#[command(name = "hsn-agent", version, about = "HSN node agent")]
pub struct Args {
    /// Runs the agent when absent.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Edge (meters tenant traffic, redirects uplink to its super node) or super node
    /// (meters per (edge, tenant) to attest edge claims).
    #[arg(long, value_parser = PossibleValuesParser::new(Role::TEXTS).map(|s| s.parse::<Role>().expect("a listed role")))]
    pub role: Role,
    /// The HsnNetwork's name (also names the pin directory and default state dir).
    #[arg(long)]
    pub network: String,
    /// Routes ConfigMap to watch in `--namespace` (cluster mode).
    #[arg(long, conflicts_with = "routes_file")]
    pub routes_configmap: Option<String>,
    /// Routes table (JSON) to read instead of a ConfigMap (standalone); re-read when it
    /// changes and on SIGHUP.
    #[arg(long)]
    pub routes_file: Option<PathBuf>,
    /// Datapath hook.
    #[arg(long, value_enum, default_value = "xdp")]
    pub datapath: DatapathKind,
    /// Edge pool (informational; logged).
    #[arg(long)]
    pub pool: Option<String>,
    /// Interfaces to attach the XDP program to (repeatable). Without it, in cluster mode the
    /// interface carrying `--advertise-address` (a hostNetwork pod's POD_IP: the node's
    /// address); standalone, none (the programs load without attaching).
    #[arg(long = "interface")]
    pub interfaces: Vec<String>,
    /// `<ifname>,<mac>`: fixed egress device and neighbour MAC for every tunnel (an edge's
    /// toward its super node, a super node's back toward its edges), instead of resolving
    /// each peer's address through the kernel's route and neighbour tables.
    #[arg(long)]
    pub next_hop: Option<String>,
    /// Identity key, epoch snapshot and spool; default `/var/lib/hsn/<network>`.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The node's key (hex seed) kept elsewhere, e.g. a super node's from the identity
    /// Secret the operator mounts (mode 0440): read, never created or changed. Without it the
    /// key is `<state-dir>/identity.key`, generated on first start.
    #[arg(long, env = "HSN_IDENTITY_FILE")]
    pub identity_file: Option<PathBuf>,
    /// bpffs mount under which counters, state maps and XDP links are pinned
    /// (`<bpffs>/hsn/<network>`).
    #[arg(long, default_value = hsn_ebpf::DEFAULT_BPFFS)]
    pub bpffs: PathBuf,
    /// The address this agent receives datapath traffic on, advertised in its Lease (the
    /// operator copies it into the routes tables): a super node's edges send uplink and
    /// ledger submissions there; an edge's super node attributes its traffic to it.
    #[arg(long, env = "POD_IP")]
    pub advertise_address: Option<std::net::IpAddr>,
    /// Kubernetes node name (an edge's Lease is named after it).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Pod name: the Lease holder (cluster mode); a super node's ordinal is its
    /// StatefulSet suffix.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Pod UID, written into the Lease next to the holder (cluster mode): the operator
    /// trusts the Lease only when this pod is the one it placed for it.
    #[arg(long, env = "POD_UID")]
    pub pod_uid: Option<String>,
    /// Namespace of the routes ConfigMap and the Leases.
    #[arg(long = "namespace", env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Lease renewal interval.
    #[arg(long, default_value_t = 5)]
    pub heartbeat_seconds: u64,
    /// Lease duration written into the Lease.
    #[arg(long, default_value_t = 15)]
    pub lease_seconds: u32,
    /// Timer tick before the first routes table arrives; no epoch closes until a table
    /// gives its `epochSeconds` (counts wait in the pinned maps meanwhile).
    #[arg(long, default_value_t = 60)]
    pub epoch_seconds: u32,
    /// `/metrics` and `/healthz`.
    #[arg(long, default_value_t = SocketAddr::from(([0, 0, 0, 0], hsn_core::ports::EDGE_METRICS)))]
    pub metrics_addr: SocketAddr,
    /// JSON log lines.
    #[arg(long)]
    pub log_json: bool,
    /// Ledger to ship the spool to, e.g. `http://127.0.0.1:7443` (`https://` with
    /// `--ledger-ca`). Super nodes ship only with it (their local ledger); edges default to
    /// their super's `http(s)://<address>:7443`.
    #[arg(long, env = "HSN_LEDGER_ENDPOINT")]
    pub ledger_endpoint: Option<String>,
    /// CA (PEM) that signed the ledger's certificate: ships over TLS and verifies the ledger
    /// against it; an edge's default endpoint becomes `https://<super address>:7443`.
    #[arg(long, env = "HSN_LEDGER_CA")]
    pub ledger_ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to the ledger (mTLS); needs `--ledger-key`.
    #[arg(long, env = "HSN_LEDGER_CERT", requires_all = ["ledger_key", "ledger_ca"])]
    pub ledger_cert: Option<PathBuf>,
    /// Key (PEM) of `--ledger-cert`.
    #[arg(long, env = "HSN_LEDGER_KEY", requires = "ledger_cert")]
    pub ledger_key: Option<PathBuf>,
    /// Name the ledger's certificate must carry, when not the endpoint's host (e.g. an edge
    /// shipping to its super node by IP address).
    #[arg(long, env = "HSN_LEDGER_TLS_DOMAIN", requires = "ledger_ca")]
    pub ledger_tls_domain: Option<String>,
    /// Super: a directory shared with the pod's ledger container, where the genesis and
    /// the validators' addresses from the ledger ConfigMap are copied as soon as they change
    /// (the ledger's `--relayed-config`; its mounted copy lags by up to a minute).
    #[arg(long, env = "HSN_LEDGER_RELAY_DIR")]
    pub ledger_relay_dir: Option<PathBuf>,
    /// Do not ship the spool to any ledger.
    #[arg(long, conflicts_with = "ledger_endpoint")]
    pub no_ledger: bool,
    /// Super: the public key of the edge at an address, `<address>=<hex key>` (repeatable);
    /// the routes table does not carry edge keys yet.
    #[arg(long = "edge-key")]
    pub edge_keys: Vec<crate::shipper::EdgeKeyFlag>,
    /// Longest wait between retries of a failed submission, seconds.
    #[arg(long, default_value_t = 60)]
    pub ledger_backoff_max_seconds: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_arguments_parse() {
        let args = Args::try_parse_from([
            "hsn-agent",
            "--role",
            "super",
            "--network",
            "metro",
            "--routes-configmap",
            "hsn-routes",
            "--datapath",
            "xdp",
            "--pool",
            "p1",
        ])
        .unwrap();
        assert_eq!(args.role, Role::Super);
        assert_eq!(args.datapath, DatapathKind::Xdp);
        assert_eq!(args.command, None);
        let cleanup =
            Args::try_parse_from(["hsn-agent", "--role", "edge", "--network", "n", "cleanup"])
                .unwrap();
        assert_eq!(cleanup.command, Some(Command::Cleanup));
        assert!(
            Args::try_parse_from([
                "hsn-agent",
                "--role",
                "edge",
                "--network",
                "n",
                "--routes-configmap",
                "a",
                "--routes-file",
                "b"
            ])
            .is_err(),
            "one routes source"
        );
    }
}
