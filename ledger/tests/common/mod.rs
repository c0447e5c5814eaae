//! Shared by the integration tests: a network of keys on disk, the real `hsn-ledger`
//! binary as a child process, and `hsnctl` in this process.
#![allow(dead_code)]

pub mod replicated;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ed25519_dalek::SigningKey;
use hsn_core::Role;
use hsn_ledger_api::pb::ledger_client::LedgerClient;
use hsn_testkit::ledger_fixtures::{LedgerFiles, signing_key};
use tonic::transport::Channel;

/// Keys of one super node and its edges, written where the server reads them.
pub struct Network {
    pub dir: tempfile::TempDir,
    pub name: String,
    pub sup: SigningKey,
    pub edges: Vec<SigningKey>,
    pub files: LedgerFiles,
}

impl Network {
    /// A network with `edges` edge keys; key seeds are fixed so failures reproduce.
    pub fn new(edges: u64) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let sup = signing_key(10_000);
        let edges: Vec<SigningKey> = (0..edges).map(signing_key).collect();
        let names: Vec<String> = (0..edges.len()).map(|i| format!("edge-{i}")).collect();
        let mut nodes = vec![(Role::Super, &sup, "super-0")];
        nodes.extend(
            edges
                .iter()
                .zip(&names)
                .map(|(e, n)| (Role::Edge, e, n.as_str())),
        );
        let files = LedgerFiles::write(dir.path(), &sup, &nodes)?;
        Ok(Self {
            dir,
            name: "net-a".into(),
            sup,
            edges,
            files,
        })
    }

    /// `hsn-ledger serve` arguments for this network on an ephemeral loopback port.
    pub fn serve_args(&self) -> Vec<String> {
        let any_port = ([127, 0, 0, 1], 0).into();
        self.files.serve_args(&self.name, any_port)
    }

    /// Starts the server with extra flags.
    pub fn start(&self, extra: &[&str]) -> Result<Server> {
        let mut args = self.serve_args();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Server::start(&args, &self.dir.path().join("server.log"))
    }
}

/// A running `hsn-ledger` process; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
}

const START_DEADLINE: Duration = Duration::from_secs(30);

impl Server {
    /// Spawns the binary and waits (bounded) for the line announcing its address.
    pub fn start(args: &[String], log: &Path) -> Result<Self> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_hsn-ledger"))
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

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> Result<LedgerClient<Channel>> {
        Ok(hsn_ledger_api::client::connect(&self.url(), None).await?)
    }

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

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `hsnctl` with `args` as its binary does (`hsnctl::execute`, on a thread of its own
/// since the tests run on a Tokio runtime), capturing its output and exit code.
pub fn hsnctl(args: &[&str]) -> Result<Output> {
    use std::os::unix::process::ExitStatusExt;
    let argv = std::iter::once("hsnctl").chain(args.iter().copied());
    let cli = <::hsnctl::Cli as clap::Parser>::try_parse_from(argv)?;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = std::thread::scope(|s| {
        s.spawn(|| ::hsnctl::execute(cli, &mut stdout, &mut stderr))
            .join()
    })
    .map_err(|_| anyhow::anyhow!("hsnctl {args:?} panicked"))?;
    Ok(Output {
        status: std::process::ExitStatus::from_raw(i32::from(code) << 8),
        stdout,
        stderr,
    })
}

/// Stdout of a successful `hsnctl` run, parsed as JSON.
pub fn hsnctl_json(args: &[&str]) -> Result<serde_json::Value> {
    let out = hsnctl(args)?;
    if !out.status.success() {
        bail!(
            "hsnctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// GET /metrics over plain HTTP/1.0: the body, after `promtool check metrics` passed on it.
pub fn scrape(addr: SocketAddr) -> Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (_, body) = response
        .split_once("\r\n\r\n")
        .context("an HTTP response")?;
    hsn_testkit::promtool::check_metrics(body).map_err(anyhow::Error::msg)?;
    Ok(body.to_owned())
}

/// Current unix time in seconds.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
