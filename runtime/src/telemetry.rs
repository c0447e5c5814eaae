//! Logs through `tracing`, filtered by `RUST_LOG`; with the `otlp` feature, spans exported
//! over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Environment variable that turns OTLP export on (the OpenTelemetry standard name).
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// How a binary logs.
#[derive(Clone, Copy, Debug)]
pub struct Logging {
    /// Service name, for exported spans.
    pub service: &'static str,
    /// JSON lines instead of text.
    pub json: bool,
    /// The filter when `RUST_LOG` is unset, e.g. `info`.
    pub default_filter: &'static str,
}

/// Keeps the span exporter alive; dropping it flushes what is still buffered.
#[derive(Debug)]
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber, on stderr. With OTLP, call it inside the Tokio runtime:
/// the exporter's gRPC channel lives there. A second call (tests running a component
/// in-process) keeps the first subscriber.
pub fn init(logging: Logging) -> Telemetry {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(logging.default_filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (text, json) = if logging.json {
        (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            ),
        )
    } else {
        (
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            ),
            None,
        )
    };
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json);
    #[cfg(feature = "otlp")]
    {
        let provider = otlp::provider(logging.service);
        let layer = provider.as_ref().map(|p| otlp::layer(p, logging.service));
        let _ = registry.with(layer).try_init();
        Telemetry { provider }
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = logging.service;
        let _ = registry.try_init();
        Telemetry {}
    }
}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::OTLP_ENDPOINT_ENV;

    /// A tracer provider exporting in batches to the endpoint in the environment, when set.
    pub(super) fn provider(service: &'static str) -> Option<SdkTracerProvider> {
        std::env::var_os(OTLP_ENDPOINT_ENV)?;
        let exporter = match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(e) => e,
            Err(e) => {
                eprintln!("OTLP trace export disabled: {e}");
                return None;
            }
        };
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name(service).build())
                .build(),
        )
    }

    /// The tracing layer exporting through `provider`.
    pub(super) fn layer<S>(
        provider: &SdkTracerProvider,
        service: &'static str,
    ) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::SdkTracer>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(provider.tracer(service))
    }
}
