//! Member clients on a real API server, reached through a TCP relay that can hold back the
//! server's answers (a slow link or a busy member): a request's read timeout counts from
//! its own write, not from when its pooled connection went idle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use hsn_api::MecCluster;
use hsn_operator::member::MemberClients;
use hsn_operator::metrics::Metrics;
use hsn_testkit::ControlPlane;
use k8s_openapi::api::core::v1::Namespace;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The member timeout of the clients under test.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How long the pooled connection sits idle before the second request: most of TIMEOUT.
const IDLE: Duration = Duration::from_millis(1500);
/// How long the relay holds back the answer to the second request: well within TIMEOUT
/// from the request's write, past it from when the connection went idle.
const HOLD: Duration = Duration::from_millis(1000);

/// Relays TCP connections to `upstream` (TLS passes through untouched), holding each
/// chunk of the server's bytes back by the current `hold` (milliseconds).
async fn relay(upstream: String, hold: Arc<AtomicU64>) -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            let (mut client_rx, mut client_tx) = client.into_split();
            let (mut server_rx, mut server_tx) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut client_rx, &mut server_tx).await });
            let hold = hold.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = server_rx.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let ms = hold.load(Ordering::SeqCst);
                    if ms > 0 {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    if client_tx.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    Ok(addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_on_a_connection_idle_for_most_of_the_timeout_still_gets_the_whole_timeout()
-> Result<()> {
    let hub = ControlPlane::start().await?;
    let kubeconfig = Kubeconfig::read_from(hub.kubeconfig())?;
    let mut config =
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let upstream = config
        .cluster_url
        .authority()
        .context("no authority in the server URL")?
        .to_string();
    let hold = Arc::new(AtomicU64::new(0));
    let relayed = relay(upstream.clone(), hold.clone()).await?;
    // The API server's certificate names 127.0.0.1, which the relay listens on too.
    config.cluster_url = format!("https://{relayed}").parse()?;

    let metrics = Metrics::register(&mut prometheus_client::registry::Registry::default());
    let clients = MemberClients::new(hub.client(), config, "hsn-system".into(), TIMEOUT, metrics);
    let local: MecCluster = serde_json::from_value(serde_json::json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "MecCluster",
        "metadata": {"name": "hub"},
        "spec": {"local": true, "region": "r", "zone": "z"}
    }))?;
    let member = clients.client(&local).await?;
    let namespaces: Api<Namespace> = Api::all(member);

    namespaces
        .get("default")
        .await
        .context("the first request")?;
    tokio::time::sleep(IDLE).await;
    hold.store(HOLD.as_millis() as u64, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let second = namespaces.get("default").await;
    let took = started.elapsed();
    hold.store(0, Ordering::SeqCst);
    second.with_context(|| {
        format!(
            "a GET answered {HOLD:?} after its write, on a connection idle for {IDLE:?}, failed \
             after {took:?} with a {TIMEOUT:?} timeout"
        )
    })?;
    anyhow::ensure!(took >= HOLD, "the relay held the answer back for {took:?}");
    Ok(())
}
