//! Durable file writes: temp file, fsync, rename, fsync of the directory.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::Path;

/// Flushes a directory entry change (create, rename) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `tmp` and fsyncs it; the caller renames it into place.
pub fn write_synced(tmp: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = File::create(tmp)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Renames `tmp` to `path` and makes the rename durable.
pub fn publish(tmp: &Path, path: &Path) -> io::Result<()> {
    fs::rename(tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}
