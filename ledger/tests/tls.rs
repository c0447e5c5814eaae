//! TLS: with a client CA configured, the ledger serves only clients with a certificate
//! that CA signed; a certificate renewed on disk is served to new connections without a
//! restart.

mod common;

use std::path::Path;

use anyhow::Result;
use common::{Network, hsnctl_json};
use hsn_ledger_api::client::{ClientTls, connect};
use hsn_ledger_api::pb;
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

struct Pki {
    ca: String,
    server: (String, String),
    /// The same CA's certificate for another name, as a renewal that shows.
    renewed: (String, String),
    client: (String, String),
    stranger: (String, String),
}

fn pki() -> Result<Pki> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf =
        |sans: Vec<String>, usage, issuer: &Issuer<'_, KeyPair>| -> Result<(String, String)> {
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(sans)?;
            params.extended_key_usages = vec![usage];
            Ok((params.signed_by(&key, issuer)?.pem(), key.serialize_pem()))
        };
    let server = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    )?;
    let renewed = leaf(
        vec!["renewed.example".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
        &issuer,
    )?;
    let client = leaf(vec![], ExtendedKeyUsagePurpose::ClientAuth, &issuer)?;
    // A client certificate from a CA the ledger does not trust.
    let other_key = KeyPair::generate()?;
    let mut other_params = CertificateParams::new(Vec::<String>::new())?;
    other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let other = Issuer::new(other_params, other_key);
    let stranger = leaf(vec![], ExtendedKeyUsagePurpose::ClientAuth, &other)?;
    Ok(Pki {
        ca: ca.pem(),
        server,
        renewed,
        client,
        stranger,
    })
}

fn write(dir: &Path, name: &str, pem: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, pem)?;
    Ok(path.display().to_string())
}

/// The CA's and the server's PEM files, written into `dir`.
struct Files {
    ca: String,
    cert: String,
    key: String,
}

fn files(dir: &Path, pki: &Pki) -> Result<Files> {
    Ok(Files {
        ca: write(dir, "ca.pem", &pki.ca)?,
        cert: write(dir, "server.pem", &pki.server.0)?,
        key: write(dir, "server.key", &pki.server.1)?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_requires_a_client_certificate_from_the_ca() -> Result<()> {
    let net = Network::new(1)?;
    let pki = pki()?;
    let dir = net.dir.path();
    let Files { ca, cert, key } = files(dir, &pki)?;
    let (ccert, ckey) = (
        write(dir, "client.pem", &pki.client.0)?,
        write(dir, "client.key", &pki.client.1)?,
    );
    let (scert, skey) = (
        write(dir, "stranger.pem", &pki.stranger.0)?,
        write(dir, "stranger.key", &pki.stranger.1)?,
    );
    let server = net.start(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca,
    ])?;
    let url = format!("https://localhost:{}", server.addr.port());

    let tls = |identity: Option<(&str, &str)>| ClientTls {
        ca: ca.clone().into(),
        identity: identity.map(|(c, k)| (c.into(), k.into())),
        domain: None,
    };
    let mut client = connect(&url, Some(&tls(Some((&ccert, &ckey))))).await?;
    let status = client.status(pb::StatusRequest {}).await?.into_inner();
    assert_eq!(status.network, "net-a");

    // Without a certificate, or with one from another CA, nothing gets through.
    for identity in [None, Some((scert.as_str(), skey.as_str()))] {
        let refused = match connect(&url, Some(&tls(identity))).await {
            Err(_) => true,
            Ok(mut c) => c.status(pb::StatusRequest {}).await.is_err(),
        };
        assert!(refused, "a client without a trusted certificate was served");
    }
    // Plain text is not served either.
    let plain = format!("http://127.0.0.1:{}", server.addr.port());
    let refused = match connect(&plain, None).await {
        Err(_) => true,
        Ok(mut c) => c.status(pb::StatusRequest {}).await.is_err(),
    };
    assert!(refused);

    hsnctl_json(&[
        "ledger", "--addr", &url, "--ca", &ca, "--cert", &ccert, "--key", &ckey, "status", "-o",
        "json",
    ])?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_a_restart() -> Result<()> {
    let net = Network::new(1)?;
    let pki = pki()?;
    let dir = net.dir.path();
    let Files { ca, cert, key } = files(dir, &pki)?;
    let server = net.start(&["--tls-cert", &cert, "--tls-key", &key])?;
    let url = format!("https://localhost:{}", server.addr.port());
    let tls = |domain: Option<&str>| ClientTls {
        ca: ca.clone().into(),
        identity: None,
        domain: domain.map(str::to_owned),
    };
    let serves = |domain: Option<&'static str>| {
        let (url, tls) = (url.clone(), tls(domain));
        async move {
            match connect(&url, Some(&tls)).await {
                Ok(mut c) => c.status(pb::StatusRequest {}).await.is_ok(),
                Err(_) => false,
            }
        }
    };
    assert!(serves(None).await, "the first certificate (localhost)");
    assert!(!serves(Some("renewed.example")).await);

    // Renewed in place, key first as a Secret volume would not (a moment of mismatch).
    write(dir, "server.key", &pki.renewed.1)?;
    write(dir, "server.pem", &pki.renewed.0)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !serves(Some("renewed.example")).await {
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate was not served within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(!serves(None).await, "the old name is no longer served");
    Ok(())
}
