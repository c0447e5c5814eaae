//! The agent's settings, derived from the flags once and checked at start: who this agent
//! is, where its routes come from, its datapath and its ledger. Nothing after start reads
//! the flags again, and a bad flag fails the start with a message instead of a retry loop.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hsn_api::node::lease as lease_names;
use hsn_core::Role;
use hsn_ledger_api::client::ClientTls;

use crate::cli::Args;
use crate::index::Me;
use crate::lease::{LeaseNameError, ordinal_of};
use crate::shipper::EdgeKeys;

/// Why the flags do not make an agent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag or environment variable is missing or inconsistent.
    #[error("configuration: {0}")]
    Missing(&'static str),
    /// Cluster mode without `--interface`: no interface carries the advertised address.
    #[error(
        "no interface of this node carries {0} (--advertise-address, POD_IP): pass --interface"
    )]
    NoInterface(IpAddr),
    /// A super node's pod name without an ordinal.
    #[error(transparent)]
    LeaseName(#[from] LeaseNameError),
    /// `--ledger-ca`, `--ledger-cert`, `--ledger-key`.
    #[error(transparent)]
    LedgerTls(#[from] LedgerTlsError),
}

/// Why the ledger TLS flags cannot be used; checked at start, so a pod with a missing
/// Secret fails at once instead of retrying forever.
#[derive(Debug, thiserror::Error)]
pub enum LedgerTlsError {
    /// A PEM file cannot be read.
    #[error("{flag} {}: {source}", path.display())]
    Unreadable {
        /// The flag naming it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A file without a PEM block.
    #[error("{flag} {}: not PEM (no -----BEGIN line)", path.display())]
    NotPem {
        /// The flag naming it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// `--ledger-endpoint` and `--ledger-ca` disagree on TLS.
    #[error("--ledger-endpoint {endpoint}: {why}")]
    Scheme {
        /// The endpoint.
        endpoint: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// Everything the agent runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// The HsnNetwork.
    pub network: String,
    /// Edge or super node.
    pub role: Role,
    /// This agent in routes-table terms.
    pub me: Me,
    /// Its name in its namespace: `edge-<node>` or `super-<ordinal>` (its Lease).
    pub name: String,
    /// Edge pool (informational).
    pub pool: Option<String>,
    /// Identity key (unless `identity_file`), epoch snapshot and spool.
    pub state_dir: PathBuf,
    /// A key file kept elsewhere (a super node's identity Secret), read instead of the
    /// state directory's.
    pub identity_file: Option<PathBuf>,
    /// The datapath.
    pub datapath: DatapathSettings,
    /// Where routes tables come from.
    pub routes: RoutesSettings,
    /// Shipping the spool to a ledger, unless off.
    pub ledger: Option<LedgerSettings>,
    /// Super: where the ledger ConfigMap's genesis and peers are copied for the pod's ledger.
    pub ledger_relay_dir: Option<PathBuf>,
    /// Epoch length until the first routes table gives one.
    pub default_epoch_seconds: u32,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub metrics_addr: SocketAddr,
}

/// The programs and where they attach.
#[derive(Clone, Debug)]
pub struct DatapathSettings {
    /// Interfaces to attach to; none loads without attaching.
    pub interfaces: Vec<String>,
    /// The bpffs mount the network's pins live under.
    pub bpffs: PathBuf,
    /// The hook the programs run at.
    pub hook: hsn_ebpf::Hook,
    /// `<ifname>,<mac>` instead of the kernel's route and neighbour tables.
    pub next_hop: Option<String>,
    /// This node's end of its tunnels (`--advertise-address`): the outer source of what it
    /// tunnels, the address its peers know it by. Unset: the kernel's preferred source
    /// toward each peer.
    pub tunnel_address: Option<IpAddr>,
}

/// Routes tables from a ConfigMap (cluster mode, with a Lease) or a file (standalone).
#[derive(Clone, Debug)]
pub enum RoutesSettings {
    /// A file, re-read when it changes and on SIGHUP; no Lease.
    File(PathBuf),
    /// The routes ConfigMap of the agent's namespace, and the agent's Lease there.
    Cluster(ClusterSettings),
}

/// Cluster mode: the namespace the operator made for the network in this cluster.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// The namespace of the routes ConfigMap and the Leases.
    pub namespace: String,
    /// The routes ConfigMap.
    pub configmap: String,
    /// The Lease holder: this agent's pod.
    pub holder: String,
    /// The pod's UID.
    pub pod_uid: String,
    /// Lease duration.
    pub lease_seconds: u32,
    /// Lease renewal interval.
    pub heartbeat: Duration,
    /// The address advertised in the Lease.
    pub advertise_address: Option<IpAddr>,
}

/// Where and how the spool is shipped.
#[derive(Clone, Debug)]
pub struct LedgerSettings {
    /// `--ledger-endpoint`; an edge without it ships to its super node.
    pub endpoint: Option<String>,
    /// TLS (and mTLS) to the ledger; `None`: plain text.
    pub tls: Option<ClientTls>,
    /// Super: edge keys from `--edge-key`.
    pub edge_keys: EdgeKeys,
    /// Longest wait between retries.
    pub backoff_max: Duration,
}

impl Config {
    /// Checks the flags and derives the settings.
    pub fn from_args(args: &Args) -> Result<Self, ConfigError> {
        let (me, name) = identity(args)?;
        let routes = match (&args.routes_file, &args.routes_configmap) {
            (Some(path), _) => RoutesSettings::File(path.clone()),
            (None, Some(configmap)) => RoutesSettings::Cluster(ClusterSettings {
                namespace: args.namespace.clone().ok_or(ConfigError::Missing(
                    "cluster mode needs --namespace or POD_NAMESPACE",
                ))?,
                configmap: configmap.clone(),
                holder: args.pod_name.clone().ok_or(ConfigError::Missing(
                    "cluster mode needs --pod-name or POD_NAME (the Lease holder)",
                ))?,
                pod_uid: args.pod_uid.clone().ok_or(ConfigError::Missing(
                    "cluster mode needs --pod-uid or POD_UID (the Lease holder's UID)",
                ))?,
                lease_seconds: args.lease_seconds,
                heartbeat: Duration::from_secs(args.heartbeat_seconds.max(1)),
                advertise_address: args.advertise_address,
            }),
            (None, None) => {
                return Err(ConfigError::Missing(
                    "one of --routes-configmap and --routes-file is required",
                ));
            }
        };
        Ok(Self {
            network: args.network.clone(),
            role: args.role,
            me,
            name,
            pool: args.pool.clone(),
            state_dir: args
                .state_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("/var/lib/hsn").join(&args.network)),
            identity_file: args.identity_file.clone(),
            datapath: DatapathSettings {
                interfaces: interfaces(args, &routes)?,
                bpffs: args.bpffs.clone(),
                hook: args.datapath.hook(),
                next_hop: args.next_hop.clone(),
                tunnel_address: args.advertise_address,
            },
            routes,
            ledger: ledger(args)?,
            ledger_relay_dir: match (&args.ledger_relay_dir, args.role) {
                (Some(_), Role::Edge) => {
                    return Err(ConfigError::Missing(
                        "--ledger-relay-dir is a super node's (edges run no ledger)",
                    ));
                }
                (dir, _) => dir.clone(),
            },
            default_epoch_seconds: args.epoch_seconds,
            metrics_addr: args.metrics_addr,
        })
    }

    /// The spool directory.
    pub fn spool_dir(&self) -> PathBuf {
        self.state_dir.join("spool")
    }
}

/// `--interface`, or in cluster mode without it the interface carrying the advertised
/// address: a hostNetwork pod's POD_IP is its node's address, so the agent attaches where
/// the node's traffic arrives with nothing configured per node. Standalone without
/// `--interface`: none (programs load without attaching).
fn interfaces(args: &Args, routes: &RoutesSettings) -> Result<Vec<String>, ConfigError> {
    match (&routes, args.advertise_address) {
        (RoutesSettings::Cluster(_), Some(addr)) if args.interfaces.is_empty() => {
            let name = interface_with(addr).ok_or(ConfigError::NoInterface(addr))?;
            Ok(vec![name])
        }
        _ => Ok(args.interfaces.clone()),
    }
}

/// The interface an address is assigned to, if any.
fn interface_with(addr: IpAddr) -> Option<String> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifa| {
        let found = ifa.address.as_ref().and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        });
        (found == Some(addr)).then_some(ifa.interface_name)
    })
}

/// Who the agent is: an edge is named by its node, a super node by its pod's ordinal.
fn identity(args: &Args) -> Result<(Me, String), ConfigError> {
    Ok(match args.role {
        Role::Edge => {
            let node = args
                .node_name
                .clone()
                .ok_or(ConfigError::Missing("edge needs --node-name or NODE_NAME"))?;
            let name = lease_names::edge_lease(&node);
            (Me::Edge { node }, name)
        }
        Role::Super => {
            let pod = args
                .pod_name
                .as_deref()
                .ok_or(ConfigError::Missing("super needs --pod-name or POD_NAME"))?;
            let ordinal = ordinal_of(pod)?;
            let me = Me::Super {
                ordinal,
                cluster: None,
            };
            (me, lease_names::super_lease(ordinal))
        }
    })
}

/// The ledger shipping, unless `--no-ledger`; a super ships only with `--ledger-endpoint`.
fn ledger(args: &Args) -> Result<Option<LedgerSettings>, LedgerTlsError> {
    if args.no_ledger || (args.role == Role::Super && args.ledger_endpoint.is_none()) {
        return Ok(None);
    }
    Ok(Some(LedgerSettings {
        endpoint: args.ledger_endpoint.clone(),
        tls: ledger_tls(args)?,
        edge_keys: args.edge_keys.iter().cloned().collect(),
        backoff_max: Duration::from_secs(args.ledger_backoff_max_seconds.max(1)),
    }))
}

/// The ledger client's TLS settings (`--ledger-ca` and co.), their files checked readable
/// now; `None` ships in plain text. The client re-reads the files on every connection, so a
/// renewed Secret is picked up without a restart.
pub fn ledger_tls(args: &Args) -> Result<Option<ClientTls>, LedgerTlsError> {
    let scheme = |why| LedgerTlsError::Scheme {
        endpoint: args.ledger_endpoint.clone().unwrap_or_default(),
        why,
    };
    let endpoint = args.ledger_endpoint.as_deref().unwrap_or_default();
    let Some(ca) = &args.ledger_ca else {
        if endpoint.starts_with("https://") {
            return Err(scheme("https:// needs --ledger-ca"));
        }
        return Ok(None);
    };
    if endpoint.starts_with("http://") {
        return Err(scheme("--ledger-ca needs an https:// endpoint"));
    }
    check_pem("--ledger-ca", ca)?;
    let identity = match (&args.ledger_cert, &args.ledger_key) {
        (Some(cert), Some(key)) => {
            check_pem("--ledger-cert", cert)?;
            check_pem("--ledger-key", key)?;
            Some((cert.clone(), key.clone()))
        }
        // clap's `requires` (env values count) makes a pair or neither.
        _ => None,
    };
    Ok(Some(ClientTls {
        ca: ca.clone(),
        identity,
        domain: args.ledger_tls_domain.clone(),
    }))
}

fn check_pem(flag: &'static str, path: &Path) -> Result<(), LedgerTlsError> {
    let bytes = std::fs::read(path).map_err(|source| LedgerTlsError::Unreadable {
        flag,
        path: path.to_owned(),
        source,
    })?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(LedgerTlsError::NotPem {
            flag,
            path: path.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
