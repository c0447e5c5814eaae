//! Writing kubeconfig files and turning them into kube clients.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::Error;

/// Credentials and address a kubeconfig carries, all PEM inline.
#[derive(Debug)]
pub(crate) struct KubeconfigSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) server: &'a str,
    pub(crate) ca_pem: &'a str,
    pub(crate) cert_pem: &'a str,
    pub(crate) key_pem: &'a str,
}

/// Writes a self-contained kubeconfig (data inline, so it survives being copied elsewhere).
pub(crate) fn write(path: &Path, spec: &KubeconfigSpec<'_>) -> Result<(), Error> {
    let b64 = |pem: &str| STANDARD.encode(pem.as_bytes());
    let yaml = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {name}-admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}-admin
current-context: {name}
",
        name = spec.name,
        server = spec.server,
        ca = b64(spec.ca_pem),
        cert = b64(spec.cert_pem),
        key = b64(spec.key_pem),
    );
    std::fs::write(path, yaml).map_err(|source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

/// A client for the current context of the kubeconfig at `path`.
pub(crate) async fn client(path: &Path) -> Result<Client, Error> {
    Client::try_from(config(path).await?).map_err(Error::Client)
}

/// The client configuration of the current context of the kubeconfig at `path`.
pub(crate) async fn config(path: &Path) -> Result<kube::Config, Error> {
    let kubeconfig_err = |source| Error::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_err)?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(kubeconfig_err)
}

/// One readiness probe: `/readyz` says ok and namespaces can be listed.
pub(crate) async fn probe_ready(client: &Client) -> Result<(), String> {
    let request = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let body = client
        .request_text(request)
        .await
        .map_err(|e| format!("GET /readyz: {e}"))?;
    if body.trim() != "ok" {
        return Err(format!("GET /readyz answered {body:?}"));
    }
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    namespaces
        .list(&Default::default())
        .await
        .map_err(|e| format!("listing namespaces: {e}"))?;
    Ok(())
}
