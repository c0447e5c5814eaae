//! A real ledger server in the test process, for the shipping tests: its key and key
//! registry written into a directory, stopped when dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use hsn_core::Role;
use hsn_ledger::ledger::LedgerConfig;
use hsn_ledger::server::{ServerConfig, ServerError, TlsFiles};
use hsn_ledger_api::keys::{NodeKey, RegisteredKey, RegistryFile};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The network the ledgers and spools of these tests belong to.
pub const NETWORK: &str = "metro";
/// Their epoch length.
pub const EPOCH_SECONDS: u32 = 60;

/// A ledger server running in this process until dropped.
pub struct RunningLedger {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Its key registry (JSON).
    pub registry_file: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl Drop for RunningLedger {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

impl RunningLedger {
    /// Starts a ledger on `listen` signing with `ledger_key` (kept in `dir` across restarts)
    /// and accepting the keys of `nodes`; `tls` serves TLS (mTLS with a client CA). Epochs are
    /// sealed by the test, never by the clock.
    pub fn start(
        dir: &Path,
        listen: SocketAddr,
        ledger_key: &SigningKey,
        nodes: &[(Role, &SigningKey, &str)],
        tls: Option<TlsFiles>,
    ) -> Self {
        let key_file = dir.join("ledger.key");
        if !key_file.exists() {
            hsn_ledger_api::keys::write_signing_key(&key_file, ledger_key).unwrap();
        }
        let registry = RegistryFile {
            nodes: nodes
                .iter()
                .map(|(role, key, name)| RegisteredKey {
                    role: *role,
                    key: NodeKey::of(key),
                    name: (*name).into(),
                })
                .collect(),
        };
        let registry_file = dir.join("keys.json");
        std::fs::write(&registry_file, serde_json::to_vec(&registry).unwrap()).unwrap();
        let config = ServerConfig {
            listen,
            db: dir.join("ledger.redb"),
            key_file,
            registry_file: registry_file.clone(),
            ledger: LedgerConfig {
                grace_seconds: 3600,
                epoch_seconds: u64::from(EPOCH_SECONDS),
                ..LedgerConfig::new(NETWORK)
            },
            max_request_bytes: 4 << 20,
            tls,
            metrics_listen: None,
            seal_interval: Duration::from_millis(200),
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hsn_ledger::server::run(config, async move {
            let _ = stopped.await;
        }));
        Self {
            listen,
            registry_file,
            stop: Some(stop),
            task,
        }
    }

    /// Waits (at most 20 s) until `answers` says the ledger answers.
    pub async fn wait_ready<F, Fut>(self, mut answers: F) -> Self
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        for _ in 0..400 {
            if answers().await {
                return self;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the ledger on {} did not come up", self.listen);
    }
}
