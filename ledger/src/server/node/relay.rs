//! The ledger ConfigMap's files in two places: mounted by the kubelet, which refreshes a
//! mounted ConfigMap about once a minute (and mounts an empty directory while the operator
//! has not written it yet), and copied by the pod's super agent as soon as its watch sees
//! the ConfigMap change (`--relayed-config`). A new network's validators learn each other's
//! addresses a minute sooner that way. Each file is read from whichever copy was written
//! last, so a stopped agent leaves the node on the kubelet's copy, never on a stale one of
//! its own.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often a node that has no genesis yet looks again.
pub const GENESIS_POLL: Duration = Duration::from_secs(1);

/// Where one file of the ledger ConfigMap may be: the mounted path, and the agent's copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copies {
    /// The kubelet's mount (`--genesis`, `--peers-file`).
    pub mounted: PathBuf,
    /// The same file name in `--relayed-config`, when given.
    pub relayed: Option<PathBuf>,
}

impl Copies {
    /// `mounted`, and its namesake in `relay_dir`.
    pub fn new(mounted: PathBuf, relay_dir: Option<&Path>) -> Self {
        let relayed = relay_dir.zip(mounted.file_name()).map(|(d, n)| d.join(n));
        Self { mounted, relayed }
    }

    /// The copy written last (the mounted one on a tie); `None` when neither exists.
    pub fn freshest(&self) -> Option<PathBuf> {
        let written = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let mounted = written(&self.mounted).map(|t| (t, &self.mounted));
        let relayed = self
            .relayed
            .as_ref()
            .and_then(|p| written(p).map(|t| (t, p)));
        let newest: Option<(SystemTime, &PathBuf)> = match (mounted, relayed) {
            (Some(m), Some(r)) => Some(if r.0 > m.0 { r } else { m }),
            (m, r) => m.or(r),
        };
        newest.map(|(_, p)| p.clone())
    }

    /// Waits, looking every [`GENESIS_POLL`], until a copy exists; returns the freshest.
    pub async fn wait(&self) -> PathBuf {
        let mut said = false;
        loop {
            if let Some(path) = self.freshest() {
                return path;
            }
            if !said {
                tracing::info!(mounted = %self.mounted.display(),
                    relayed = ?self.relayed.as_ref().map(|p| p.display().to_string()),
                    "waiting for the file (the operator writes the ledger ConfigMap once every super node's key is stored)");
                said = true;
            }
            tokio::time::sleep(GENESIS_POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    fn written_at(path: &Path, secs_ago: u64) {
        std::fs::write(path, path.display().to_string()).unwrap();
        let at = SystemTime::now() - Duration::from_secs(secs_ago);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    #[test]
    fn the_copy_written_last_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let relay = dir.path().join("relay");
        std::fs::create_dir(&relay).unwrap();
        let copies = Copies::new(dir.path().join("peers"), Some(&relay));
        assert_eq!(copies.relayed, Some(relay.join("peers")));
        assert_eq!(copies.freshest(), None);

        written_at(&relay.join("peers"), 30);
        assert_eq!(
            copies.freshest(),
            Some(relay.join("peers")),
            "only the agent's"
        );
        written_at(&dir.path().join("peers"), 60);
        assert_eq!(
            copies.freshest(),
            Some(relay.join("peers")),
            "the agent's is newer"
        );
        written_at(&dir.path().join("peers"), 10);
        assert_eq!(
            copies.freshest(),
            Some(dir.path().join("peers")),
            "the kubelet's is newer (the agent stopped)"
        );

        let alone = Copies::new(dir.path().join("peers"), None);
        assert_eq!(alone.freshest(), Some(dir.path().join("peers")));
    }

    #[tokio::test]
    async fn a_missing_genesis_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let relay = dir.path().join("relay");
        std::fs::create_dir(&relay).unwrap();
        let copies = Copies::new(dir.path().join("genesis.json"), Some(&relay));
        let task = tokio::spawn({
            let copies = copies.clone();
            async move { copies.wait().await }
        });
        tokio::time::sleep(GENESIS_POLL + GENESIS_POLL / 2).await;
        assert!(!task.is_finished());
        std::fs::write(relay.join("genesis.json"), "{}").unwrap();
        let found = tokio::time::timeout(GENESIS_POLL * 3, task).await;
        assert_eq!(found.unwrap().unwrap(), relay.join("genesis.json"));
    }
}
