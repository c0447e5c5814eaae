//! One telemetry init: logs through tracing, filtered by RUST_LOG, and spans exported over
//! OTLP (gRPC) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Environment variable that turns OTLP export on (the OpenTelemetry standard name).
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Keeps the span exporter alive; dropping it flushes what is still buffered.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber; `json` switches logs to JSON lines. Call it inside the
/// Tokio runtime: the OTLP exporter's gRPC channel lives there.
pub fn init(json: bool) -> Telemetry {
    // kube-client logs every failed request at ERROR; an unreachable member would flood
    // the log once per probe. Its state is reported as conditions and Events instead.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube_client::client::builder=off"));
    let provider = std::env::var_os(OTLP_ENDPOINT_ENV).and_then(|_| match otlp_provider() {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("OTLP trace export disabled: {e}");
            None
        }
    });
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("hsn-operator")));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (text, json_layer) = if json {
        (None, Some(tracing_subscriber::fmt::layer().json()))
    } else {
        (Some(tracing_subscriber::fmt::layer().with_ansi(ansi)), None)
    };
    // A second init (tests running the operator in-process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json_layer)
        .with(otel)
        .try_init();
    Telemetry { provider }
}

/// A tracer provider exporting to the endpoint in the environment, in batches.
fn otlp_provider() -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name("hsn-operator")
                .build(),
        )
        .build())
}
