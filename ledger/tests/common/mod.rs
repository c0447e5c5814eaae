//! Shared by the integration tests: a network of keys on disk, the real `hsn-ledger`
//! binary as a child process, and `hsnctl` in this process.
#![allow(dead_code)]

pub mod replica;

pub use hsn_testkit::ledger_net::LedgerProcess as Server;

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ed25519_dalek::SigningKey;
use hsn_core::Role;
use hsn_testkit::ledger_fixtures::{LedgerFiles, signing_key};

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

/// Replaces the first byte of every occurrence of `needle` in the file; fails when absent.
pub fn flip_every(path: &std::path::Path, needle: &[u8], to: u8) -> Result<()> {
    let mut bytes = std::fs::read(path)?;
    let positions: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    anyhow::ensure!(
        !positions.is_empty(),
        "{needle:?} not in {}",
        path.display()
    );
    for p in positions {
        bytes[p] = to;
    }
    std::fs::write(path, bytes)?;
    Ok(())
}
