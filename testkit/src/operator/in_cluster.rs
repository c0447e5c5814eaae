//! The operator a suite drives: a process started here, or the replicas Helm installed in
//! the hub, read through the API server's pod proxy.

use std::path::Path;

use anyhow::{Context, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams};
use kube::{Client, ResourceExt};

use super::env::{E2eEnv, Hub};
use super::{DEADLINE, OPERATOR_NS, Operator, sum_samples};
use crate::wait_for;

/// The operator the e2e suite drives.
#[derive(Debug)]
pub enum OperatorUnderTest {
    /// `hsn-operator` started here.
    Process(Operator),
    /// The replicas installed in the hub (by the Helm chart).
    InCluster(InCluster),
}

impl OperatorUnderTest {
    /// Starts the operator against the hub, or finds the installed one's leader.
    pub async fn start(env: &E2eEnv, hub: &Hub, dir: &Path) -> Result<Self> {
        if !env.external_operator {
            return Ok(Self::Process(
                Operator::start(hub.kubeconfig(), dir, &[], &[]).await?,
            ));
        }
        let op = InCluster {
            client: hub.client(),
        };
        wait_for(
            "the installed operator's leader /readyz",
            DEADLINE,
            || async { op.get("/readyz").await.ok() },
        )
        .await?;
        Ok(Self::InCluster(op))
    }

    /// GET `path` on the (leading) operator's metrics address.
    pub async fn get(&self, path: &str) -> Result<String> {
        match self {
            Self::Process(op) => op.get(path).await,
            Self::InCluster(op) => op.get(path).await,
        }
    }

    /// The sum of the metric samples whose line starts with `prefix` (labels included).
    pub async fn metric(&self, prefix: &str) -> Result<f64> {
        Ok(sum_samples(&self.get("/metrics").await?, prefix))
    }

    /// A new operator process in place of this one (SIGKILL, then start), or, in the hub,
    /// the leader's pod deleted and another replica leading.
    pub async fn restart(self, hub: &Hub, dir: &Path) -> Result<Self> {
        match self {
            Self::Process(op) => {
                op.kill().await;
                Ok(Self::Process(
                    Operator::start(hub.kubeconfig(), dir, &[], &[]).await?,
                ))
            }
            Self::InCluster(op) => {
                op.restart().await?;
                Ok(Self::InCluster(op))
            }
        }
    }

    /// The tail of the (leading) operator's log, for failure messages.
    pub async fn log_tail(&self) -> String {
        match self {
            Self::Process(op) => op.log_tail(),
            Self::InCluster(op) => op.log_tail().await,
        }
    }
}

/// The operator Helm installed in the hub's [`OPERATOR_NS`]: its replicas elect a leader
/// through the Lease `hsn-operator`; the suite reads the leader's endpoints through the API
/// server's pod proxy.
pub struct InCluster {
    client: Client,
}

impl std::fmt::Debug for InCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InCluster").finish_non_exhaustive()
    }
}

const OPERATOR_LEASE: &str = "hsn-operator";
const OPERATOR_PODS: &str = "app.kubernetes.io/name=hsn-operator";

impl InCluster {
    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), OPERATOR_NS)
    }

    /// The pod holding the leader Lease, or with leader election off, the only pod.
    async fn leader(&self) -> Option<Pod> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), OPERATOR_NS);
        let holder = leases.get_opt(OPERATOR_LEASE).await.ok()?;
        let pod = match holder.and_then(|l| l.spec?.holder_identity) {
            Some(holder) => self.pods().get_opt(&holder).await.ok()??,
            None => {
                let list = self
                    .pods()
                    .list(&ListParams::default().labels(OPERATOR_PODS))
                    .await
                    .ok()?;
                let [only] = <[Pod; 1]>::try_from(list.items).ok()?;
                only
            }
        };
        pod.metadata.deletion_timestamp.is_none().then_some(pod)
    }

    async fn get(&self, path: &str) -> Result<String> {
        let pod = self
            .leader()
            .await
            .context("no operator leader pod in the hub")?;
        let port = pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some("metrics"))
            .map_or(8080, |p| p.container_port);
        let uri = format!(
            "/api/v1/namespaces/{OPERATOR_NS}/pods/{}:{port}/proxy{path}",
            pod.name_any()
        );
        let request = http::Request::get(uri).body(Vec::new())?;
        Ok(self.client.request_text(request).await?)
    }

    async fn restart(&self) -> Result<()> {
        let old = self
            .leader()
            .await
            .context("no operator leader pod in the hub")?
            .name_any();
        self.pods().delete(&old, &DeleteParams::default()).await?;
        wait_for(
            &format!("a new operator leader after deleting pod {old}"),
            DEADLINE,
            || async {
                (self.leader().await?.name_any() != old).then_some(())?;
                self.get("/readyz").await.ok().map(drop)
            },
        )
        .await?;
        Ok(())
    }

    async fn log_tail(&self) -> String {
        let Some(pod) = self.leader().await else {
            return "(no operator leader pod)".into();
        };
        let params = LogParams {
            tail_lines: Some(60),
            ..LogParams::default()
        };
        self.pods()
            .logs(&pod.name_any(), &params)
            .await
            .unwrap_or_else(|e| format!("(logs of {}: {e})", pod.name_any()))
    }
}
