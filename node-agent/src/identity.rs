//! The node's ed25519 identity: generated once, kept in the state directory (0600), or
//! read from a file the operator provides (a super node's, from its identity Secret).

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

/// File name of the key (32-byte seed, hex) inside the state directory.
pub const KEY_FILE: &str = "identity.key";

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading, writing or creating the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file exists but does not hold a 32-byte hex seed; never overwritten.
    #[error("key file {path} is not a 32-byte hex ed25519 seed; refusing to replace it")]
    Corrupt {
        /// The key file.
        path: PathBuf,
    },
    /// The file is readable by others than its owner (or, for a mounted key, its group).
    #[error("key file {path} has mode {mode:o}; want 600 (or 440 for a mounted key)")]
    Permissions {
        /// The key file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The OS random source failed.
    #[error("no randomness for a new key: {0}")]
    Random(getrandom::Error),
}

impl IdentityError {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Io { .. } => "io",
            Self::Corrupt { .. } => "corrupt",
            Self::Permissions { .. } => "permissions",
            Self::Random(_) => "random",
        }
    }
}

/// The node's signing key.
#[derive(Debug)]
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// Loads the key from `dir`, or generates and stores one (mode 0600) if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Self, IdentityError> {
        let path = dir.join(KEY_FILE);
        let io_err = |source| IdentityError::Io {
            path: path.clone(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(text) => Self::parse(&path, &text, 0o077),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(dir, &path),
            Err(e) => Err(io_err(e)),
        }
    }

    /// Loads a key someone else keeps, e.g. a super node's from the identity Secret the
    /// operator mounts (readable by the pod's group: mode 0440); never creates or changes it.
    /// Refused when others may read it.
    pub fn load_file(path: &Path) -> Result<Self, IdentityError> {
        let text = fs::read_to_string(path).map_err(|source| IdentityError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text, 0o007)
    }

    /// A hex seed from `path`, refused when its mode has any bit of `forbidden`.
    fn parse(path: &Path, text: &str, forbidden: u32) -> Result<Self, IdentityError> {
        let meta = fs::metadata(path).map_err(|source| IdentityError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & forbidden != 0 {
            return Err(IdentityError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| IdentityError::Corrupt {
                path: path.to_owned(),
            })?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    fn create(dir: &Path, path: &Path) -> Result<Self, IdentityError> {
        let io_err = |source| IdentityError::Io {
            path: path.to_owned(),
            source,
        };
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(IdentityError::Random)?;
        fs::create_dir_all(dir).map_err(io_err)?;
        // Written under a temporary name and renamed, so a crash never leaves half a key.
        let tmp = dir.join(format!("{KEY_FILE}.tmp"));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err)?;
        file.write_all(hex::encode(seed).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_err)?;
        fs::rename(&tmp, path).map_err(io_err)?;
        crate::fsutil::sync_dir(dir).map_err(io_err)?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The public key, lowercase hex (the Lease annotation).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.public_key().as_bytes())
    }

    /// The signing key, for the ledger client.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_with_mode_600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("net");
        let first = Identity::load_or_create(&state).unwrap();
        let mode = fs::metadata(state.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = Identity::load_or_create(&state).unwrap();
        assert_eq!(first.public_key_hex(), second.public_key_hex());
        assert_eq!(first.public_key_hex().len(), 64);
        let other = Identity::load_or_create(&dir.path().join("other")).unwrap();
        assert_ne!(first.public_key_hex(), other.public_key_hex());
    }

    #[test]
    fn a_corrupt_or_exposed_key_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::write(&path, "not hex").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, IdentityError::Corrupt { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "not hex");

        fs::write(&path, hex::encode([7u8; 32])).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(err, IdentityError::Permissions { mode: 0o644, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_mounted_key_is_read_as_it_is_and_never_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hsn-super-node-0");
        assert!(matches!(
            Identity::load_file(&path).unwrap_err(),
            IdentityError::Io { .. }
        ));
        assert!(!path.exists(), "not created");
        fs::write(&path, format!("{}\n", hex::encode([7u8; 32]))).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o440)).unwrap();
        let id = Identity::load_file(&path).unwrap();
        let expected = SigningKey::from_bytes(&[7; 32]).verifying_key();
        assert_eq!(id.public_key(), expected);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        assert!(matches!(
            Identity::load_file(&path).unwrap_err(),
            IdentityError::Permissions { mode: 0o444, .. }
        ));
    }
}
