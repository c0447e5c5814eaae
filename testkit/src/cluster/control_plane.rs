//! etcd + kube-apiserver: the fast environment for API-level tests.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kube::Client;
use tempfile::TempDir;

use super::kubeconfig::{self, KubeconfigSpec};
use super::pki::{Pki, PkiFiles};
use super::ports::free_ports;
use super::process::Proc;
use super::watchdog::Watchdog;
use super::{bin, require_binaries, temp_dir};
use crate::Error;
use crate::wait::poll;

/// How long kube-apiserver gets to answer `/readyz` with ok.
const APISERVER_TIMEOUT: Duration = Duration::from_secs(60);

/// Start attempts when a chosen port was taken by someone else before we bound it.
const START_ATTEMPTS: usize = 3;

/// An etcd + kube-apiserver pair on free 127.0.0.1 ports, with an admin kubeconfig.
pub struct ControlPlane {
    client: Client,
    server_url: String,
    kubeconfig: PathBuf,
    // Drop stops these in this order: the apiserver before the etcd it writes to.
    apiserver: Option<Proc>,
    etcd: Option<Proc>,
    watchdog: Watchdog,
    dir: Option<TempDir>,
}

impl fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server_url", &self.server_url)
            .field("kubeconfig", &self.kubeconfig)
            .field("pids", &self.pids())
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver; returns once `/readyz` is ok and namespaces list.
    pub async fn start() -> Result<Self, Error> {
        require_binaries(&["etcd", "kube-apiserver", "kubectl"])?;
        let mut attempt = 1;
        loop {
            match Self::try_start().await {
                Err(e) if attempt < START_ATTEMPTS && lost_port_race(&e) => attempt += 1,
                result => return result,
            }
        }
    }

    async fn try_start() -> Result<Self, Error> {
        let dir = temp_dir("hsn-cp-")?;
        // If we die hard, PDEATHSIG kills etcd and the apiserver; this removes their files.
        let watchdog = Watchdog::spawn(r#"sleep 1; rm -rf -- "$1""#, [dir.path()])?;
        let pki = Pki::generate()?;
        let files = pki.write(dir.path())?;
        let ports = free_ports(3)?;
        let (etcd_port, peer_port, api_port) = (ports[0], ports[1], ports[2]);

        let server_url = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = dir.path().join("kubeconfig");
        kubeconfig::write(
            &kubeconfig,
            &KubeconfigSpec {
                name: "hsn-testkit",
                server: &server_url,
                ca_pem: &pki.ca_cert,
                cert_pem: &pki.admin_cert,
                key_pem: &pki.admin_key,
            },
        )?;
        let client = kubeconfig::client(&kubeconfig).await?;

        let log = |name: &str| dir.path().join(format!("{name}.log"));
        let mut etcd = Proc::spawn(
            "etcd",
            etcd_command(dir.path(), etcd_port, peer_port),
            &log("etcd"),
        )?;
        let mut apiserver = Proc::spawn(
            "kube-apiserver",
            apiserver_command(dir.path(), &files, etcd_port, api_port),
            &log("kube-apiserver"),
        )?;
        wait_ready(&client, &mut apiserver, &mut etcd).await?;

        Ok(Self {
            client,
            server_url,
            kubeconfig,
            apiserver: Some(apiserver),
            etcd: Some(etcd),
            watchdog,
            dir: Some(dir),
        })
    }

    /// A client authenticated as a `system:masters` admin.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// A client acting as `user` in `groups` (the admin impersonating them): every request
    /// is authenticated, authorized (RBAC) and admitted as that user's would be, e.g.
    /// `system:serviceaccount:<ns>:<name>` in `system:serviceaccounts`,
    /// `system:serviceaccounts:<ns>` and `system:authenticated`.
    pub async fn client_as(&self, user: &str, groups: &[&str]) -> Result<Client, Error> {
        let mut config = kubeconfig::config(&self.kubeconfig).await?;
        config.auth_info.impersonate = Some(user.to_owned());
        config.auth_info.impersonate_groups =
            Some(groups.iter().map(|g| (*g).to_owned()).collect());
        Client::try_from(config).map_err(Error::Client)
    }

    /// A client acting as ServiceAccount `name` of namespace `ns` ([`Self::client_as`]).
    pub async fn client_as_service_account(&self, ns: &str, name: &str) -> Result<Client, Error> {
        let user = format!("system:serviceaccount:{ns}:{name}");
        let ns_group = format!("system:serviceaccounts:{ns}");
        let groups = [
            "system:serviceaccounts",
            ns_group.as_str(),
            "system:authenticated",
        ];
        self.client_as(&user, &groups).await
    }

    /// A kubeconfig file with the server URL, CA data and admin client certificate inline.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// `bin/kubectl --kubeconfig <this control plane's kubeconfig>`, ready for more args.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(bin("kubectl"));
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    /// The apiserver's URL, `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The private directory holding certificates, etcd data and component logs.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), TempDir::path)
    }

    /// Process ids of kube-apiserver and etcd, e.g. to assert they are gone after a stop.
    pub fn pids(&self) -> Vec<u32> {
        [&self.apiserver, &self.etcd]
            .into_iter()
            .flatten()
            .map(Proc::pid)
            .collect()
    }

    /// Stops the processes and removes the directory without blocking the async runtime.
    pub async fn stop(self) {
        // Drop waits for the processes to exit; do that on a thread made for blocking.
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        drop(self.apiserver.take());
        drop(self.etcd.take());
        if let Some(dir) = self.dir.take() {
            // If removal fails, leave the watchdog armed: its drop retries `rm -rf`.
            if dir.close().is_ok() {
                self.watchdog.disarm();
            }
        }
    }
}

fn etcd_command(dir: &Path, client_port: u16, peer_port: u16) -> Command {
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let mut cmd = Command::new(bin("etcd"));
    cmd.current_dir(dir).args([
        "--name=default".to_string(),
        format!("--data-dir={}", dir.join("etcd").display()),
        format!("--listen-client-urls={client_url}"),
        format!("--advertise-client-urls={client_url}"),
        // Set explicitly: the default peer port 2380 would clash between control planes.
        format!("--listen-peer-urls={peer_url}"),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=default={peer_url}"),
        // Throwaway data: fsync latency costs seconds per test and buys nothing.
        "--unsafe-no-fsync".to_string(),
        "--log-level=warn".to_string(),
    ]);
    cmd
}

fn apiserver_command(dir: &Path, files: &PkiFiles, etcd_port: u16, port: u16) -> Command {
    let path = |p: &Path| p.display().to_string();
    let mut cmd = Command::new(bin("kube-apiserver"));
    cmd.current_dir(dir).args([
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        "--bind-address=127.0.0.1".to_string(),
        "--advertise-address=127.0.0.1".to_string(),
        format!("--secure-port={port}"),
        // Unused (we pass a serving pair) but keeps the default off /var/run/kubernetes.
        format!("--cert-dir={}", dir.join("apiserver-certs").display()),
        format!("--tls-cert-file={}", path(&files.serving_cert)),
        format!("--tls-private-key-file={}", path(&files.serving_key)),
        format!("--client-ca-file={}", path(&files.ca_cert)),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
        format!("--service-account-key-file={}", path(&files.sa_pub)),
        format!("--service-account-signing-key-file={}", path(&files.sa_key)),
        "--service-cluster-ip-range=10.0.0.0/24".to_string(),
        "--authorization-mode=RBAC".to_string(),
        // No controller-manager creates `default` ServiceAccounts here, and this admission
        // plugin rejects every Pod in a namespace that lacks one.
        "--disable-admission-plugins=ServiceAccount".to_string(),
        // Nothing serves the `kubernetes` Service, and loopback endpoints are invalid anyway.
        "--endpoint-reconciler-type=none".to_string(),
        "--allow-privileged=true".to_string(),
        "--profiling=false".to_string(),
    ]);
    cmd
}

/// Polls readiness until the deadline, failing fast (with its log) if a process exits.
async fn wait_ready(client: &Client, apiserver: &mut Proc, etcd: &mut Proc) -> Result<(), Error> {
    let processes_up = || {
        etcd.check_running()?;
        apiserver.check_running()
    };
    let ready = poll(
        "kube-apiserver readiness",
        APISERVER_TIMEOUT,
        processes_up,
        || kubeconfig::probe_ready(client),
    )
    .await;
    ready.map_err(|e| match e {
        Error::Timeout { last, .. } => {
            apiserver.not_ready(APISERVER_TIMEOUT, last.unwrap_or_default())
        }
        other => other,
    })
}

/// Whether a start failed because a port we picked got taken before we bound it.
fn lost_port_race(e: &Error) -> bool {
    match e {
        Error::ExitedEarly { tail, .. } | Error::NotReady { tail, .. } => {
            tail.contains("address already in use")
        }
        _ => false,
    }
}
