//! Driving `kwokctl` in a private workdir, and tearing its cluster down again.

use std::ffi::OsStr;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::ports::free_ports;
use super::process::{TAIL_LINES, process_alive, tail, terminate_pid};
use super::watchdog::Watchdog;
use super::{bin, temp_dir};
use crate::Error;
use crate::spawn::spawn_tied;
use crate::wait::POLL_INTERVAL;

/// How long `kwokctl delete cluster` may take before we kill it and the components ourselves.
const DELETE_TIMEOUT: Duration = Duration::from_secs(60);

/// Lines of each component log included in diagnostics (the kwokctl output gets more).
const COMPONENT_TAIL_LINES: usize = 10;

/// Run if the test process dies hard: kwokctl daemonised the components, so PDEATHSIG
/// does not reach them. `$1` workdir, `$2` kwokctl, `$3` cluster name, `$4` temp dir.
const WATCHDOG_SCRIPT: &str = r#"KWOK_WORKDIR="$1" "$2" delete cluster --name "$3" --kubeconfig="$4/contexts.kubeconfig" >/dev/null 2>&1
for f in "$1"/clusters/*/pids/*.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
sleep 1; rm -rf -- "$4""#;

/// Owns a kwok workdir: deletes the cluster, its processes and the directory when dropped.
#[derive(Debug)]
pub(crate) struct KwokHome {
    name: String,
    workdir: PathBuf,
    watchdog: Watchdog,
    dir: Option<TempDir>,
}

impl KwokHome {
    /// A fresh temp dir with a kwokctl config pinning local binaries, 127.0.0.1 and ports;
    /// with `real_nodes` (the address they reach the apiserver at), also ready for them.
    pub(crate) fn new(name: &str, real_nodes: Option<IpAddr>) -> Result<Self, Error> {
        let dir = temp_dir("hsn-kwok-")?;
        let workdir = dir.path().join("kwok");
        let watchdog = Watchdog::spawn(
            WATCHDOG_SCRIPT,
            [
                workdir.as_os_str(),
                bin("kwokctl").as_os_str(),
                OsStr::new(name),
                dir.path().as_os_str(),
            ],
        )?;
        // KWOK_WORKDIR/kwok.yaml is the config kwokctl loads by default.
        let config_path = workdir.join("kwok.yaml");
        let config = kwokctl_config(&workdir, real_nodes)?;
        std::fs::create_dir_all(&workdir)
            .and_then(|()| std::fs::write(&config_path, config))
            .map_err(|source| Error::WriteFile {
                path: config_path,
                source,
            })?;
        Ok(Self {
            name: name.to_string(),
            workdir,
            watchdog,
            dir: Some(dir),
        })
    }

    /// The cluster name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `KWOK_WORKDIR`.
    pub(crate) fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// The temporary directory everything lives in.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), TempDir::path)
    }

    /// `--kubeconfig` for create/delete: the file kwokctl adds/removes a context in. Ours,
    /// so that ~/.kube/config is never touched (and `delete` rejects an empty path).
    pub(crate) fn contexts_flag(&self) -> String {
        format!(
            "--kubeconfig={}",
            self.dir().join("contexts.kubeconfig").display()
        )
    }

    /// kwokctl's directory for this cluster (config, pki, pids, logs, kubeconfig).
    pub(crate) fn cluster_dir(&self) -> PathBuf {
        self.workdir.join("clusters").join(&self.name)
    }

    /// `bin/kwokctl <args> --name <name>` with only our workdir in its `KWOK_*` environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin("kwokctl"));
        // Any KWOK_* in the caller's environment would override our config file.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KWOK_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("KWOK_WORKDIR", &self.workdir)
            .args(args)
            .arg("--name")
            .arg(&self.name);
        cmd
    }

    /// Runs kwokctl `args` within `timeout`, output kept in a log; stops early with the
    /// component's log if a component it started dies meanwhile.
    pub(crate) async fn run(&self, args: &[&str], timeout: Duration) -> Result<(), Error> {
        let cmd = self.command(args);
        // Named after the subcommand (e.g. kwokctl-create-cluster.log), not its flags.
        let words: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| !a.starts_with('-'))
            .collect();
        let log = self.dir().join(format!("kwokctl-{}.log", words.join("-")));
        let cancel = Arc::new(AtomicBool::new(false));
        let mut runner = tokio::task::spawn_blocking({
            let (log, cancel) = (log.clone(), cancel.clone());
            move || run_blocking(cmd, &log, timeout, &cancel)
        });
        // kwokctl waits minutes for a dead apiserver to serve; notice the death instead.
        let result = loop {
            tokio::select! {
                joined = &mut runner => {
                    break joined.unwrap_or_else(|e| Err(format!("kwokctl runner task failed: {e}")));
                }
                () = tokio::time::sleep(POLL_INTERVAL) => {
                    if let Err(died) = self.check_components() {
                        cancel.store(true, Ordering::Relaxed);
                        let _ = runner.await;
                        return Err(died);
                    }
                }
            }
        };
        result.map_err(|status| Error::Kwokctl {
            action: args.join(" "),
            status,
            output: format!("{}\n{}", tail(&log, TAIL_LINES), self.component_logs()),
        })
    }

    /// The pid kwokctl recorded for `component` (e.g. `kube-apiserver`).
    pub(crate) fn pid_file(&self, component: &str) -> PathBuf {
        self.cluster_dir()
            .join("pids")
            .join(format!("{component}.pid"))
    }

    /// Pids of the cluster's components that are still alive.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.recorded_pids()
            .into_iter()
            .map(|(_, pid)| pid)
            .filter(|&pid| process_alive(pid))
            .collect()
    }

    /// Errors with its log tail if a component kwokctl started (and did not stop) has died.
    pub(crate) fn check_components(&self) -> Result<(), Error> {
        match self
            .recorded_pids()
            .into_iter()
            .find(|&(_, pid)| !process_alive(pid))
        {
            None => Ok(()),
            Some((component, pid)) => {
                let log = self
                    .cluster_dir()
                    .join("logs")
                    .join(format!("{component}.log"));
                Err(Error::ExitedEarly {
                    tail: tail(&log, TAIL_LINES),
                    component,
                    // Not our child (kwokctl daemonised it), so its exit status is unknown.
                    status: format!("pid {pid} is gone"),
                    log,
                })
            }
        }
    }

    /// Removes the pid files of components that are gone, so `kwokctl start` restarts them.
    pub(crate) fn forget_dead_components(&self) {
        for (component, pid) in self.recorded_pids() {
            if !process_alive(pid) {
                let _ = std::fs::remove_file(self.pid_file(&component));
            }
        }
    }

    /// (component, pid) from kwokctl's pid files.
    fn recorded_pids(&self) -> Vec<(String, u32)> {
        let Ok(entries) = std::fs::read_dir(self.cluster_dir().join("pids")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| {
                let path = entry.path();
                let component = path.file_stem()?.to_string_lossy().into_owned();
                // A half-written file does not parse; it is picked up on the next round.
                let pid = std::fs::read_to_string(&path).ok()?.trim().parse().ok()?;
                Some((component, pid))
            })
            .collect()
    }

    /// The last lines of every component log, for error messages.
    pub(crate) fn component_logs(&self) -> String {
        let Ok(entries) = std::fs::read_dir(self.cluster_dir().join("logs")) else {
            return "<no component logs>".to_string();
        };
        let mut logs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        logs.sort();
        logs.iter()
            .map(|log| {
                let name = log.file_name().unwrap_or_default().to_string_lossy();
                format!("--- {name} ---\n{}", tail(log, COMPONENT_TAIL_LINES))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for KwokHome {
    fn drop(&mut self) {
        // Read before deleting: kwokctl removes the pid files of what it kills.
        let pids = self.pids();
        let delete = self.command(&["delete", "cluster", &self.contexts_flag()]);
        let log = self.dir().join("kwokctl-delete.log");
        if let Err(status) = run_blocking(delete, &log, DELETE_TIMEOUT, &AtomicBool::new(false)) {
            // Not fatal (we kill the recorded pids next), but worth seeing in test output.
            eprintln!(
                "hsn-testkit: `kwokctl delete cluster --name {}` failed ({status}):\n{}",
                self.name,
                tail(&log, TAIL_LINES)
            );
        }
        for pid in pids {
            terminate_pid(pid);
        }
        if let Some(dir) = self.dir.take() {
            // If removal fails, leave the watchdog armed: its drop retries `rm -rf`.
            if dir.close().is_ok() {
                self.watchdog.disarm();
            }
        }
    }
}

/// Runs `cmd` (tied to us) with output to `log` until it exits, `timeout` passes or `cancel`
/// is set; Err carries why it failed or was killed.
fn run_blocking(
    cmd: Command,
    log: &Path,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<(), String> {
    let mut cmd = cmd;
    let out = File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let mut child = spawn_tied(cmd).map_err(|e| format!("spawning kwokctl: {e}"))?;
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(status.to_string()),
            Ok(None) if Instant::now() >= deadline || cancel.load(Ordering::Relaxed) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("killed after {:?}", timeout.min(started.elapsed())));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for kwokctl: {e}")),
        }
    }
}

/// The `KwokctlConfiguration`: local binaries only (kwokctl must never download), every
/// listener on 127.0.0.1, and ports chosen by us (kwokctl's own picker counts down from
/// 32767 per invocation, so two clusters created side by side would collide).
///
/// Real nodes can join next to kwok's: kwok fakes only the nodes annotated as its own
/// ([`super::KWOK_NODE_ANNOTATION`]), the apiserver reaches kubelets by their InternalIP
/// (`kubectl logs`/`exec`), and its certificate names the `kubernetes` Service's address
/// (pods' in-cluster clients). With `real_nodes`, the certificate also names that address,
/// and a node whose kubelet stops turns NotReady within Kubernetes' default 40 s
/// (kwokctl's default is 200 s, to spare fake nodes' Lease renewals; theirs become 40 s
/// too).
fn kwokctl_config(workdir: &Path, real_nodes: Option<IpAddr>) -> Result<String, Error> {
    let ports = free_ports(6)?;
    let bin = |name: &str| bin(name).display().to_string();
    let sans: Vec<String> = std::iter::once(IpAddr::from(KUBERNETES_SERVICE_IP))
        .chain(real_nodes)
        .map(|ip| format!("\"{ip}\""))
        .collect();
    let liveness = if real_nodes.is_some() {
        // kwokctl multiplies Kubernetes' node heartbeat timings by this factor (default 5).
        "\n  heartbeatFactor: 1"
    } else {
        ""
    };
    Ok(format!(
        r#"apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeApiserverPort: {}
  etcdPort: {}
  etcdPeerPort: {}
  kwokControllerPort: {}
  kubeControllerManagerPort: {}
  kubeSchedulerPort: {}
  kubeApiserverCertSANs: [{}]{}
  etcdBinary: {}
  kubeApiserverBinary: {}
  kubeControllerManagerBinary: {}
  kubeSchedulerBinary: {}
  kwokControllerBinary: {}
  kubectlBinary: {}
  cacheDir: {}
componentsPatches:
- name: etcd
  extraArgs:
  # Throwaway data: fsync latency costs seconds per test and buys nothing.
  - key: unsafe-no-fsync
    value: "true"
- name: kwok-controller
  extraArgs:
  - key: manage-all-nodes
    value: "false"
    override: true
  - key: manage-nodes-with-annotation-selector
    value: {}=fake
- name: kube-apiserver
  extraArgs:
  - key: kubelet-preferred-address-types
    value: InternalIP
"#,
        ports[0],
        ports[1],
        ports[2],
        ports[3],
        ports[4],
        ports[5],
        sans.join(", "),
        liveness,
        bin("etcd"),
        bin("kube-apiserver"),
        bin("kube-controller-manager"),
        bin("kube-scheduler"),
        bin("kwok"),
        bin("kubectl"),
        workdir.join("cache").display(),
        super::KWOK_NODE_ANNOTATION,
    ))
}

/// The `kubernetes` Service's ClusterIP: the first address of kube-apiserver's default
/// `--service-cluster-ip-range` (10.0.0.0/24), which kwokctl does not change.
pub(crate) const KUBERNETES_SERVICE_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 0, 0, 1);
