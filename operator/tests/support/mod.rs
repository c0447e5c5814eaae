//! The e2e harness: a hub, MEC clusters and the operator, and helpers that wait on conditions
//! with deadlines. By default everything runs here: a hub control plane, kwok member clusters
//! with fake nodes, the operator as a process. The `HSN_E2E_*` variables ([`E2eEnv`]) point
//! the same suite at clusters that already exist instead, e.g. kind with the operator installed
//! by Helm (kind/README.md).

#![allow(dead_code)] // each test binary uses part of the harness

mod env;

pub use env::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hsn_api::{HsnNetwork, MecCluster};
use hsn_testkit::{ControlPlane, FakeNode, KwokCluster, wait_for};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, ResourceExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Deadline of each wait in the e2e tests (2 cores running three control planes).
pub const DEADLINE: Duration = Duration::from_secs(180);
/// Namespace of the operator and of the kubeconfig Secrets.
pub const OPERATOR_NS: &str = "hsn-system";

/// Fake nodes for a member in `region`: zones `<region>-1a/1b`, `per_zone` nodes each; the
/// first `edges` of each zone are edge-capable, alternating broadband and IoT slices.
pub fn nodes(region: &str, per_zone: usize, edges: usize) -> Vec<FakeNode> {
    let mut out = Vec::new();
    for zone in [format!("{region}-1a"), format!("{region}-1b")] {
        for i in 1..=per_zone {
            let mut n = FakeNode::new(&format!("{zone}-node-{i}"), region, &zone);
            if i <= edges {
                let slice = if i % 2 == 1 { "embb" } else { "mmtc" };
                n = n.label("hsn.io/edge", "true").label("hsn.io/slice", slice);
            }
            out.push(n);
        }
    }
    out
}

/// Creates the CRDs in the hub and waits until they are served.
pub async fn install_crds(hub: &Client) -> Result<()> {
    hsn_testkit::install_crds(hub, &hsn_api::crdgen::crds(), DEADLINE).await?;
    let ns: Api<Namespace> = Api::all(hub.clone());
    let meta = ObjectMeta {
        name: Some(OPERATOR_NS.into()),
        ..Default::default()
    };
    ns.create(
        &PostParams::default(),
        &Namespace {
            metadata: meta,
            ..Default::default()
        },
    )
    .await?;
    Ok(())
}

/// Stores `kubeconfig` in a Secret of the operator namespace.
pub async fn kubeconfig_secret(hub: &Client, name: &str, kubeconfig: &[u8]) -> Result<()> {
    let secrets: Api<Secret> = Api::namespaced(hub.clone(), OPERATOR_NS);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "kubeconfig".to_string(),
            ByteString(kubeconfig.to_vec()),
        )])),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret).await?;
    Ok(())
}

/// Registers a member cluster in the hub.
pub async fn mec_cluster(hub: &Client, name: &str, region: &str, secret: &str) -> Result<()> {
    let mec: MecCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "MecCluster",
        "metadata": {"name": name, "labels": {"hsn.io/tier": "mec"}},
        "spec": {"kubeconfigSecretRef": {"name": secret}, "region": region, "zone": format!("{region}-1a")}
    }))?;
    Api::<MecCluster>::all(hub.clone())
        .create(&PostParams::default(), &mec)
        .await?;
    Ok(())
}

/// A member cluster: a kwok cluster with fake nodes, registered in the hub.
pub async fn member(
    hub: &Client,
    name: &str,
    region: &str,
    nodes: &[FakeNode],
) -> Result<KwokCluster> {
    let cluster = KwokCluster::create(name).await?;
    cluster.add_nodes(nodes).await?;
    kubeconfig_secret(hub, name, &std::fs::read(cluster.kubeconfig())?).await?;
    mec_cluster(hub, name, region, name).await?;
    Ok(cluster)
}

/// The operator, running as a process against the hub.
pub struct Operator {
    child: tokio::process::Child,
    pub metrics: String,
    log: PathBuf,
}

impl Operator {
    /// Starts `hsn-operator` with fast probes and short grace periods.
    pub async fn start(hub: &ControlPlane, dir: &Path, extra: &[&str]) -> Result<Self> {
        Self::start_at(hub.kubeconfig(), dir, extra, &[]).await
    }

    /// [`Operator::start`] with extra environment variables.
    pub async fn start_with_env(
        hub: &ControlPlane,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        Self::start_at(hub.kubeconfig(), dir, extra, env).await
    }

    /// [`Operator::start_with_env`] against the hub of the kubeconfig at `hub`.
    pub async fn start_at(
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
        Self::spawn_at(hub, dir, &args, &vars).await
    }

    /// Starts the `hsn-operator` built for this target (release under `cargo bench`) against
    /// `hub` with exactly `args` and `env` besides the kubeconfig and metrics address, and
    /// waits for /healthz.
    pub async fn spawn(
        hub: &ControlPlane,
        dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        Self::spawn_at(hub.kubeconfig(), dir, args, env).await
    }

    /// [`Operator::spawn`] against the hub of the kubeconfig at `hub`.
    pub async fn spawn_at(
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
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_hsn-operator"))
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

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until the network's condition `type_` has `status` (and `reason`, if given).
pub async fn wait_condition(
    api: &Api<HsnNetwork>,
    name: &str,
    type_: &str,
    status: &str,
    reason: Option<&str>,
) -> Result<HsnNetwork> {
    let what = format!("HsnNetwork {name} {type_}={status} {reason:?}");
    Ok(wait_for(&what, DEADLINE, || async {
        let n = api.get(name).await.ok()?;
        let c = n
            .status
            .as_ref()?
            .conditions
            .iter()
            .find(|c| c.type_ == type_)?
            .clone();
        (c.status == status && reason.is_none_or(|r| c.reason == r)).then_some(n)
    })
    .await?)
}

/// Runs `f`; on error, appends the operator's log tail.
pub async fn with_log<T>(op: &OperatorUnderTest, f: impl Future<Output = Result<T>>) -> Result<T> {
    match f.await {
        Ok(v) => Ok(v),
        Err(e) => bail!("{e:#}\n--- operator log tail ---\n{}", op.log_tail().await),
    }
}

/// The name of a MecCluster's condition `type_` status, if set.
pub fn mec_condition(mec: &MecCluster, type_: &str) -> Option<(String, String, String)> {
    let c = mec
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Name of a resource, for messages.
pub fn name_of<K: ResourceExt>(k: &K) -> String {
    k.name_any()
}
