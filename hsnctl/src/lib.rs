//! `hsnctl`: one place to look at an HSN network.
//!
//! * [`ledger`]: `hsnctl ledger`: status, blocks, proofs, whole-chain verification and
//!   rewards, over gRPC or from a store file.
//! * [`cluster`]: `hsnctl networks | nodes | routes | keys`: the HSN objects of the hub
//!   cluster and the routes in its members.

pub mod cluster;
pub mod ledger;
mod table;

use std::io::Write;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use hsn_ledger::chain::WalkError;
use hsn_ledger::proof::InclusionError;
use hsn_ledger::store::StoreError;
use hsn_ledger::verify::VerifyError;
use hsn_ledger_api::client::ConnectError;
use hsn_ledger_api::keys::KeyError;
pub use ledger::{LedgerArgs, LedgerCommand, Source};

/// `hsnctl`: one place to look at an HSN network.
#[derive(Debug, Parser)]
#[command(
    name = "hsnctl",
    version,
    about = "One place to look at an HSN network"
)]
pub struct Cli {
    /// What to look at.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The ledger: status, blocks, proofs, verification, rewards.
    Ledger(LedgerArgs),
    /// HsnNetworks in the hub: readiness, agents, clusters, latest epoch.
    Networks(cluster::NetworksArgs),
    /// HsnNodes (agents): role, placement, super node, heartbeat, epoch, key.
    Nodes(cluster::NodesArgs),
    /// The routes table of a network in each member cluster.
    Routes(cluster::RoutesArgs),
    /// The ledger's key registry (JSON for `hsn-ledger serve --keys`) from the keys the
    /// network's agents published in the status of the HsnNodes the network controls.
    Keys(cluster::KeysArgs),
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned tables for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The chain does not verify.
    #[error("verification failed at {0}")]
    Verify(#[from] VerifyError),
    /// The proof does not hold.
    #[error("proof does not verify: {0}")]
    Proof(#[from] InclusionError),
    /// No connection.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A call failed.
    #[error("ledger: {}", .0.message())]
    Rpc(#[from] tonic::Status),
    /// The store file could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The registry file could not be read.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The ledger sent something that does not decode.
    #[error("ledger sent a malformed {0}")]
    Malformed(&'static str),
    /// Bad arguments.
    #[error("--from {from} is after --to {to}")]
    Range {
        /// First epoch.
        from: u64,
        /// Last epoch.
        to: u64,
    },
    /// Output could not be written.
    #[error("output: {0}")]
    Output(#[from] std::io::Error),
    /// A hub or member cluster could not be read.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
}

impl CliError {
    /// 1 when the chain or a proof does not verify, 2 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Verify(_) | Self::Proof(_) => 1,
            _ => 2,
        }
    }
}

impl From<WalkError> for CliError {
    fn from(e: WalkError) -> Self {
        match e {
            WalkError::Verify(v) => Self::Verify(v),
            WalkError::Rpc(s) => Self::Rpc(s),
        }
    }
}

/// Runs a command, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Ledger(args) => ledger::run(&args, out).await,
        Command::Networks(args) => cluster::networks(&args, out).await,
        Command::Nodes(args) => cluster::nodes(&args, out).await,
        Command::Routes(args) => cluster::routes(&args, out).await,
        Command::Keys(args) => cluster::keys(&args, out).await,
    }
}

/// What the `hsnctl` binary does with a parsed command line: runs it on a runtime of its
/// own, the output to `out` and an error as one line `hsnctl: <error>` to `err`; returns
/// the exit code (0, or [`CliError::exit_code`]). Must not be called on a Tokio runtime.
pub fn execute(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "hsnctl: cannot start the runtime: {e}");
            return 2;
        }
    };
    match runtime.block_on(run(cli, out)) {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "hsnctl: {e}");
            e.exit_code()
        }
    }
}

fn emit<T: Serialize + ?Sized>(
    out: &mut dyn Write,
    format: Output,
    value: &T,
    table: impl FnOnce(&T) -> String,
) -> Result<(), CliError> {
    match format {
        Output::Table => write!(out, "{}", table(value))?,
        Output::Json => {
            let json = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
            writeln!(out, "{json}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
