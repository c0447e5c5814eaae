//! The on-disk spool of closed epochs, consumed by the ledger client.
//!
//! One file per epoch, `epoch-<20-digit epoch>.json`, holding the epoch's records *and* the
//! counter snapshot taken when it closed. It is written as `<name>.tmp`, fsynced, renamed and
//! the directory fsynced: a crash leaves either the whole epoch (records + snapshot) or none
//! of it, and the next close measures from the newest file's snapshot. So nothing is lost
//! (pinned counters keep counting) and nothing is counted twice.
//!
//! A consumer acknowledges a file by renaming `epoch-<n>.json` to `epoch-<n>.sent`; the agent keeps the
//! newest file (sent or not) for its snapshot and deletes older sent ones.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use hsn_core::{Direction, TenantId};
use serde::{Deserialize, Serialize};

use crate::datapath::{CounterKey, Totals};
use crate::fsutil;
use crate::meter::{self, Snapshot};

/// Version of [`EpochFile`].
pub const SPOOL_FORMAT: u32 = 1;
const PENDING_EXT: &str = "json";
const SENT_EXT: &str = "sent";
const TMP_EXT: &str = "tmp";

/// One metered (tenant, direction[, edge]) in one epoch: what the ledger client signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoolRecord {
    /// The node's record counter, increasing across epochs (ledger `sequence`).
    pub sequence: u64,
    /// Tenant name from the routes table, or the id as text if the table does not name it.
    pub tenant: String,
    /// Tenant id as counted in the datapath.
    pub tenant_id: TenantId,
    /// Traffic direction.
    pub direction: Direction,
    /// Super nodes: the edge the traffic came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<IpAddr>,
    /// IP bytes in the epoch.
    pub bytes: u64,
    /// Packets in the epoch.
    pub packets: u64,
}

/// A monotonic counter value, persisted with the epoch that ended at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotEntry {
    /// Tenant id.
    pub tenant_id: TenantId,
    /// Direction.
    pub direction: Direction,
    /// Super nodes: the edge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<IpAddr>,
    /// Packets since the pinned map was created.
    pub packets: u64,
    /// Bytes since the pinned map was created.
    pub bytes: u64,
}

/// Who wrote a spool file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpoolHeader {
    /// The HsnNetwork.
    pub network: String,
    /// `edge` or `super`.
    pub role: String,
    /// Lease name of the agent (`edge-<node>`, `super-<ordinal>`).
    pub agent: String,
    /// The node's ed25519 public key, hex.
    pub public_key: String,
}

/// One closed epoch: records and the snapshot after it, committed together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochFile {
    /// [`SPOOL_FORMAT`].
    pub format: u32,
    /// Writer.
    #[serde(flatten)]
    pub header: SpoolHeader,
    /// Epoch number: `unix seconds / epoch_seconds` at the epoch's start.
    pub epoch: u64,
    /// Epoch length in seconds.
    pub epoch_seconds: u32,
    /// Non-zero deltas of the epoch.
    pub records: Vec<SpoolRecord>,
    /// Counters when the epoch closed.
    pub snapshot: Vec<SnapshotEntry>,
}

/// Spool failures.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Filesystem error.
    #[error("spool {path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A committed file that does not parse; never overwritten or guessed around.
    #[error("spool file {path} is corrupt: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Closing an epoch not after the last committed one would count twice.
    #[error("epoch {epoch} is not after the last committed epoch {last}")]
    EpochNotAfter {
        /// Epoch being closed.
        epoch: u64,
        /// Last committed.
        last: u64,
    },
}

impl SpoolError {
    /// Every label [`SpoolError::label`] returns.
    pub const LABELS: &[&'static str] = &["spool_io", "spool_corrupt", "epoch_order"];

    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Io { .. } => "spool_io",
            Self::Corrupt { .. } => "spool_corrupt",
            Self::EpochNotAfter { .. } => "epoch_order",
        }
    }
}

/// The newest committed epoch: what the next close is measured from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Last {
    epoch: Option<u64>,
    snapshot: Snapshot,
    next_sequence: u64,
}

/// A computed but not yet committed epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    file: EpochFile,
    snapshot: Snapshot,
}

impl Pending {
    /// The epoch file that [`Spool::commit`] would write.
    pub fn file(&self) -> &EpochFile {
        &self.file
    }
}

/// The spool directory and its newest committed state.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    last: Last,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Spool {
    /// Opens (creating) `dir`, drops temp files of interrupted commits, loads the newest epoch.
    pub fn open(dir: &Path) -> Result<Self, SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut newest: Option<(u64, PathBuf)> = None;
        for (epoch, path, ext) in list(dir)? {
            if ext == TMP_EXT {
                fs::remove_file(&path).map_err(io_err(&path))?;
            } else if newest.as_ref().is_none_or(|(e, _)| epoch > *e) {
                newest = Some((epoch, path));
            }
        }
        let last = match newest {
            None => Last::default(),
            Some((_, path)) => {
                let file = read(&path)?;
                Last {
                    epoch: Some(file.epoch),
                    next_sequence: file
                        .records
                        .iter()
                        .map(|r| r.sequence + 1)
                        .max()
                        .unwrap_or(0),
                    snapshot: file
                        .snapshot
                        .iter()
                        .map(|e| {
                            let key = CounterKey {
                                tenant: e.tenant_id,
                                direction: e.direction,
                                edge: e.edge,
                            };
                            (
                                key,
                                Totals {
                                    packets: e.packets,
                                    bytes: e.bytes,
                                },
                            )
                        })
                        .collect(),
                }
            }
        };
        Ok(Self {
            dir: dir.to_owned(),
            last,
        })
    }

    /// The last committed epoch.
    pub fn last_epoch(&self) -> Option<u64> {
        self.last.epoch
    }

    /// Computes `epoch` from the counters `now`; nothing is written.
    pub fn prepare(
        &self,
        header: &SpoolHeader,
        epoch: u64,
        epoch_seconds: u32,
        now: &[(CounterKey, Totals)],
        names: &BTreeMap<TenantId, String>,
    ) -> Result<Pending, SpoolError> {
        if let Some(last) = self.last.epoch.filter(|&l| epoch <= l) {
            return Err(SpoolError::EpochNotAfter { epoch, last });
        }
        let d = meter::deltas(&self.last.snapshot, now);
        let records = d
            .deltas
            .iter()
            .zip(self.last.next_sequence..)
            .map(|((key, t), sequence)| SpoolRecord {
                sequence,
                tenant: names
                    .get(&key.tenant)
                    .cloned()
                    .unwrap_or_else(|| key.tenant.to_string()),
                tenant_id: key.tenant,
                direction: key.direction,
                edge: key.edge,
                bytes: t.bytes,
                packets: t.packets,
            })
            .collect();
        let snapshot = d
            .after
            .iter()
            .map(|(k, t)| SnapshotEntry {
                tenant_id: k.tenant,
                direction: k.direction,
                edge: k.edge,
                packets: t.packets,
                bytes: t.bytes,
            })
            .collect();
        Ok(Pending {
            file: EpochFile {
                format: SPOOL_FORMAT,
                header: header.clone(),
                epoch,
                epoch_seconds,
                records,
                snapshot,
            },
            snapshot: d.after,
        })
    }

    /// Writes the temp file of `pending` (fsynced) without publishing it.
    pub fn write_temp(&self, pending: &Pending) -> Result<PathBuf, SpoolError> {
        let tmp = self.path(pending.file.epoch, TMP_EXT);
        let bytes =
            serde_json::to_vec_pretty(&pending.file).map_err(|source| SpoolError::Corrupt {
                path: tmp.clone(),
                source,
            })?;
        fsutil::write_synced(&tmp, &bytes).map_err(io_err(&tmp))?;
        Ok(tmp)
    }

    /// Commits `pending`: records and snapshot become durable in one rename.
    pub fn commit(&mut self, pending: Pending) -> Result<(), SpoolError> {
        let tmp = self.write_temp(&pending)?;
        let path = self.path(pending.file.epoch, PENDING_EXT);
        fsutil::publish(&tmp, &path).map_err(io_err(&path))?;
        self.last = Last {
            epoch: Some(pending.file.epoch),
            next_sequence: self.last.next_sequence + pending.file.records.len() as u64,
            snapshot: pending.snapshot,
        };
        self.prune_sent()
    }

    /// Every committed epoch file, oldest first (sent ones included).
    pub fn read_all(&self) -> Result<Vec<EpochFile>, SpoolError> {
        let mut files: Vec<(u64, PathBuf)> = list(&self.dir)?
            .into_iter()
            .filter(|(_, _, ext)| *ext != TMP_EXT)
            .map(|(e, p, _)| (e, p))
            .collect();
        files.sort();
        files.iter().map(|(_, p)| read(p)).collect()
    }

    /// Deletes acknowledged files except the newest epoch (its snapshot is still needed).
    fn prune_sent(&self) -> Result<(), SpoolError> {
        let newest = self.last.epoch;
        for (epoch, path, ext) in list(&self.dir)? {
            if ext == SENT_EXT && Some(epoch) != newest {
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
        }
        Ok(())
    }

    fn path(&self, epoch: u64, ext: &str) -> PathBuf {
        self.dir.join(format!("epoch-{epoch:020}.{ext}"))
    }
}

/// A committed epoch file not yet acknowledged by the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnsentFile {
    /// Its epoch.
    pub epoch: u64,
    /// `epoch-<n>.json`.
    pub path: PathBuf,
}

/// The unacknowledged epoch files in `dir`, oldest first (the ledger client's queue).
pub fn unsent(dir: &Path) -> Result<Vec<UnsentFile>, SpoolError> {
    let mut files: Vec<UnsentFile> = list(dir)?
        .into_iter()
        .filter(|(_, _, ext)| *ext == PENDING_EXT)
        .map(|(epoch, path, _)| UnsentFile { epoch, path })
        .collect();
    files.sort_by_key(|f| f.epoch);
    Ok(files)
}

/// Reads one committed epoch file.
pub fn read_file(path: &Path) -> Result<EpochFile, SpoolError> {
    read(path)
}

/// Acknowledges `file`: renames `epoch-<n>.json` to `epoch-<n>.sent`, durably. The content
/// (the snapshot the next close measures from) stays; only the name changes.
pub fn mark_sent(file: &UnsentFile) -> Result<PathBuf, SpoolError> {
    let sent = file.path.with_extension(SENT_EXT);
    fs::rename(&file.path, &sent).map_err(io_err(&file.path))?;
    let dir = sent.parent().unwrap_or(Path::new("."));
    fsutil::sync_dir(dir).map_err(io_err(dir))?;
    Ok(sent)
}

/// Spool entries: (epoch, path, extension) of files named `epoch-<n>.<ext>`.
fn list(dir: &Path) -> Result<Vec<(u64, PathBuf, &'static str)>, SpoolError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((stem, ext)) = name.strip_prefix("epoch-").and_then(|n| n.split_once('.')) else {
            continue;
        };
        let ext = match ext {
            PENDING_EXT => PENDING_EXT,
            SENT_EXT => SENT_EXT,
            TMP_EXT => TMP_EXT,
            _ => continue,
        };
        if let Ok(epoch) = stem.parse() {
            out.push((epoch, path, ext));
        }
    }
    Ok(out)
}

fn read(path: &Path) -> Result<EpochFile, SpoolError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|source| SpoolError::Corrupt {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
#[path = "spool_tests.rs"]
mod tests;
