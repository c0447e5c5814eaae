//! The operator's runtime on a real API server: two replicas elect one leader, and spans
//! are exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

use std::sync::{Arc, Mutex};

use anyhow::{Result, ensure};
use hsn_api::HsnNetwork;
use hsn_testkit::operator::*;
use hsn_testkit::{ControlPlane, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::PostParams;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_leader_and_the_standby_takes_over() -> Result<()> {
    let hub = ControlPlane::start().await?;
    install_crds(&hub.client()).await?;
    let dir = tempfile::tempdir()?;
    let start = |args: &'static [&str]| Operator::start(hub.kubeconfig(), dir.path(), args, &[]);
    let first = start(&["--identity", "replica-a"]).await?;
    let second = start(&["--identity", "replica-b"]).await?;
    let leases: Api<Lease> = Api::namespaced(hub.client(), OPERATOR_NS);

    let holder = wait_for("a leader", DEADLINE, || async {
        let lease = leases.get("hsn-operator").await.ok()?;
        lease.spec?.holder_identity
    })
    .await?;
    let (leader, standby) = if holder == "replica-a" {
        (first, second)
    } else {
        (second, first)
    };
    wait_for("the leader ready", DEADLINE, || async {
        (leader.status_code("/readyz").await.ok()? == 200).then_some(())
    })
    .await?;
    // The leader's /metrics: promtool-clean, and every error series there at zero before
    // the first error.
    let text = wait_for("the controllers' series", DEADLINE, || async {
        let response = leader.get("/metrics").await.ok()?;
        let (_, text) = response.split_once("\r\n\r\n")?;
        text.contains(
            r#"hsn_operator_reconcile_errors_total{controller="meccluster",category="status"} 0"#,
        )
        .then(|| text.to_owned())
    })
    .await?;
    hsn_testkit::promtool::check_metrics(&text).map_err(anyhow::Error::msg)?;
    ensure!(
        text.contains(
            r#"hsn_operator_reconcile_errors_total{controller="hsnnetwork",category="hub-api"} 0"#
        ),
        "{text}"
    );
    ensure!(
        standby.status_code("/readyz").await? == 503,
        "the standby must not be ready"
    );
    ensure!(
        standby.status_code("/healthz").await? == 200,
        "the standby is alive"
    );

    leader.kill().await;
    let new_holder = wait_for("the standby takes the Lease", DEADLINE, || async {
        let lease = leases.get("hsn-operator").await.ok()?;
        let h = lease.spec?.holder_identity?;
        (h != holder).then_some(h)
    })
    .await?;
    wait_for("the new leader ready", DEADLINE, || async {
        (standby.status_code("/readyz").await.ok()? == 200).then_some(())
    })
    .await?;
    ensure!(new_holder != holder);

    // SIGTERM: the leader stops its controllers, releases the Lease and exits, so that a
    // standby could take over at once rather than after the Lease expires.
    let status = standby.terminate().await?;
    ensure!(status.success(), "graceful shutdown exits 0, got {status}");
    let lease = leases.get("hsn-operator").await?;
    let released = lease.spec.and_then(|s| s.holder_identity);
    ensure!(
        released.is_none(),
        "a stopped leader releases its Lease, still held by {released:?}"
    );
    Ok(())
}

/// Collects the names of exported spans.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, String)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                spans.extend(ss.spans.into_iter().map(|s| (service.clone(), s.name)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_spans_are_exported_over_otlp() -> Result<()> {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(incoming);
    let server = tokio::spawn(server);

    let hub = ControlPlane::start().await?;
    install_crds(&hub.client()).await?;
    let dir = tempfile::tempdir()?;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ];
    let _op = Operator::start(hub.kubeconfig(), dir.path(), &[], &env).await?;
    let network: HsnNetwork = serde_json::from_value(json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": "traced", "namespace": "default"},
        "spec": {"superNodes": {"replicas": 1}, "edgePools": [{"name": "a", "sliceType": "eMBB"}]}
    }))?;
    Api::<HsnNetwork>::namespaced(hub.client(), "default")
        .create(&PostParams::default(), &network)
        .await?;

    let spans = collector.spans.clone();
    let (service, _) = wait_for("a reconcile_apply span over OTLP", DEADLINE, || async {
        spans
            .lock()
            .unwrap()
            .iter()
            .find(|(_, name)| name == "reconcile_apply")
            .cloned()
    })
    .await?;
    ensure!(
        service.contains("hsn-operator"),
        "service.name is {service}"
    );
    server.abort();
    Ok(())
}
