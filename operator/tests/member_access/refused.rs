//! Kubeconfigs that are not self-contained: one with an exec plugin whose command would
//! create a marker file, one with a tokenFile. Both point at a server this test listens on.
//! Both are reported as `KubeconfigRefused` naming the field and its user; the command never
//! runs, the token file (a FIFO, which an open for reading would block on and this test
//! would see) is never opened, the server is never contacted.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail, ensure};
use hsn_testkit::operator::{Operator, kubeconfig_secret, mec_cluster};
use tokio::net::TcpListener;

use crate::{World, path_in, rounds, wait_mec};

/// What the refused kubeconfigs could have touched, to check again at the end.
pub(crate) struct Untouched {
    _dir: tempfile::TempDir,
    marker: PathBuf,
    fifo: PathBuf,
    connections: Arc<AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

pub(crate) async fn run_nothing(w: &World, op: &Operator) -> Result<Untouched> {
    let dir = tempfile::tempdir()?;
    let marker = dir.path().join("exec-ran");
    let fifo = dir.path().join("token");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    ensure!(made.success(), "mkfifo {}", fifo.display());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let server = format!("https://{}", listener.local_addr()?);
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let server_task = tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counted.fetch_add(1, Ordering::SeqCst);
        }
    });

    let kubeconfig = |user: String| {
        format!(
            "apiVersion: v1\nkind: Config\n\
             clusters: [{{name: member, cluster: {{server: '{server}', insecure-skip-tls-verify: true}}}}]\n\
             users: [{{name: attacker, user: {user}}}]\n\
             contexts: [{{name: x, context: {{cluster: member, user: attacker}}}}]\n\
             current-context: x\n"
        )
    };
    let exec = kubeconfig(format!(
        "{{exec: {{apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, \
         args: [-c, 'touch {}'], interactiveMode: Never}}}}",
        marker.display()
    ));
    let token_file = kubeconfig(format!("{{tokenFile: '{}'}}", path_in(dir.path(), "token")));
    for (name, text, field) in [
        ("mec-exec", exec, "exec"),
        ("mec-token-file", token_file, "tokenFile"),
    ] {
        kubeconfig_secret(&w.hub(), name, text.as_bytes()).await?;
        mec_cluster(&w.hub(), name, "eu-south", name).await?;
        let message = wait_mec(w, name, "Reachable", "False", "KubeconfigRefused").await?;
        let want = format!("user \"attacker\" sets {field}: ");
        ensure!(message.contains(&want), "{name}: {message}");
        wait_mec(w, name, "Ready", "False", "KubeconfigRefused").await?;
    }
    // Many more probes of each, then nothing ran, nothing was opened, nothing was sent.
    rounds(op, "meccluster", 20.0).await?;
    let untouched = Untouched {
        _dir: dir,
        marker,
        fifo,
        connections,
        _server: server_task,
    };
    untouched.still_untouched().await?;
    Ok(untouched)
}

impl Untouched {
    /// The marker does not exist, no process has the FIFO open for reading (or is blocked
    /// opening it), and no connection reached the server the kubeconfigs name.
    pub(crate) async fn still_untouched(&self) -> Result<()> {
        ensure!(
            !self.marker.exists(),
            "the exec plugin ran: {} exists",
            self.marker.display()
        );
        match tokio::net::unix::pipe::OpenOptions::new().open_sender(&self.fifo) {
            // ENXIO: a FIFO without a reader cannot be opened for writing without blocking.
            Err(e) if e.raw_os_error() == Some(6) => {}
            Err(e) => return Err(e).context("checking the token FIFO for readers"),
            Ok(_) => bail!("something opened the tokenFile {}", self.fifo.display()),
        }
        let n = self.connections.load(Ordering::SeqCst);
        ensure!(
            n == 0,
            "{n} connection(s) reached the refused kubeconfigs' server"
        );
        Ok(())
    }
}
