//! bpffs pinning: counters live in `<bpffs>/hsn/<network>/` so an agent restart loses nothing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use aya::maps::MapData;
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

use crate::Error;

/// Where bpffs is conventionally mounted.
pub const DEFAULT_BPFFS: &str = "/sys/fs/bpf";

/// A per-network pin directory, `<bpffs>/hsn/<network>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinDir {
    bpffs: PathBuf,
    dir: PathBuf,
}

impl PinDir {
    /// `/sys/fs/bpf/hsn/<network>`.
    pub fn for_network(network: &str) -> Result<Self, Error> {
        Self::under(DEFAULT_BPFFS, network)
    }

    /// `<bpffs>/hsn/<network>`, where `bpffs` is (or will be) a bpffs mount point.
    pub fn under(bpffs: impl Into<PathBuf>, network: &str) -> Result<Self, Error> {
        validate_network(network)?;
        let bpffs = bpffs.into();
        let dir = bpffs.join("hsn").join(network);
        Ok(Self { bpffs, dir })
    }

    /// The pin directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The bpffs mount point the directory lives under.
    pub fn bpffs(&self) -> &Path {
        &self.bpffs
    }

    /// Mounts bpffs if it is not mounted yet and creates the directory.
    pub fn prepare(&self) -> Result<(), Error> {
        ensure_bpffs(&self.bpffs)?;
        fs::create_dir_all(&self.dir).map_err(|source| Error::CreatePinDir {
            path: self.dir.clone(),
            source,
        })
    }

    /// Unpins every map of this network (its counters are gone for good). Absent is fine.
    pub fn remove(&self) -> Result<(), Error> {
        match fs::remove_dir_all(&self.dir) {
            Err(source) if source.kind() != io::ErrorKind::NotFound => Err(Error::RemovePinDir {
                path: self.dir.clone(),
                source,
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn map_path(&self, map: &str) -> PathBuf {
        self.dir.join(map)
    }
}

/// Mounts bpffs at `path` (creating the directory) unless a bpffs is already mounted there.
pub fn ensure_bpffs(path: &Path) -> Result<(), Error> {
    match statfs(path) {
        Ok(fs) if fs.filesystem_type() == BPF_FS_MAGIC => return Ok(()),
        Ok(_) | Err(Errno::ENOENT) => {}
        Err(source) => {
            return Err(Error::Statfs {
                path: path.to_owned(),
                source,
            });
        }
    }
    fs::create_dir_all(path).map_err(|source| Error::CreatePinDir {
        path: path.to_owned(),
        source,
    })?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("bpf"), path, Some("bpf"), flags, Some("mode=0700")).map_err(|source| {
        Error::MountBpffs {
            path: path.to_owned(),
            source,
        }
    })
}

/// A Kubernetes object name (DNS-1123 subdomain) is safe as one path component.
fn validate_network(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > 253 {
        Some("longer than 253 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        Some("only lowercase letters, digits, '-' and '.' are allowed")
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        Some("must start and end with a letter or digit")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidNetworkName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The shape a pinned map must have to be reused by this build of the programs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PinnedMap {
    pub name: &'static str,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

/// Refuses pins left by an incompatible build: aya would reuse them without checking, and
/// the program would then read counters with the wrong layout.
pub(crate) fn check_pinned(dir: &PinDir, maps: &[PinnedMap]) -> Result<(), Error> {
    for spec in maps {
        let path = dir.map_path(spec.name);
        if !path.exists() {
            continue;
        }
        let info = MapData::from_pin(&path)
            .and_then(|map| map.info())
            .map_err(|source| Error::OpenPinnedMap {
                path: path.clone(),
                source,
            })?;
        let checks = [
            ("key size", info.key_size(), spec.key_size),
            ("value size", info.value_size(), spec.value_size),
            ("max entries", info.max_entries(), spec.max_entries),
        ];
        for (field, pinned, expected) in checks {
            if pinned != expected {
                return Err(Error::PinnedMapMismatch {
                    path,
                    field,
                    pinned,
                    expected,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_dir_is_per_network_under_hsn() {
        let dir = PinDir::for_network("blue-net").unwrap();
        assert_eq!(dir.path(), Path::new("/sys/fs/bpf/hsn/blue-net"));
        assert_eq!(
            dir.map_path("edge_stats"),
            Path::new("/sys/fs/bpf/hsn/blue-net/edge_stats")
        );
        let dir = PinDir::under("/tmp/x", "n1.example").unwrap();
        assert_eq!(dir.path(), Path::new("/tmp/x/hsn/n1.example"));
    }

    #[test]
    fn network_names_that_could_escape_or_collide_are_refused() {
        for bad in [
            "", "..", ".", "a/b", "../x", "Blue", "-a", "a-", "a b", "a\0b",
        ] {
            let err = PinDir::for_network(bad).unwrap_err();
            assert!(
                matches!(err, Error::InvalidNetworkName { ref name, .. } if name == bad),
                "{bad:?}: {err}"
            );
        }
        assert!(PinDir::for_network(&"a".repeat(254)).is_err());
        assert!(PinDir::for_network(&"a".repeat(253)).is_ok());
    }
}
