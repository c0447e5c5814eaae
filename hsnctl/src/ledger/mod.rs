//! `hsnctl ledger`: status, blocks, one block, inclusion proofs, whole-chain verification
//! and rewards. Talks gRPC to a ledger; `verify` and `rewards` can instead read a store
//! file directly (`--db`, with the ledger stopped), so an auditor needs no running ledger.
//! Verification always happens here, never by asking the ledger whether it is valid.

mod views;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Serialize;
use tonic::transport::Channel;

pub use views::{BlockView, EntryView, ProofView, ShowView, StatusView};

use crate::{CliError, Output, emit};
use hsn_ledger::chain;
use hsn_ledger::entry::Entry;
use hsn_ledger::merkle::{self, Hash};
use hsn_ledger::proof;
use hsn_ledger::rewards::RewardsBuilder;
use hsn_ledger::store::{Store, StoreError};
use hsn_ledger::verify::{ChainSummary, VerifyOptions};
use hsn_ledger_api::client::{self, ClientTls};
use hsn_ledger_api::keys::{KeyRegistry, NodeKey};
use hsn_ledger_api::pb::{self, ledger_client::LedgerClient};
use hsn_ledger_api::record::RecordKey;

/// `hsnctl ledger` options.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// Ledger gRPC address (`https://` with --ca).
    #[arg(
        long,
        global = true,
        env = "HSN_LEDGER_ADDR",
        default_value_t = format!("http://127.0.0.1:{}", hsn_core::ports::LEDGER)
    )]
    pub addr: String,
    /// CA of the ledger's server certificate (PEM); enables TLS.
    #[arg(long, global = true)]
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS.
    #[arg(long, global = true, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for mTLS.
    #[arg(long, global = true, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Server name to verify, when not the address's host.
    #[arg(long, global = true)]
    pub tls_domain: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// What to do.
    #[command(subcommand)]
    pub command: LedgerCommand,
}

/// Where a chain is read from.
#[derive(Debug, Args)]
pub struct Source {
    /// Read this store file directly instead of asking the ledger (stop the ledger first).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Key registry (JSON); every signer must be registered in its role.
    #[arg(long)]
    pub keys: Option<PathBuf>,
}

/// `hsnctl ledger` subcommands.
#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Head, epochs and counts.
    Status,
    /// Block headers, newest last.
    Blocks {
        /// First height (default: the last --limit blocks).
        #[arg(long)]
        from: Option<u64>,
        /// Most headers to list.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
    /// One block and its entries.
    Show {
        /// Block height.
        height: u64,
    },
    /// Fetches and checks the inclusion proof of one record.
    Proof {
        /// `<epoch>/<node key hex>/<tenant>/<up|down>`, as `show` prints it.
        record: RecordKey,
        /// Key registry (JSON); signers must be registered.
        #[arg(long)]
        keys: Option<PathBuf>,
    },
    /// Verifies the whole chain: hashes, signatures, judgements, Merkle roots.
    Verify {
        /// Where the chain is.
        #[command(flatten)]
        source: Source,
    },
    /// Rewards per node from attested bytes, computed from the verified chain alone.
    Rewards {
        /// First epoch.
        #[arg(long)]
        from: u64,
        /// Last epoch (inclusive).
        #[arg(long)]
        to: u64,
        /// Units to share out.
        #[arg(long, default_value_t = 1_000_000)]
        pool: u64,
        /// Where the chain is.
        #[command(flatten)]
        source: Source,
    },
}

/// Runs `hsnctl ledger`, writing its output to `out`.
pub async fn run(args: &LedgerArgs, out: &mut dyn Write) -> Result<(), CliError> {
    match &args.command {
        LedgerCommand::Status => {
            let s = connect(args)
                .await?
                .status(pb::StatusRequest {})
                .await?
                .into_inner();
            emit(out, args.output, &StatusView::from(s), StatusView::table)
        }
        LedgerCommand::Blocks { from, limit } => {
            let blocks = blocks(&mut connect(args).await?, *from, *limit).await?;
            emit(out, args.output, &blocks, |b| BlockView::table(b))
        }
        LedgerCommand::Show { height } => {
            let view = show(&mut connect(args).await?, *height).await?;
            emit(out, args.output, &view, ShowView::table)
        }
        LedgerCommand::Proof { record, keys } => {
            let registry = keys.as_deref().map(KeyRegistry::load).transpose()?;
            let view = prove(&mut connect(args).await?, record, registry.as_ref()).await?;
            emit(out, args.output, &view, ProofView::table)
        }
        LedgerCommand::Verify { source } => {
            let summary = walk(args, source, |_, _| {}).await;
            if let (Err(CliError::Verify(e)), Output::Json) = (&summary, args.output) {
                let failure = VerifyFailure {
                    ok: false,
                    height: e.height,
                    entry: e.entry,
                    error: e.to_string(),
                };
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&failure).unwrap_or_default()
                )?;
            }
            emit(out, args.output, &summary?, summary_table)
        }
        LedgerCommand::Rewards {
            from,
            to,
            pool,
            source,
        } => {
            if from > to {
                return Err(CliError::Range {
                    from: *from,
                    to: *to,
                });
            }
            // Finality first: an epoch reported final was sealed before the walk began, so
            // its blocks are in the totals (read after the walk, a seal in between would
            // report an epoch final that the totals lack).
            let (names, final_through) = registry_and_finality(args, source).await?;
            let mut builder = RewardsBuilder::new(*from, *to);
            walk(args, source, |_, entries| {
                entries.iter().for_each(|e| builder.add(e))
            })
            .await?;
            let mut rewards = builder.finish(*pool);
            rewards.annotate(|k| names.get(k).cloned(), final_through);
            emit(out, args.output, &rewards, views::rewards_table)
        }
    }
}

#[derive(Serialize)]
struct VerifyFailure {
    ok: bool,
    height: u64,
    entry: Option<usize>,
    error: String,
}

fn summary_table(s: &ChainSummary) -> String {
    let mut out = format!(
        "chain verified: network {}, {} blocks, {} entries, head {}\n",
        s.network.as_deref().unwrap_or("-"),
        s.blocks,
        s.entries,
        s.head_hash.as_deref().unwrap_or("-"),
    );
    if s.awaiting_endorsement > 0 {
        out.push_str(&format!(
            "the newest {} blocks await their validator quorum's endorsement\n",
            s.awaiting_endorsement
        ));
    }
    out
}

async fn connect(args: &LedgerArgs) -> Result<LedgerClient<Channel>, CliError> {
    let tls = args.ca.as_ref().map(|ca| ClientTls {
        ca: ca.clone(),
        identity: args.cert.clone().zip(args.key.clone()),
        domain: args.tls_domain.clone(),
    });
    Ok(client::connect(&args.addr, tls.as_ref()).await?)
}

/// Verifies the chain from the chosen source, handing each block's entries to `visit`.
async fn walk(
    args: &LedgerArgs,
    source: &Source,
    visit: impl FnMut(u64, &[Entry]),
) -> Result<ChainSummary, CliError> {
    let registry = source.keys.as_deref().map(KeyRegistry::load).transpose()?;
    let options = VerifyOptions {
        network: None,
        registry,
    };
    match &source.db {
        Some(path) => unpanicked(path, || {
            let store = Store::open_read_only(path)?;
            Ok(chain::walk_store(&store, options, visit)?)
        }),
        None => Ok(chain::walk_remote(&mut connect(args).await?, options, visit).await?),
    }
}

/// Runs a read of the store file at `path`; redb panics on some damaged pages, which is
/// reported as the file failing verification, not as a crash of hsnctl.
/// A store that redb finds corrupt is one that does not verify (exit 1), like a flipped
/// byte inside a record.
fn unpanicked<T>(
    path: &std::path::Path,
    read: impl FnOnce() -> Result<T, CliError>,
) -> Result<T, CliError> {
    let damaged = |what: &dyn std::fmt::Display| {
        let why = format!("{}: the store file is damaged: {what}", path.display());
        CliError::Verify(hsn_ledger::verify::VerifyError {
            height: 0,
            entry: None,
            kind: hsn_ledger::verify::VerifyErrorKind::Store(why),
        })
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
        Ok(Err(CliError::Store(e))) if is_damage(&e) => Err(damaged(&e)),
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(damaged(&format!("reading it panicked: {what}")))
        }
    }
}

/// Whether a store error says the file is damaged (rather than missing or unreadable).
fn is_damage(e: &StoreError) -> bool {
    match e {
        StoreError::Open { source, .. } => matches!(
            source,
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(_))
        ),
        StoreError::Redb(redb::Error::Corrupted(_)) => true,
        other => other.label() == "corrupt",
    }
}

/// The registry's names (empty when the ledger keeps none) and the last final epoch.
async fn registry_and_finality(
    args: &LedgerArgs,
    source: &Source,
) -> Result<(HashMap<NodeKey, String>, Option<u64>), CliError> {
    let named = |key: NodeKey, name: String| (!name.is_empty()).then_some((key, name));
    match &source.db {
        Some(path) => {
            let store = Store::open_read_only(path)?;
            let read = store.read()?;
            let names = hsn_ledger::replica::stored_registry(&read)?
                .map(|r| {
                    r.nodes
                        .into_iter()
                        .filter_map(|n| named(n.key, n.name))
                        .collect()
                })
                .unwrap_or_default();
            Ok((names, read.sealed_through()?))
        }
        None => {
            let mut ledger = connect(args).await?;
            let status = ledger.status(pb::StatusRequest {}).await?.into_inner();
            let nodes = match ledger.get_registry(pb::GetRegistryRequest {}).await {
                Ok(r) => r.into_inner().nodes,
                // A ledger from before GetRegistry: keys only.
                Err(s) if s.code() == tonic::Code::Unimplemented => Vec::new(),
                Err(s) => return Err(s.into()),
            };
            let names = nodes
                .into_iter()
                .filter_map(|n| named(NodeKey::from_slice(&n.key).ok()?, n.name))
                .collect();
            Ok((names, status.sealed_through))
        }
    }
}

async fn blocks(
    ledger: &mut LedgerClient<Channel>,
    from: Option<u64>,
    limit: u64,
) -> Result<Vec<BlockView>, CliError> {
    let height = client::height(ledger).await?;
    let from = from.unwrap_or(height.saturating_sub(limit));
    let mut views = Vec::new();
    for h in from..height.min(from.saturating_add(limit)) {
        let block = client::block(ledger, h, false).await?;
        let header = block
            .and_then(|b| b.header)
            .ok_or(CliError::Malformed("block"))?;
        views.push(BlockView::from_pb(&header).map_err(|_| CliError::Malformed("header"))?);
    }
    Ok(views)
}

async fn show(ledger: &mut LedgerClient<Channel>, height: u64) -> Result<ShowView, CliError> {
    let block = client::block(ledger, height, true)
        .await?
        .unwrap_or_default();
    let header = block.header.as_ref().ok_or(CliError::Malformed("block"))?;
    let entries = block
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| EntryView::from_pb(i, e));
    Ok(ShowView {
        block: BlockView::from_pb(header).map_err(|_| CliError::Malformed("header"))?,
        entries: entries
            .collect::<Result<_, _>>()
            .map_err(|_| CliError::Malformed("entry"))?,
    })
}

async fn prove(
    client: &mut LedgerClient<Channel>,
    record: &RecordKey,
    registry: Option<&KeyRegistry>,
) -> Result<ProofView, CliError> {
    let request = pb::GetProofRequest {
        key: Some(record.to_pb()),
    };
    let reply = client.get_proof(request).await?.into_inner();
    let (entry, header) = reply
        .entry
        .zip(reply.header)
        .ok_or(CliError::Malformed("proof"))?;
    let siblings: Vec<Hash> = reply
        .siblings
        .iter()
        .map(|s| s.as_slice().try_into())
        .collect::<Result<_, _>>()
        .map_err(|_| CliError::Malformed("proof"))?;
    let count = header.header.as_ref().map_or(0, |h| h.entry_count);
    let path = merkle::Proof {
        index: reply.index,
        count,
        siblings,
    };
    let included = proof::verify_inclusion(&entry, &header, &path, registry)?;
    if included.entry.key() != *record {
        return Err(CliError::Malformed("proof (another record)"));
    }
    Ok(ProofView {
        record: record.to_string(),
        status: included.entry.status(true),
        height: included.header.height,
        block_hash: hex::encode(included.header.hash()),
        merkle_root: hex::encode(included.header.merkle_root),
        index: path.index,
        leaves: path.count,
        proof_bytes: path.siblings.len() * 32 + 8,
        siblings: path.siblings.iter().map(hex::encode).collect(),
    })
}
