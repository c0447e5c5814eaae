//! What can be checked of the kind e2e workflow without a container engine: the workflow
//! parses, pins its actions and calls make targets, scripts and files that exist; the scripts
//! pass `bash -n` (and shellcheck, when installed); the kind configs are kind Cluster configs
//! with the names the scripts use and the topology the e2e suite needs; the chart accepts the
//! e2e values; the suite's HSN_E2E_* contract parses as documented.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use hsn_testkit::operator::E2eEnv;
use serde_yaml_ng::Value;

const WORKFLOW: &str = ".github/workflows/e2e-kind.yml";
const SCRIPTS: &[&str] = &["hack/kind-up.sh", "hack/kind-register.sh"];
/// Top-level directories whose paths the workflow and scripts may name.
const REPO_DIRS: &[&str] = &[
    "hack/",
    "kind/",
    "charts/",
    "operator/",
    "node-agent/",
    "crds/",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(root().join(path)).with_context(|| format!("reading {path}"))
}

fn yaml(path: &str) -> Result<Value> {
    serde_yaml_ng::from_str(&read(path)?).with_context(|| format!("parsing {path}"))
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)?.as_str()
}

/// Makefile targets and their recipes.
fn make_targets() -> Result<BTreeMap<String, String>> {
    let mut targets = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in read("Makefile")?.lines() {
        if let Some(recipe) = line.strip_prefix('\t') {
            if let Some(t) = &current {
                let r: &mut String = targets.entry(t.clone()).or_default();
                r.push_str(recipe);
                r.push('\n');
            }
            continue;
        }
        current = line
            .split_once(':')
            .filter(|(name, rest)| {
                !name.is_empty()
                    && !rest.starts_with('=')
                    && !name.starts_with('.')
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            })
            .map(|(name, _)| name.to_string());
        if let Some(t) = &current {
            targets.entry(t.clone()).or_default();
        }
    }
    Ok(targets)
}

/// Shell words of `text`, split at whitespace, quotes and shell punctuation.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || "\"'();|&<>`".contains(c))
        .filter(|w| !w.is_empty())
        .collect()
}

/// The targets of every `make` command in `text` (variable assignments and flags skipped).
fn make_calls(text: &str) -> Vec<String> {
    let mut calls = Vec::new();
    for line in text.lines() {
        let w = words(line);
        for (i, _) in w.iter().enumerate().filter(|(_, w)| **w == "make") {
            calls.extend(
                w[i + 1..]
                    .iter()
                    .take_while(|t| !t.starts_with('#'))
                    .filter(|t| !t.contains('=') && !t.starts_with('-') && !t.starts_with('$'))
                    .map(|t| t.to_string()),
            );
        }
    }
    calls
}

/// Repository paths named in `text`, as `dir/...` or `$root/dir/...`, without variables.
fn repo_paths(text: &str) -> BTreeSet<String> {
    words(text)
        .into_iter()
        .map(|w| w.trim_start_matches("$root/").trim_end_matches([',', ':']))
        .filter(|w| REPO_DIRS.iter().any(|d| w.starts_with(d)) && !w.contains(['$', '*']))
        .map(String::from)
        .collect()
}

/// `name=(a b c)` or `name=value` from a script.
fn script_var(script: &str, name: &str) -> Option<Vec<String>> {
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))?;
    let value = line.split('#').next()?.trim();
    let value = value
        .strip_prefix('(')
        .and_then(|v| v.strip_suffix(')'))
        .unwrap_or(value);
    Some(value.split_whitespace().map(String::from).collect())
}

fn env_file(path: &str) -> Result<BTreeMap<String, String>> {
    Ok(read(path)?
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

#[test]
fn the_workflow_parses_pins_its_actions_and_calls_what_exists() -> Result<()> {
    let workflow = yaml(WORKFLOW)?;
    ensure!(workflow.get("on").is_some(), "{WORKFLOW}: no triggers");
    let jobs = workflow
        .get("jobs")
        .and_then(Value::as_mapping)
        .context("no jobs")?;
    let targets = make_targets()?;
    let mut runs = String::new();
    let mut uses = Vec::new();
    for (name, job) in jobs {
        ensure!(job.get("runs-on").is_some(), "job {name:?} has no runs-on");
        let steps = job
            .get("steps")
            .and_then(Value::as_sequence)
            .with_context(|| format!("job {name:?} has no steps"))?;
        for step in steps {
            match (str_at(step, "uses"), str_at(step, "run")) {
                (Some(action), None) => uses.push(action.to_string()),
                (None, Some(run)) => {
                    runs.push_str(run);
                    runs.push('\n');
                }
                _ => bail!("a step needs exactly one of uses and run: {step:?}"),
            }
        }
    }

    // Actions are pinned to an exact release or a commit.
    ensure!(!uses.is_empty());
    for action in &uses {
        let (_, reference) = action.split_once('@').context("unpinned action")?;
        let release = reference
            .strip_prefix('v')
            .map(|v| v.split('.').collect::<Vec<_>>())
            .is_some_and(|p| p.len() == 3 && p.iter().all(|n| n.parse::<u32>().is_ok()));
        let commit = reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit());
        ensure!(
            release || commit,
            "{action}: pin a full version or a commit"
        );
    }

    // Every make target it calls exists, and every file those targets and the steps name.
    let calls = make_calls(&runs);
    for t in ["images", "kind-up", "kind-test"] {
        ensure!(
            calls.iter().any(|c| c == t),
            "the workflow never runs make {t}"
        );
    }
    let mut named = repo_paths(&runs);
    for call in &calls {
        let recipe = targets
            .get(call)
            .with_context(|| format!("{WORKFLOW} runs make {call}: no such target"))?;
        named.extend(repo_paths(recipe));
    }
    // And what the scripts it reaches name, transitively.
    let mut read_scripts = BTreeSet::new();
    while let Some(script) = named
        .iter()
        .find(|p| p.ends_with(".sh") && !read_scripts.contains(*p))
        .cloned()
    {
        named.extend(repo_paths(&read(&script)?));
        read_scripts.insert(script);
    }
    for path in &named {
        ensure!(
            root().join(path).exists(),
            "{path} is named but does not exist"
        );
    }
    for script in SCRIPTS {
        ensure!(
            read_scripts.contains(*script),
            "the workflow never reaches {script}"
        );
    }
    for must in [
        "operator/Dockerfile",
        "node-agent/Dockerfile",
        "charts/hsn",
        "kind/values-e2e.yaml",
        "hack/kind-register.sh",
    ] {
        ensure!(
            named.contains(must),
            "nothing in the workflow's path names {must}"
        );
    }
    Ok(())
}

#[test]
fn the_scripts_are_executable_and_pass_bash_n_and_shellcheck() -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for script in SCRIPTS {
        let mode = std::fs::metadata(root().join(script))?.permissions().mode();
        ensure!(mode & 0o111 != 0, "{script} is not executable");
        let out = Command::new("bash")
            .arg("-n")
            .arg(root().join(script))
            .output()?;
        ensure!(
            out.status.success(),
            "bash -n {script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    match Command::new("shellcheck")
        .current_dir(root())
        .arg("-x")
        .args(SCRIPTS)
        .output()
    {
        Ok(out) => ensure!(
            out.status.success(),
            "shellcheck: {}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("shellcheck is not installed: only bash -n checked the scripts");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// One node of a kind config: its role and labels.
struct KindNode {
    role: String,
    labels: BTreeMap<String, String>,
}

impl KindNode {
    fn label(&self, key: &str) -> &str {
        self.labels.get(key).map_or("", String::as_str)
    }
}

/// A kind Cluster config: checks the fields kind reads, returns its name and nodes.
fn kind_config(path: &str) -> Result<(String, Vec<KindNode>)> {
    let config = yaml(path)?;
    ensure!(str_at(&config, "kind") == Some("Cluster"), "{path}: kind");
    ensure!(
        str_at(&config, "apiVersion") == Some("kind.x-k8s.io/v1alpha4"),
        "{path}: apiVersion"
    );
    let name = str_at(&config, "name").context("no name")?.to_string();
    let mut nodes = Vec::new();
    for node in config
        .get("nodes")
        .and_then(Value::as_sequence)
        .context("no nodes")?
    {
        let role = str_at(node, "role")
            .context("node without role")?
            .to_string();
        ensure!(
            ["control-plane", "worker"].contains(&role.as_str()),
            "{path}: role {role}"
        );
        let mut labels = BTreeMap::new();
        if let Some(map) = node.get("labels") {
            for (k, v) in map.as_mapping().context("labels is not a map")? {
                let (Some(k), Some(v)) = (k.as_str(), v.as_str()) else {
                    bail!("{path}: label {k:?}: {v:?} must be strings (quote \"true\")");
                };
                labels.insert(k.to_string(), v.to_string());
            }
        }
        nodes.push(KindNode { role, labels });
    }
    let control_planes = nodes.iter().filter(|n| n.role == "control-plane").count();
    ensure!(control_planes == 1, "{path}: one control plane");
    Ok((name, nodes))
}

#[test]
fn the_kind_configs_match_the_scripts_and_the_suites_topology() -> Result<()> {
    let script = read("hack/kind-up.sh")?;
    let hub = script_var(&script, "hub").context("hub= in hack/kind-up.sh")?;
    let members = script_var(&script, "members").context("members= in hack/kind-up.sh")?;
    ensure!(
        members.len() == 2,
        "the e2e suite needs two members: {members:?}"
    );
    let mut configs: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("kind"))? {
        let file = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = file
            .strip_suffix(".yaml")
            .filter(|_| file != "values-e2e.yaml")
        {
            configs.insert(stem.to_string());
        }
    }
    let scripted: BTreeSet<String> = hub.iter().chain(&members).cloned().collect();
    ensure!(
        configs == scripted,
        "kind/*.yaml {configs:?}, hack/kind-up.sh {scripted:?}"
    );

    for stem in &configs {
        let path = format!("kind/{stem}.yaml");
        let (name, nodes) = kind_config(&path)?;
        ensure!(
            name == format!("hsn-{stem}"),
            "{path}: name {name}, scripts use hsn-{stem}"
        );
        let regions: BTreeSet<&str> = nodes
            .iter()
            .map(|n| n.label("topology.kubernetes.io/region"))
            .collect();
        ensure!(
            regions.len() == 1 && !regions.contains(""),
            "{path}: one region {regions:?}"
        );
        ensure!(
            nodes
                .iter()
                .all(|n| !n.label("topology.kubernetes.io/zone").is_empty()),
            "{path}: every node has a zone"
        );
        if !members.contains(stem) {
            continue;
        }
        let region = stem.strip_prefix("mec-").unwrap_or(stem);
        ensure!(
            regions.contains(region),
            "{path}: region {region} (hack/kind-up.sh registers it so)"
        );
        let workers: Vec<&KindNode> = nodes.iter().filter(|n| n.role == "worker").collect();
        let edges = |slice: &str| {
            workers
                .iter()
                .filter(|n| n.label("hsn.io/edge") == "true" && n.label("hsn.io/slice") == slice)
                .count()
        };
        ensure!(
            edges("embb") >= 1 && edges("mmtc") >= 1,
            "{path}: both pools have nodes"
        );
        ensure!(
            workers
                .iter()
                .filter(|n| n.labels.contains_key("hsn.io/edge"))
                .all(|n| n.label("hsn.io/agents") == "edge"),
            "{path}: every edge node is set aside (hsn.io/agents=edge, tainted by hack/kind-up.sh)"
        );
        // The network places two super nodes per region, one per node (host network).
        let super_hosts = workers
            .iter()
            .filter(|n| n.label("hsn.io/agents").is_empty())
            .count();
        ensure!(
            super_hosts >= 2,
            "{path}: two workers for super nodes, found {super_hosts}"
        );
        let spare_zones: BTreeSet<&str> = workers
            .iter()
            .filter(|n| n.label("hsn.io/agents") == "edge" && !n.labels.contains_key("hsn.io/edge"))
            .map(|n| n.label("topology.kubernetes.io/zone"))
            .collect();
        ensure!(
            spare_zones.len() >= 2,
            "{path}: spare edge nodes in two zones (step 3)"
        );
    }

    let kind = env_file("kind/versions.env")?;
    let tools = env_file("hack/versions.env")?;
    let image = kind.get("KIND_NODE_IMAGE").context("KIND_NODE_IMAGE")?;
    ensure!(kind.get("KIND_VERSION").is_some_and(|v| v.starts_with('v')));
    ensure!(
        image.contains("@sha256:"),
        "{image}: pin the node image by digest"
    );
    let minor = |v: &str| {
        v.trim_start_matches('v')
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
    };
    let node_version = image
        .split(':')
        .nth(1)
        .unwrap_or_default()
        .split('@')
        .next()
        .unwrap_or_default();
    let kube = tools
        .get("KUBERNETES_VERSION")
        .context("KUBERNETES_VERSION")?;
    ensure!(
        minor(node_version) == minor(kube),
        "kind node {node_version} vs Kubernetes {kube}"
    );
    Ok(())
}

#[test]
fn the_chart_takes_the_e2e_values() -> Result<()> {
    hsn_testkit::require_binaries(&["helm"])?;
    let home = tempfile::tempdir()?;
    let mut cmd = Command::new(hsn_testkit::bin("helm"));
    for var in ["HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"] {
        cmd.env(var, home.path().join(var));
    }
    let out = cmd
        .current_dir(root())
        .args(["template", "hsn", "charts/hsn", "-n", "hsn-system"])
        .args(["-f", "kind/values-e2e.yaml", "--set", "image.tag=0.1.0"])
        .args(["--kube-version", "1.36.2"])
        .output()?;
    let rendered = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "image: \"ghcr.io/hsn-io/hsn-operator:0.1.0\"",
        "imagePullPolicy: Never",
        "--probe-interval-seconds=1",
        "--resync-seconds=2",
    ] {
        ensure!(rendered.contains(want), "rendered chart lacks {want:?}");
    }
    Ok(())
}

#[test]
fn the_e2e_environment_parses_as_documented() -> Result<()> {
    let parse = |vars: &[(&str, &str)]| {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        E2eEnv::parse(|name| vars.get(name).cloned())
    };
    ensure!(parse(&[])? == E2eEnv::default(), "nothing set: all local");
    let kind = parse(&[
        ("HSN_E2E_HUB_KUBECONFIG", "/k/hub.kubeconfig"),
        (
            "HSN_E2E_MEMBERS",
            "mec-eu-west=/k/w.kubeconfig, mec-eu-north=/k/n.kubeconfig",
        ),
        ("HSN_E2E_OPERATOR", "external"),
        ("HSN_E2E_NODE_EXEC", "docker exec"),
    ])?;
    ensure!(
        kind == E2eEnv {
            hub: Some("/k/hub.kubeconfig".into()),
            members: vec![
                ("mec-eu-west".into(), "/k/w.kubeconfig".into()),
                ("mec-eu-north".into(), "/k/n.kubeconfig".into()),
            ],
            external_operator: true,
            node_exec: vec!["docker".into(), "exec".into()],
        },
        "{kind:?}"
    );
    ensure!(
        parse(&[("HSN_E2E_OPERATOR", "")])? == E2eEnv::default(),
        "empty is unset"
    );
    for bad in [
        vec![("HSN_E2E_HUB_KUBECONFIG", "/k/hub")],
        vec![("HSN_E2E_MEMBERS", "a=/k/a")],
        vec![
            ("HSN_E2E_HUB_KUBECONFIG", "/k/hub"),
            ("HSN_E2E_MEMBERS", "a"),
        ],
        vec![("HSN_E2E_OPERATOR", "external")],
        vec![("HSN_E2E_OPERATOR", "helm")],
    ] {
        ensure!(parse(&bad).is_err(), "{bad:?} must be refused");
    }
    Ok(())
}
