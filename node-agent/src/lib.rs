//! `hsn-agent`, the per-node daemon: an ed25519 identity, routes (ConfigMap or file) indexed
//! into desired eBPF map state for the one map writer, epoch metering into an on-disk spool,
//! a Lease heartbeat with the annotations the operator reads, `/metrics` and `/healthz`.

pub mod agent;
pub mod chain;
pub mod cli;
pub mod config;
pub mod datapath;
pub mod epoch;
mod fsutil;
pub mod identity;
pub mod index;
pub mod lease;
pub mod ledger_config;
pub mod meter;
pub mod metrics;
pub mod nexthop;
pub mod shipper;
pub mod shutdown;
pub mod source;
pub mod spool;
mod startup;
pub mod status;
pub mod takeover;
pub mod writer;

use crate::cli::{Args, Command};
use crate::config::{Config, ConfigError};
use crate::identity::IdentityError;
use crate::nexthop::NextHopError;
use crate::spool::SpoolError;

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The flags do not make an agent.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The identity key.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// `--next-hop`.
    #[error(transparent)]
    NextHop(#[from] NextHopError),
    /// Loading or attaching the program.
    #[error("datapath: {0}")]
    Datapath(#[from] hsn_ebpf::Error),
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
        return Ok(shutdown::remove_programs(&args.bpffs, &args.network)?);
    }
    startup::run(Config::from_args(&args)?, shutdown).await
}
