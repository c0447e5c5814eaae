//! `hsn-ledger own-state`: hands a super node's chain directory to the user the ledger
//! runs as. The directory is on the node (a hostPath, which Kubernetes' `fsGroup` never
//! reaches), created by the kubelet as root; the operator's super pods run this as an init
//! container with `CAP_CHOWN` alone, so the ledger itself, which serves gRPC and CometBFT's
//! P2P on the node's network, runs as a user without any privilege. Data an older release
//! wrote as root is handed over the same way.

use std::io;
use std::os::unix::fs::{MetadataExt, lchown};
use std::path::Path;

/// Creates `dir` if missing and makes it and everything under it owned by `uid:gid`.
/// Symbolic links are changed themselves, never followed: nothing outside `dir` changes.
/// A directory is handed over after its contents, so one already owned by `uid:gid` holds
/// nothing else (handed over before, or written by that user since) and is not entered:
/// root with `CAP_CHOWN` alone could not read it (CometBFT makes its directories 0700).
/// Returns how many entries had another owner.
pub fn own_tree(dir: &Path, uid: u32, gid: u32) -> io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    own(dir, uid, gid)
}

fn own(path: &Path, uid: u32, gid: u32) -> io::Result<usize> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.uid() == uid && meta.gid() == gid {
        return Ok(0);
    }
    let mut changed = 0;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            changed += own(&entry?.path(), uid, gid)?;
        }
    }
    lchown(path, Some(uid), Some(gid))?;
    Ok(changed + 1)
}

/// Parses `uid:gid`.
pub fn parse_owner(text: &str) -> Result<(u32, u32), String> {
    let (uid, gid) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected <uid>:<gid>"))?;
    let id = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("{text:?}: {s:?} is no numeric id"))
    };
    Ok((id(uid)?, id(gid)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_parse_as_two_numbers() {
        assert_eq!(parse_owner("65532:65532"), Ok((65532, 65532)));
        assert!(parse_owner("65532").unwrap_err().contains("<uid>:<gid>"));
        assert!(parse_owner("nonroot:1").unwrap_err().contains("numeric"));
    }

    #[test]
    fn the_tree_changes_owner_and_nothing_a_link_points_at() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: changing owners needs root (CI runs as root)");
            return;
        }
        let top = tempfile::tempdir().unwrap();
        let outside = top.path().join("outside");
        std::fs::write(&outside, "not the ledger's").unwrap();
        let dir = top.path().join("ledger");
        std::fs::create_dir_all(dir.join("cometbft/data")).unwrap();
        std::fs::write(dir.join("ledger.redb"), "store").unwrap();
        std::fs::write(dir.join("cometbft/data/state.db"), "state").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();

        let changed = own_tree(&dir, 65532, 65533).unwrap();
        assert_eq!(changed, 6, "ledger, cometbft, data, two files, the link");
        for p in [
            dir.clone(),
            dir.join("cometbft/data"),
            dir.join("ledger.redb"),
            dir.join("cometbft/data/state.db"),
        ] {
            let m = std::fs::metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (65532, 65533), "{}", p.display());
        }
        let link = std::fs::symlink_metadata(dir.join("link")).unwrap();
        assert_eq!((link.uid(), link.gid()), (65532, 65533));
        let target = std::fs::metadata(&outside).unwrap();
        assert_eq!(
            (target.uid(), target.gid()),
            (0, 0),
            "a link is not followed"
        );
        assert_eq!(
            own_tree(&dir, 65532, 65533).unwrap(),
            0,
            "nothing left to do"
        );

        // The ledger's own directories are 0700: a second run does not enter them (root
        // with CAP_CHOWN alone could not), and one interrupted part-way goes on.
        std::fs::set_permissions(
            dir.join("cometbft/data"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        lchown(&dir, Some(0), Some(0)).unwrap();
        std::fs::write(dir.join("cometbft/root-written"), "older release").unwrap();
        lchown(dir.join("cometbft"), Some(0), Some(0)).unwrap();
        assert_eq!(
            own_tree(&dir, 65532, 65533).unwrap(),
            3,
            "ledger, cometbft, the file root wrote there; not data (already handed over)"
        );
        let m = std::fs::metadata(dir.join("cometbft/root-written")).unwrap();
        assert_eq!((m.uid(), m.gid()), (65532, 65533));

        let fresh = top.path().join("fresh/ledger");
        assert_eq!(
            own_tree(&fresh, 65532, 65533).unwrap(),
            1,
            "created, then owned"
        );
        let m = std::fs::metadata(&fresh).unwrap();
        assert_eq!((m.uid(), m.gid()), (65532, 65533));
    }
}
