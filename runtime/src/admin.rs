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

/// The content type of [`encode`]'s text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

/// The registry as OpenMetrics text.
pub fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, registry)?;
    Ok(body)
}

async fn metrics(State(s): State<Shared>) -> Response {
    match encode(&s.registry) {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
            body,
        )
            .into_response(),
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
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
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
        assert!(body.contains(OPENMETRICS_CONTENT_TYPE), "{body}");
        assert!(body.contains("things_total 3"), "{body}");
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
}
