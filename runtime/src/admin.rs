//! The admin server: `/metrics`, `/healthz`, `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

/// The content type of [`encode_openmetrics`]'s text, served to scrapers that ask for it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of [`encode`]'s text: the Prometheus text format, served by default.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether `/readyz` answers 200. A process that is always ready once serving uses
/// [`Readiness::always`]; one that must first win something (a leader Lease) flips it.
#[derive(Clone, Debug)]
pub struct Readiness {
    ready: Arc<AtomicBool>,
    not_ready: &'static str,
}

impl Readiness {
    /// Ready from the start.
    pub fn always() -> Self {
        Self {
            ready: Arc::new(AtomicBool::new(true)),
            not_ready: "",
        }
    }

    /// Not ready until [`Readiness::set`]; `/readyz` answers 503 with `why` meanwhile.
    pub fn pending(why: &'static str) -> Self {
        Self {
            ready: Arc::new(AtomicBool::new(false)),
            not_ready: why,
        }
    }

    /// Turns readiness on or off.
    pub fn set(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Shared {
    registry: Arc<Registry>,
    readiness: Readiness,
}

/// Binds `addr` and returns the bound address (port 0 picks one) and the serving future,
/// which ends when `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    readiness: Readiness,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(Shared {
            registry,
            readiness,
        });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let server = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    };
    Ok((bound, server))
}

/// The registry as OpenMetrics text (a counter family is named without `_total`).
pub fn encode_openmetrics(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, registry)?;
    Ok(body)
}

/// The registry in the Prometheus text format (0.0.4), which `promtool check metrics`,
/// older scrapers and people read: counter families carry their `_total` name in `# HELP`
/// and `# TYPE`, and the OpenMetrics-only `# UNIT` and `# EOF` lines are left out.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    Ok(openmetrics_to_text(&encode_openmetrics(registry)?))
}

/// Rewrites prometheus-client's OpenMetrics output as Prometheus text. Its families come
/// as `# HELP`, `# TYPE`, optional `# UNIT`, then samples.
fn openmetrics_to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "unknown" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

async fn metrics(State(s): State<Shared>, headers: header::HeaderMap) -> Response {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let (body, content_type) = if openmetrics {
        (encode_openmetrics(&s.registry), OPENMETRICS_CONTENT_TYPE)
    } else {
        (encode(&s.registry), TEXT_CONTENT_TYPE)
    };
    match body {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn readyz(State(s): State<Shared>) -> Response {
    if s.readiness.is_ready() {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, s.readiness.not_ready).into_response()
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> String {
        get_with(addr, path, "").await
    }

    async fn get_with(addr: SocketAddr, path: &str, headers: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness_until_shut_down() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("things", "Things done", counter.clone());
        counter.inc_by(3);
        let readiness = Readiness::pending("not leading");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr, server) = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(registry),
            readiness.clone(),
            async move {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
        let task = tokio::spawn(server);

        let body = get(addr, "/metrics").await;
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(body.contains(TEXT_CONTENT_TYPE), "{body}");
        assert!(body.contains("# TYPE things_total counter"), "{body}");
        assert!(body.contains("things_total 3"), "{body}");
        let open = get_with(addr, "/metrics", "Accept: application/openmetrics-text\r\n").await;
        assert!(open.contains(OPENMETRICS_CONTENT_TYPE), "{open}");
        assert!(open.contains("# TYPE things counter"), "{open}");
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert!(get(addr, "/healthz").await.ends_with("ok"));
        let not_ready = get(addr, "/readyz").await;
        assert!(not_ready.starts_with("HTTP/1.1 503"), "{not_ready}");
        assert!(not_ready.ends_with("not leading"), "{not_ready}");
        readiness.set(true);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));

        // Shutdown ends the serving future (a connect test would race other processes on
        // the freed port).
        stop.send(()).unwrap();
        task.await.unwrap().unwrap();
    }

    #[test]
    fn openmetrics_families_become_prometheus_text() {
        let open = "# HELP a_things Things done.\n# TYPE a_things counter\na_things_total{x=\"1\"} 3\n\
                    # HELP a_size_bytes Size.\n# TYPE a_size_bytes gauge\n# UNIT a_size_bytes bytes\na_size_bytes 7\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(open),
            "# HELP a_things_total Things done.\n# TYPE a_things_total counter\na_things_total{x=\"1\"} 3\n\
             # HELP a_size_bytes Size.\n# TYPE a_size_bytes gauge\na_size_bytes 7\n"
        );
    }
}
