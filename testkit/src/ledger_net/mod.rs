//! The real `hsn-ledger` binary as child processes (feature `ledger`): one ledger
//! ([`LedgerProcess`]), or a replicated network of them beside CometBFT validators
//! ([`replicated::ReplicatedNet`]). The binary is the one cargo built for the running test or
//! bench ([`crate::cargo_bin`]).

pub mod replicated;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hsn_ledger_api::pb::ledger_client::LedgerClient;
use tonic::transport::Channel;

/// A running `hsn-ledger` process; killed when dropped.
#[derive(Debug)]
pub struct LedgerProcess {
    child: Child,
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its `/metrics` address, when it serves one.
    pub metrics: Option<SocketAddr>,
}

const START_DEADLINE: Duration = Duration::from_secs(30);

impl LedgerProcess {
    /// Spawns the binary and waits (bounded) for the line announcing its address.
    pub fn start(args: &[String], log: &Path) -> Result<Self> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut child = Command::new(crate::cargo_bin("hsn-ledger")?)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .context("spawn hsn-ledger")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = mpsc::channel();
        // Drains stdout for the life of the process so the server never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + START_DEADLINE;
        let mut metrics = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let log = std::fs::read_to_string(log).unwrap_or_default();
                    bail!("hsn-ledger did not announce its address; log:\n{log}");
                }
            };
            if let Some(a) = line.strip_prefix("hsn-ledger metrics on ") {
                metrics = Some(a.parse()?);
            }
            if let Some(a) = line.strip_prefix("hsn-ledger listening on ") {
                return Ok(Self {
                    child,
                    addr: a.parse()?,
                    metrics,
                });
            }
        }
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A gRPC client of it.
    pub async fn client(&self) -> Result<LedgerClient<Channel>> {
        Ok(hsn_ledger_api::client::connect(&self.url(), None).await?)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub fn terminate(&mut self) -> Result<()> {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("hsn-ledger exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("hsn-ledger did not exit within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl LedgerProcess {
    /// Waits (bounded) for the process to exit on its own; its status.
    pub fn wait_exit(&mut self, within: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("hsn-ledger still running after {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LedgerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
