//! Certificates and keys for a [`super::ControlPlane`], generated in-process with rcgen.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::Error;

/// Names the serving certificate must cover: how tests reach it (127.0.0.1, localhost) and
/// how in-cluster clients name the `kubernetes` Service.
const SERVING_SANS: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "10.0.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// PEM-encoded material for one control plane.
#[derive(Debug)]
pub(crate) struct Pki {
    pub(crate) ca_cert: String,
    pub(crate) serving_cert: String,
    pub(crate) serving_key: String,
    pub(crate) admin_cert: String,
    pub(crate) admin_key: String,
    pub(crate) sa_key: String,
    pub(crate) sa_pub: String,
}

/// Where [`Pki::write`] put the files kube-apiserver reads.
#[derive(Debug)]
pub(crate) struct PkiFiles {
    pub(crate) ca_cert: PathBuf,
    pub(crate) serving_cert: PathBuf,
    pub(crate) serving_key: PathBuf,
    pub(crate) sa_key: PathBuf,
    pub(crate) sa_pub: PathBuf,
}

impl Pki {
    /// A fresh CA, a serving cert, a `system:masters` admin client cert and a SA signing key.
    pub(crate) fn generate() -> Result<Self, Error> {
        let ca_key = KeyPair::generate()?;
        let ca_params = ca_params()?;
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate()?;
        let serving_cert = serving_params()?.signed_by(&serving_key, &issuer)?;
        let admin_key = KeyPair::generate()?;
        let admin_cert = admin_params()?.signed_by(&admin_key, &issuer)?;
        let sa_key = KeyPair::generate()?;

        Ok(Self {
            ca_cert: ca_cert.pem(),
            serving_cert: serving_cert.pem(),
            serving_key: serving_key.serialize_pem(),
            admin_cert: admin_cert.pem(),
            admin_key: admin_key.serialize_pem(),
            sa_key: sa_key.serialize_pem(),
            sa_pub: sa_key.public_key_pem(),
        })
    }

    /// Writes the files kube-apiserver needs into `dir` (the admin pair goes in the kubeconfig).
    pub(crate) fn write(&self, dir: &Path) -> Result<PkiFiles, Error> {
        let files = PkiFiles {
            ca_cert: dir.join("ca.crt"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            sa_key: dir.join("sa.key"),
            sa_pub: dir.join("sa.pub"),
        };
        write(&files.ca_cert, &self.ca_cert)?;
        write(&files.serving_cert, &self.serving_cert)?;
        write(&files.serving_key, &self.serving_key)?;
        write(&files.sa_key, &self.sa_key)?;
        write(&files.sa_pub, &self.sa_pub)?;
        Ok(files)
    }
}

fn ca_params() -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "hsn-testkit-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn serving_params() -> Result<CertificateParams, Error> {
    let sans: Vec<String> = SERVING_SANS.iter().map(|s| (*s).to_string()).collect();
    let mut params = CertificateParams::new(sans)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kube-apiserver");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(params)
}

fn admin_params() -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    // Kubernetes reads the user from CN and groups from O; system:masters bypasses RBAC.
    params
        .distinguished_name
        .push(DnType::CommonName, "hsn-testkit-admin");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "system:masters");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

fn write(path: &Path, contents: &str) -> Result<(), Error> {
    std::fs::write(path, contents).map_err(|source| Error::WriteFile {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_pem_material() {
        let pki = Pki::generate().unwrap();
        for pem in [&pki.ca_cert, &pki.serving_cert, &pki.admin_cert] {
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
        }
        assert!(pki.sa_key.contains("PRIVATE KEY"));
        assert!(pki.sa_pub.starts_with("-----BEGIN PUBLIC KEY-----"));
    }
}
