//! bpffs pinning: counters, the state maps the programs read and the XDP or tcx links live in
//! `<bpffs>/hsn/<network>/`, so an agent restart neither loses a count nor leaves a packet
//! unprocessed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use aya::maps::MapData;
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::statfs::{BPF_FS_MAGIC, statfs};

use crate::{AttachMode, Error};

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

    /// Unpins every map and link of this network: programs no process holds are detached
    /// and their counters are gone for good. Absent is fine.
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

    /// `link_<program>_<ifname>_<mode>`: the XDP or tcx link of `program` on `ifname`, with
    /// the mode it was attached in (a link's info does not say; `tcx` for TC). bpffs refuses names with a dot, so
    /// bytes other than letters, digits, `-` and `_` are written `%XX` (`eth0.100` is
    /// `eth0%2E100`). Interface names are per network namespace, but so is nothing else
    /// here: one pin directory serves one agent, and two agents of one network sharing a
    /// bpffs would already share their counters.
    pub(crate) fn link_path(&self, program: &str, ifname: &str, mode: AttachMode) -> PathBuf {
        let mut name = format!("link_{program}_");
        for b in ifname.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                name.push(char::from(b));
            } else {
                name.push_str(&format!("%{b:02X}"));
            }
        }
        self.dir.join(format!("{name}_{mode}"))
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

/// What a load does with a pin whose layout this build cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnMismatch {
    /// Counters: refuse to load; replacing them would lose counts not yet in a spool.
    Refuse,
    /// State the agent republishes (tenants, next hop, edges): unpin it and start empty.
    Replace,
}

/// A map pinned per network. The shape a pin must have to be reused (key size, value size,
/// max entries) is the map's definition in this build's object, never written here.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PinnedMap {
    /// The map's name in the object.
    pub name: &'static str,
    /// Its file in the pin directory; role-prefixed where edge and super share a map name.
    pub pin: &'static str,
    pub on_mismatch: OnMismatch,
}

/// A state-map pin left by an incompatible build, unpinned so that this load creates a
/// fresh map; the caller should log it (the old program, if still attached, keeps the old
/// map until it is replaced).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplacedPin {
    /// The pin that was removed.
    pub path: PathBuf,
    /// `key size`, `value size` or `max entries`.
    pub field: &'static str,
    /// The pinned map's value.
    pub pinned: u32,
    /// This build's value.
    pub expected: u32,
}

impl std::fmt::Display for ReplacedPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pinned map {} had {} {}, this program needs {}; replaced by an empty map",
            self.path.display(),
            self.field,
            self.pinned,
            self.expected
        )
    }
}

/// Checks pins left by an earlier load before aya reuses them (it would without checking,
/// and the program would then read maps with the wrong layout) against the maps `object`
/// (`program`'s) defines: refuses incompatible counters, unpins incompatible state maps and
/// returns those.
pub(crate) fn check_pinned(
    dir: &PinDir,
    maps: &[PinnedMap],
    object: &aya_obj::Object,
    program: &'static str,
) -> Result<Vec<ReplacedPin>, Error> {
    let mut replaced = Vec::new();
    for spec in maps {
        let def = object.maps.get(spec.name).ok_or(Error::MissingItem {
            program,
            name: spec.name,
        })?;
        let path = dir.map_path(spec.pin);
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
            ("key size", info.key_size(), def.key_size()),
            ("value size", info.value_size(), def.value_size()),
            ("max entries", info.max_entries(), def.max_entries()),
        ];
        let Some((field, pinned, expected)) = checks.into_iter().find(|(_, p, e)| p != e) else {
            continue;
        };
        if spec.on_mismatch == OnMismatch::Refuse {
            return Err(Error::PinnedMapMismatch {
                path,
                field,
                pinned,
                expected,
            });
        }
        fs::remove_file(&path).map_err(|source| Error::RemovePin {
            path: path.clone(),
            source,
        })?;
        replaced.push(ReplacedPin {
            path,
            field,
            pinned,
            expected,
        });
    }
    Ok(replaced)
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
        assert_eq!(
            dir.link_path("hsn_edge", "eth0.100", AttachMode::Generic),
            Path::new("/tmp/x/hsn/n1.example/link_hsn_edge_eth0%2E100_generic")
        );
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
