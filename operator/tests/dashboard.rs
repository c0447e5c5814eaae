//! The chart's Grafana dashboard (`charts/hsn/dashboards/hsn.json`) queries only metrics the
//! components really export: the operator's, the node agent's and the ledger's as their
//! registries expose them, CometBFT's as a real `cometbft` node serves them.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use hsn_testkit::comet::{App, CometNet};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../charts/hsn/dashboards/hsn.json"
);

/// The sample names a text exposition offers: a counter's with `_total`, a histogram's
/// buckets, sum and count.
fn samples(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        names.insert(name.to_owned());
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" | "summary" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {}
        }
    }
    names
}

/// Every metric name the dashboard's queries use, per panel title.
fn queried(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'));
            for word in words {
                if word.starts_with("hsn_") || word.starts_with("cometbft_") {
                    let title = panel["title"].as_str().unwrap_or_default().to_owned();
                    out.push((title, word.to_owned()));
                }
            }
        }
    }
    out
}

fn registry_text(register: impl FnOnce(&mut Registry)) -> String {
    let mut registry = Registry::default();
    register(&mut registry);
    let mut text = String::new();
    encode(&mut text, &registry).expect("metrics encode");
    text
}

/// `/metrics` of a one-validator CometBFT node with Prometheus on.
async fn cometbft_metrics() -> Result<String> {
    let mut net = CometNet::init(&[App::Kvstore])?;
    let port = hsn_testkit::free_ports(1)?[0];
    let config = net.home(0).join("config/config.toml");
    let text = std::fs::read_to_string(&config)?;
    ensure!(
        text.contains("prometheus = false"),
        "CometBFT's config changed: {config:?}"
    );
    let text = text
        .replace("prometheus = false", "prometheus = true")
        .replace(
            "prometheus_listen_addr = \":26660\"",
            &format!("prometheus_listen_addr = \"127.0.0.1:{port}\""),
        );
    std::fs::write(&config, text)?;
    net.start_all()?;
    net.wait_height(0, 2, Duration::from_secs(60)).await?;
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).context("CometBFT metrics")?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_names_a_metric_a_component_exports() -> Result<()> {
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(DASHBOARD)?)?;
    let panels = dashboard["panels"].as_array().context("panels")?;
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        ensure!(
            panel["targets"].as_array().is_some_and(|t| !t.is_empty()),
            "panel {} has no query",
            panel["title"]
        );
    }
    // A labelled family is exported once it has a sample: give each one, as a running
    // component does when it has something to count.
    let mut exported = BTreeSet::new();
    exported.extend(samples(&registry_text(|r| {
        use hsn_operator::metrics::*;
        let m = Metrics::register(r);
        let controller = ControllerLabels {
            controller: "hsnnetwork",
        };
        let cluster = ClusterLabels {
            cluster: "c".into(),
        };
        m.reconciles.get_or_create(&controller).inc();
        m.duration.get_or_create(&controller).observe(0.1);
        m.hub_writes.get_or_create(&controller).inc();
        m.errors
            .get_or_create(&ErrorLabels {
                controller: "hsnnetwork",
                category: "hub-api",
            })
            .inc();
        m.member_ready.get_or_create(&cluster).set(1);
        m.orphans_removed.get_or_create(&cluster).inc();
        m.member_requests
            .get_or_create(&MemberRequestLabels {
                cluster: "c".into(),
                method: "GET".into(),
            })
            .inc();
        m.member_apply_failures
            .get_or_create(&ApplyFailureLabels {
                cluster: "c".into(),
                category: "write",
            })
            .inc();
        m.network_condition
            .get_or_create(&NetworkConditionLabels {
                namespace: "n".into(),
                network: "n".into(),
                condition: "Ready".into(),
            })
            .set(1);
    })));
    exported.extend(samples(&registry_text(|r| {
        use hsn_agent::metrics::*;
        let m = Metrics::register(r);
        let traffic = TrafficLabels {
            tenant: "t".into(),
            direction: "uplink".into(),
            edge: String::new(),
        };
        m.bytes.get_or_create(&traffic).inc();
        m.packets.get_or_create(&traffic).inc();
        m.attached
            .get_or_create(&AttachLabels {
                interface: "eth0".into(),
                mode: "xdp-native".into(),
            })
            .set(1);
        let reason = ReasonLabels { reason: "io" };
        for family in [
            &m.map_update_errors,
            &m.routes_errors,
            &m.epoch_errors,
            &m.ledger_submit_errors,
        ] {
            family.get_or_create(&reason).inc();
        }
    })));
    exported.extend(samples(&registry_text(|r| {
        hsn_ledger::metrics::Metrics::register(r);
    })));
    let with_cometbft = match hsn_testkit::require_binaries(&["cometbft"]) {
        Ok(()) => {
            exported.extend(samples(&cometbft_metrics().await?));
            true
        }
        Err(skip) => {
            eprintln!("CometBFT's metrics not checked: {skip}");
            false
        }
    };
    let used = queried(&dashboard);
    for prefix in ["hsn_operator_", "hsn_agent_", "hsn_ledger_", "cometbft_"] {
        ensure!(
            used.iter().any(|(_, m)| m.starts_with(prefix)),
            "the dashboard shows nothing of {prefix}*"
        );
    }
    let missing: Vec<&(String, String)> = used
        .iter()
        .filter(|(_, m)| with_cometbft || !m.starts_with("cometbft_"))
        .filter(|(_, m)| !exported.contains(m))
        .collect();
    ensure!(
        missing.is_empty(),
        "queries name metrics nothing exports (panel, metric): {missing:?}"
    );
    Ok(())
}

/// The chart's PodMonitor (`metrics.podMonitor.enabled` in a member) scrapes ports by name:
/// each is a container port of the pods the operator renders, and every metrics port those
/// pods name is scraped.
#[test]
fn the_pod_monitor_scrapes_the_metrics_ports_the_operators_pods_name() -> Result<()> {
    hsn_testkit::require_binaries(&["helm"])?;
    let home = tempfile::tempdir()?;
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/hsn");
    let mut helm = std::process::Command::new(hsn_testkit::bin("helm"));
    for var in ["HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"] {
        helm.env(var, home.path().join(var));
    }
    let out = helm
        .args(["template", "hsn", chart, "--kube-version", "1.36.2"])
        .args(["--set", "mode=member"])
        .args(["--set", "metrics.podMonitor.enabled=true"])
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = String::from_utf8(out.stdout)?;
    let monitor = rendered
        .split("\n---")
        .filter_map(|doc| serde_yaml_ng::from_str::<serde_json::Value>(doc).ok())
        .find(|d| d["kind"] == "PodMonitor")
        .context("a PodMonitor in member mode")?;
    let scraped: BTreeSet<String> = monitor["spec"]["podMetricsEndpoints"]
        .as_array()
        .context("endpoints")?
        .iter()
        .filter_map(|e| e["port"].as_str().map(str::to_owned))
        .collect();
    let network: hsn_api::HsnNetwork = serde_json::from_value(serde_json::json!({
        "apiVersion": "hsn.io/v1alpha1", "kind": "HsnNetwork",
        "metadata": {"name": "metro", "namespace": "default", "uid": "u"},
        "spec": {"superNodes": {"replicas": 1}, "edgePools": [{"name": "bb", "sliceType": "eMBB"}],
                 "metering": {"tenants": [{"name": "acme", "id": 1, "prefixes": ["10.77.0.0/16"]}]}},
    }))?;
    let mut named = BTreeSet::new();
    for object in hsn_testkit::operator::one_of_each(&network) {
        let template = &object.body()["spec"]["template"];
        let selected = monitor["spec"]["selector"]["matchLabels"]
            .as_object()
            .context("selector")?
            .iter()
            .all(|(k, v)| template["metadata"]["labels"][k] == *v);
        for container in template["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for port in container["ports"].as_array().into_iter().flatten() {
                let name = port["name"].as_str().unwrap_or_default();
                if name.contains("metrics") {
                    ensure!(selected, "{name} of {} not selected", object.name);
                    named.insert(name.to_owned());
                }
            }
        }
    }
    ensure!(
        scraped == named,
        "the PodMonitor scrapes {scraped:?}, the pods name {named:?}"
    );
    Ok(())
}
