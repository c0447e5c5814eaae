//! One telemetry init: logs through tracing, filtered by RUST_LOG.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber; `json` switches to JSON lines.
pub fn init(json: bool) {
    // kube-client logs every failed request at ERROR; an unreachable member would flood
    // the log once per probe. Its state is reported as conditions and Events instead.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,kube_client::client::builder=off"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(tracing_subscriber::fmt::layer().json())
            .try_init()
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        registry
            .with(tracing_subscriber::fmt::layer().with_ansi(ansi))
            .try_init()
    };
    // A second init (tests running the operator in-process) keeps the first subscriber.
    let _ = result;
}
