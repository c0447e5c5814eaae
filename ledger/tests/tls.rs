//! mTLS: with a client CA configured, the ledger serves only clients with a certificate
//! that CA signed.

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
        client,
        stranger,
    })
}

fn write(dir: &Path, name: &str, pem: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, pem)?;
    Ok(path.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_requires_a_client_certificate_from_the_ca() -> Result<()> {
    let net = Network::new(1)?;
    let pki = pki()?;
    let dir = net.dir.path();
    let ca = write(dir, "ca.pem", &pki.ca)?;
    let (cert, key) = (
        write(dir, "server.pem", &pki.server.0)?,
        write(dir, "server.key", &pki.server.1)?,
    );
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
