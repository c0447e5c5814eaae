//! Command line of the `hsn-ledger` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::{ServerConfig, ServerError, TlsFiles};
use crate::attest::Tolerance;
use crate::ledger::LedgerConfig;
use hsn_ledger_api::keys;

/// `hsn-ledger`: the ledger service of a super node.
#[derive(Debug, Parser)]
#[command(
    name = "hsn-ledger",
    version,
    about = "The ledger service of an HSN super node"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the ledger of one super node over gRPC.
    Serve(Box<ServeArgs>),
    /// Serve one replica of a network's replicated ledger: the ABCI application of the
    /// CometBFT node beside it, and the ledger's gRPC API.
    Replica(Box<super::ReplicaArgs>),
    /// Run a super node's whole part of its network's chain: the replica and its CometBFT
    /// node as a child process, with CometBFT's home written from the network's genesis,
    /// the super node's key and a peers file (what the operator's super-node pods run).
    Node(Box<super::NodeArgs>),
    /// Write CometBFT's priv_validator_key.json from a super node's key file, so the super
    /// node's key is its validator key.
    ValidatorKey {
        /// The super node's key file.
        #[arg(long)]
        key_file: PathBuf,
        /// Where to write the CometBFT key (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
    /// Create a directory if missing and make it and everything in it owned by `--owner`
    /// (what the super pods' init container runs, as root with `CAP_CHOWN` alone, so the
    /// ledger runs as a user without privilege on its directory on the node).
    OwnState {
        /// The directory.
        #[arg(long)]
        dir: PathBuf,
        /// `<uid>:<gid>`.
        #[arg(long, value_parser = super::owner::parse_owner)]
        owner: (u32, u32),
    },
    /// Write a new signing key file and print its public key.
    Keygen {
        /// Where to write the key (refuses to overwrite).
        path: PathBuf,
    },
}

/// `hsn-ledger serve` flags.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// gRPC address; keep it on loopback unless TLS is on.
    #[arg(long, env = "HSN_LEDGER_LISTEN", default_value_t = SocketAddr::from(([127, 0, 0, 1], hsn_core::ports::LEDGER)))]
    pub listen: SocketAddr,
    /// The store file (redb); created when missing.
    #[arg(long, env = "HSN_LEDGER_DB")]
    pub db: PathBuf,
    /// The super node's signing key (hex seed), as written by `hsn-ledger keygen`.
    #[arg(long, env = "HSN_LEDGER_KEY_FILE")]
    pub key_file: PathBuf,
    /// Key registry, JSON `{"nodes":[{"role":"edge|super","key":"<hex>","name":".."}]}`;
    /// re-read on SIGHUP.
    #[arg(long, env = "HSN_LEDGER_KEYS")]
    pub keys: PathBuf,
    /// The HsnNetwork this ledger serves.
    #[arg(long, env = "HSN_NETWORK")]
    pub network: String,
    /// Epoch length in seconds.
    #[arg(long, default_value_t = 60)]
    pub epoch_seconds: u64,
    /// Seconds after an epoch ends before it is sealed: its late window, during which late
    /// records are still accepted; the epoch is final after it.
    #[arg(long, default_value_t = crate::ledger::DEFAULT_LATE_WINDOW_SECONDS)]
    pub grace_seconds: u64,
    /// Attestation tolerance in bytes.
    #[arg(long, default_value_t = 4096)]
    pub tolerance_bytes: u64,
    /// Attestation tolerance in basis points of the observed bytes.
    #[arg(long, default_value_t = 100)]
    pub tolerance_basis_points: u32,
    /// Most entries per block.
    #[arg(long, default_value_t = 10_000)]
    pub max_block_entries: usize,
    /// Most records plus observations per SubmitRecords call.
    #[arg(long, default_value_t = 10_000)]
    pub max_batch_items: usize,
    /// Largest request in bytes; larger ones are refused with OUT_OF_RANGE.
    #[arg(long, default_value_t = 4 << 20)]
    pub max_request_bytes: usize,
    /// How often to look for epochs to seal, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub seal_interval_ms: u64,
    /// Let the SealEpochs RPC seal ended epochs before their grace period is over. Anyone
    /// who can reach the service can then do so; without it SealEpochs seals only what is
    /// due.
    #[arg(long)]
    pub allow_early_seal: bool,
    /// Serve Prometheus metrics on this address at /metrics.
    #[arg(long, env = "HSN_LEDGER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// TLS certificates.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS flags.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// Server certificate chain (PEM); enables TLS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA of client certificates (PEM); makes client certificates mandatory (mTLS).
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The files, when TLS is on.
    pub fn files(&self) -> Option<TlsFiles> {
        let (cert, key) = self.tls_cert.clone().zip(self.tls_key.clone())?;
        Some(TlsFiles {
            cert,
            key,
            client_ca: self.tls_client_ca.clone(),
        })
    }
}

impl ServeArgs {
    /// The server configuration these flags describe.
    pub fn config(&self) -> ServerConfig {
        let tls = self.tls.files();
        ServerConfig {
            listen: self.listen,
            db: self.db.clone(),
            key_file: self.key_file.clone(),
            registry_file: self.keys.clone(),
            ledger: LedgerConfig {
                network: self.network.clone(),
                epoch_seconds: self.epoch_seconds,
                grace_seconds: self.grace_seconds,
                tolerance: Tolerance {
                    bytes: self.tolerance_bytes,
                    basis_points: self.tolerance_basis_points,
                },
                max_block_entries: self.max_block_entries,
                max_batch_items: self.max_batch_items,
            },
            max_request_bytes: self.max_request_bytes,
            tls,
            metrics_listen: self.metrics_listen,
            seal_interval: Duration::from_millis(self.seal_interval_ms.max(10)),
            allow_early_seal: self.allow_early_seal,
        }
    }
}

impl Cli {
    /// Runs the command; `serve` returns after SIGTERM or Ctrl-C.
    pub async fn run(self) -> Result<(), ServerError> {
        match self.command {
            Command::Keygen { path } => {
                let key = keys::generate_signing_key()?;
                keys::write_signing_key(&path, &key)?;
                println!("{}", keys::NodeKey::of(&key));
                Ok(())
            }
            Command::Serve(args) => super::run(args.config(), terminated()).await,
            Command::Replica(args) => super::run_replica(args.config(), terminated()).await,
            Command::Node(args) => super::run_node(*args, terminated()).await,
            Command::OwnState {
                dir,
                owner: (uid, gid),
            } => {
                let changed =
                    super::owner::own_tree(&dir, uid, gid).map_err(|source| ServerError::Io {
                        what: format!("handing {} to {uid}:{gid}", dir.display()),
                        source,
                    })?;
                println!(
                    "{}: owned by {uid}:{gid} ({changed} entries changed)",
                    dir.display()
                );
                Ok(())
            }
            Command::ValidatorKey { key_file, out } => {
                let key = keys::read_signing_key(&key_file)?;
                let json = crate::replica::validator_key_json(&key);
                write_new(&out, json.as_bytes())
            }
        }
    }
}

/// Writes a new file readable by its owner only; refuses to overwrite one.
fn write_new(path: &std::path::Path, bytes: &[u8]) -> Result<(), ServerError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let what = || format!("write {}", path.display());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| super::io(&what(), source))?;
    file.write_all(bytes)
        .map_err(|source| super::io(&what(), source))
}

/// Completes on SIGTERM or Ctrl-C.
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
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
