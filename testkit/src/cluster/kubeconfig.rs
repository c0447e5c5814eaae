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

/// The kubeconfig at `path` with every file it names (CA, client certificate and key, token
/// file) put inline, as `kubectl config view --flatten --raw` does: the only form the
/// operator accepts in a member's kubeconfig Secret (`hsn_api::access::self_contained`).
/// JSON, which every kubeconfig loader reads as YAML.
pub(crate) fn self_contained(path: &Path) -> Result<Vec<u8>, Error> {
    let kubeconfig_err = |source| Error::Kubeconfig {
        path: path.to_path_buf(),
        source,
    };
    // read_from resolves relative file names against the kubeconfig's directory.
    let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_err)?;
    let mut value = serde_json::to_value(&kubeconfig).map_err(Error::Serialize)?;
    let inline = |entry: &mut serde_json::Value, file: &str, data: &str, encode: bool| {
        let Some(name) = entry.get(file).and_then(|f| f.as_str()).map(String::from) else {
            return Ok(());
        };
        let bytes = std::fs::read(&name).map_err(|source| Error::ReadFile {
            path: name.into(),
            source,
        })?;
        let text = if encode {
            STANDARD.encode(&bytes)
        } else {
            String::from_utf8_lossy(&bytes).trim().to_string()
        };
        let map = entry
            .as_object_mut()
            .expect("a kubeconfig entry is an object");
        map.remove(file);
        map.insert(data.to_string(), text.into());
        Ok::<(), Error>(())
    };
    for (list, key) in [("clusters", "cluster"), ("users", "user")] {
        let entries = value[list].as_array_mut().into_iter().flatten();
        for entry in entries.filter_map(|e| e.get_mut(key)) {
            inline(
                entry,
                "certificate-authority",
                "certificate-authority-data",
                true,
            )?;
            inline(entry, "client-certificate", "client-certificate-data", true)?;
            inline(entry, "client-key", "client-key-data", true)?;
            inline(entry, "tokenFile", "token", false)?;
        }
    }
    serde_json::to_vec_pretty(&value).map_err(Error::Serialize)
}

/// The port of the server the current context of the kubeconfig at `path` names.
pub(crate) fn server_port(path: &Path) -> Result<u16, Error> {
    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
        path: path.to_path_buf(),
        source,
    })?;
    let server = kubeconfig
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.as_deref())
        .unwrap_or_default();
    server
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.port_u16())
        .ok_or_else(|| Error::Invalid {
            what: "kubeconfig server URL (no port)",
            input: format!("{server:?} in {}", path.display()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_a_kubeconfig_names_are_put_inline() {
        let dir = tempfile::tempdir().unwrap();
        for (file, content) in [
            ("ca.crt", "CA"),
            ("admin.crt", "CERT"),
            ("admin.key", "KEY"),
        ] {
            std::fs::write(dir.path().join(file), content).unwrap();
        }
        std::fs::write(dir.path().join("token"), "secret\n").unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "clusters: [{name: c, cluster: {server: 'https://h', certificate-authority: ca.crt}}]
users:
- {name: u, user: {client-certificate: admin.crt, client-key: admin.key}}
- {name: t, user: {tokenFile: token}}
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
",
        )
        .unwrap();
        let text = String::from_utf8(self_contained(&path).unwrap()).unwrap();
        let inline = Kubeconfig::from_yaml(&text).unwrap();
        let cluster = inline.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.certificate_authority, None);
        assert_eq!(
            cluster.certificate_authority_data.as_deref(),
            Some(STANDARD.encode("CA").as_str())
        );
        let user = inline.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!((&user.client_certificate, &user.client_key), (&None, &None));
        assert_eq!(
            user.client_certificate_data.as_deref(),
            Some(STANDARD.encode("CERT").as_str())
        );
        let token = inline.auth_infos[1].auth_info.as_ref().unwrap();
        assert_eq!(token.token_file, None);
        assert!(text.contains("\"token\": \"secret\""), "{text}");
        assert!(!text.contains(&dir.path().display().to_string()), "{text}");
    }
}
