//! A real ledger server in the test process (feature `ledger`): `hsn_ledger::server::run`,
//! what `hsn-ledger serve` runs, with its files ([`LedgerFiles`]) in a directory; stopped
//! when dropped. The ledger's own end-to-end tests run its binary instead, with the same
//! files.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use hsn_core::Role;
use hsn_ledger::ledger::LedgerConfig;
use hsn_ledger::server::{ServerConfig, ServerError, TlsFiles};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::ledger_fixtures::LedgerFiles;
use crate::wait_for;

/// The network these ledgers serve (and the tests' spools belong to).
pub const NETWORK: &str = "metro";
/// Their epoch length.
pub const EPOCH_SECONDS: u32 = 60;

/// A ledger server running in this process until dropped.
#[derive(Debug)]
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
        let files = LedgerFiles::write(dir, ledger_key, nodes).expect("ledger files");
        let registry_file = files.registry_file.clone();
        let config = ServerConfig {
            listen,
            db: files.db,
            key_file: files.key_file,
            registry_file: files.registry_file,
            ledger: LedgerConfig {
                grace_seconds: 3600,
                epoch_seconds: u64::from(EPOCH_SECONDS),
                ..LedgerConfig::new(NETWORK)
            },
            max_request_bytes: 4 << 20,
            tls,
            metrics_listen: None,
            seal_interval: Duration::from_millis(200),
            // The tests seal when they are ready, long before the hour of grace.
            allow_early_seal: true,
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

    /// Waits (at most 20 s) until `answers` says the ledger answers; panics after that.
    pub async fn wait_ready<F, Fut>(self, mut answers: F) -> Self
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let what = format!("the ledger on {}", self.listen);
        let up = wait_for(&what, Duration::from_secs(20), || {
            let answer = answers();
            async move { answer.await.then_some(()) }
        });
        if let Err(e) = up.await {
            panic!("{e}");
        }
        self
    }
}
