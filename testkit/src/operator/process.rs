//! `hsn-operator` as a process against a hub: started with the suite's fast timings, read
//! through its admin endpoints, killed or asked to stop.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::DEADLINE;
use crate::wait_for;

/// The operator, running as a process against the hub.
#[derive(Debug)]
pub struct Operator {
    child: tokio::process::Child,
    /// Address of its `/metrics`, `/healthz` and `/readyz`.
    pub metrics: String,
    log: PathBuf,
}

impl Operator {
    /// Starts `hsn-operator` against the hub of the kubeconfig at `hub`, with fast probes
    /// and short grace periods, `extra` arguments and `env` variables.
    pub async fn start(
        hub: &Path,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let mut args = vec![
            "--probe-interval-seconds",
            "1",
            "--cluster-grace-seconds",
            "3",
            "--member-timeout-seconds",
            "3",
            "--resync-seconds",
            "2",
        ];
        args.extend_from_slice(extra);
        let mut vars = vec![(
            "RUST_LOG",
            "info,hsn_operator=debug,kube_client::client::builder=off",
        )];
        vars.extend_from_slice(env);
        Self::spawn(hub, dir, &args, &vars).await
    }

    /// Starts the `hsn-operator` built for this target (release under `cargo bench`) against
    /// the hub of the kubeconfig at `hub` with exactly `args` and `env` besides the
    /// kubeconfig and metrics address, and waits for /healthz.
    pub async fn spawn(
        hub: &Path,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let port = free_port()?;
        // HSN_E2E_LOG_DIR keeps the operator's logs after the test, for debugging.
        let log_dir =
            std::env::var_os("HSN_E2E_LOG_DIR").map_or_else(|| dir.to_path_buf(), PathBuf::from);
        let log = log_dir.join(format!("operator-{port}.log"));
        let out = std::fs::File::create(&log)?;
        let child = tokio::process::Command::new(crate::cargo_bin("hsn-operator")?)
            .arg("--kubeconfig")
            .arg(hub)
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .args(args)
            .envs(env.iter().copied())
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting hsn-operator")?;
        let op = Self {
            child,
            metrics: format!("127.0.0.1:{port}"),
            log,
        };
        wait_for("operator /healthz", DEADLINE, || async {
            op.get("/healthz").await.ok()
        })
        .await?;
        Ok(op)
    }

    /// The operator's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The operator's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// GET `path` on the metrics address.
    pub async fn get(&self, path: &str) -> Result<String> {
        let mut s = tokio::net::TcpStream::connect(&self.metrics).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await?;
        let mut body = String::new();
        s.read_to_string(&mut body).await?;
        Ok(body)
    }

    /// The value of a metric sample whose line starts with `prefix` (labels included).
    pub async fn metric(&self, prefix: &str) -> Result<f64> {
        Ok(sum_samples(&self.get("/metrics").await?, prefix))
    }

    /// The tail of the operator's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// The HTTP status code of GET `path`.
    pub async fn status_code(&self, path: &str) -> Result<u16> {
        let response = self.get(path).await?;
        let code = response
            .split_whitespace()
            .nth(1)
            .context("no status line")?;
        Ok(code.parse()?)
    }

    /// Stops the process (SIGKILL) and waits for it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Asks the process to stop (SIGTERM), as Kubernetes does, and waits until it exits.
    pub async fn terminate(mut self) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().context("the operator has already exited")?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(pid)?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        match tokio::time::timeout(DEADLINE, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!(
                "the operator did not exit within {DEADLINE:?} of SIGTERM\n{}",
                self.log_tail()
            ),
        }
    }
}

/// The sum of the metric samples in `text` whose line starts with `prefix` (labels included).
pub fn sum_samples(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A port no other component of this test process was given.
fn free_port() -> Result<u16> {
    Ok(crate::cluster::ports::free_ports(1)?[0])
}
