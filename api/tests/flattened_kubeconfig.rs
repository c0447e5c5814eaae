//! How the repository makes a member kubeconfig self-contained before it goes into a Secret
//! (hack/demo.sh for kwokctl's kubeconfigs, hack/kind-register.sh for any):
//! `kubectl config view --raw --flatten --minify`. What it produces is accepted; what it
//! cannot fix (a credential plugin) is still refused.

use anyhow::{Context, Result, ensure};
use hsn_api::access::refusals;
use kube::config::Kubeconfig;

fn flattened(dir: &std::path::Path, user: &str) -> Result<Kubeconfig> {
    hsn_testkit::require_binaries(&["kubectl"])?;
    for (file, content) in [
        ("ca.crt", "CA"),
        ("admin.crt", "CERT"),
        ("admin.key", "KEY"),
    ] {
        std::fs::write(dir.join(file), content)?;
    }
    // As kwokctl writes it: certificate files by path, two contexts.
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- {{name: member, cluster: {{server: 'https://127.0.0.1:6443', certificate-authority: ca.crt}}}}
- {{name: other, cluster: {{server: 'https://10.0.0.1:6443', certificate-authority: /nowhere}}}}
users:
- {{name: admin, user: {user}}}
- {{name: laptop, user: {{tokenFile: /nowhere}}}}
contexts:
- {{name: member, context: {{cluster: member, user: admin}}}}
- {{name: other, context: {{cluster: other, user: laptop}}}}
current-context: member
"
        ),
    )?;
    let out = std::process::Command::new(hsn_testkit::bin("kubectl"))
        .arg("--kubeconfig")
        .arg(&path)
        .args(["config", "view", "--raw", "--flatten", "--minify"])
        .output()?;
    ensure!(
        out.status.success(),
        "kubectl config view: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(Kubeconfig::from_yaml(std::str::from_utf8(&out.stdout)?)?)
}

#[test]
fn a_flattened_minified_kubeconfig_is_accepted() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let flat = flattened(
        dir.path(),
        "{client-certificate: admin.crt, client-key: admin.key}",
    )?;
    ensure!(refusals(&flat).is_empty(), "{:?}", refusals(&flat));
    let user = flat.auth_infos[0].auth_info.as_ref().context("user")?;
    ensure!(user.client_certificate_data.is_some(), "{flat:?}");
    ensure!(flat.clusters.len() == 1 && flat.auth_infos.len() == 1);
    Ok(())
}

#[test]
fn flattening_does_not_make_a_credential_plugin_acceptable() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let flat = flattened(
        dir.path(),
        "{exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}}",
    )?;
    let refused: Vec<String> = refusals(&flat).iter().map(|r| r.field.clone()).collect();
    ensure!(refused == ["exec"], "{refused:?}");
    Ok(())
}
