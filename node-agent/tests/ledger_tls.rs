//! The shipper over TLS to a real ledger server (`hsn_ledger::server::run`, what `hsn-ledger
//! serve --tls-cert --tls-key --tls-client-ca` runs) on 127.0.0.1 with a client CA: with the
//! CA and a client certificate from `--ledger-ca/--ledger-cert/--ledger-key` the spool is
//! stored; without a client certificate, trusting another CA, or checking another name
//! (`--ledger-tls-domain`) nothing is sent and the error label says why.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser as _;
use ed25519_dalek::SigningKey;
use hsn_agent::cli::Args;
use hsn_agent::metrics::{Metrics, ReasonLabels};
use hsn_agent::shipper::{Round, Shipper, ShipperConfig, tls};
use hsn_core::Role;
use hsn_ledger::server::TlsFiles;
use hsn_ledger_api::client::ClientTls;
use hsn_ledger_api::pb;
use prometheus_client::registry::Registry;
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

mod common;

use common::{past_epochs, spool_header, write_spool};

use hsn_testkit::ledger::{NETWORK, RunningLedger};

/// A CA that signs leaf certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Self {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate and key (PEM) for `sans`, for a server or a client.
    fn leaf(&self, sans: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let sans = sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(sans).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// PEM files on disk, as a mounted Secret would hold them.
struct Pki {
    ca: PathBuf,
    server: (PathBuf, PathBuf),
    client: (PathBuf, PathBuf),
    other_ca: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let ca = Ca::new();
    let server = ca.leaf(
        &["127.0.0.1", "ledger.test"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let client = ca.leaf(&[], ExtendedKeyUsagePurpose::ClientAuth);
    Pki {
        ca: write("ca.pem", &ca.pem),
        server: (
            write("server.pem", &server.0),
            write("server.key", &server.1),
        ),
        client: (
            write("client.pem", &client.0),
            write("client.key", &client.1),
        ),
        other_ca: write("other-ca.pem", &Ca::new().pem),
    }
}

fn keys() -> (SigningKey, SigningKey) {
    let k = |b: u8| SigningKey::from_bytes(&[b; 32]);
    (k(11), k(33)) // the edge agent, the ledger's own key
}

/// The ledger over TLS, requiring client certificates from the test CA, once it answers;
/// its `https://` URL.
async fn start_ledger(dir: &Path, pki: &Pki, client: &ClientTls) -> (RunningLedger, String) {
    let (edge, ledger_key) = keys();
    let nodes = [
        (Role::Edge, &edge, "edge-n1"),
        (Role::Super, &ledger_key, "super-0-ledger"),
    ];
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tls = TlsFiles {
        cert: pki.server.0.clone(),
        key: pki.server.1.clone(),
        client_ca: Some(pki.ca.clone()),
    };
    let url = format!("https://127.0.0.1:{}", listen.port());
    let ledger = RunningLedger::start(dir, listen, &ledger_key, &nodes, Some(tls))
        .wait_ready(|| async { pending_entries(&url, client).await.is_some() })
        .await;
    (ledger, url)
}

/// The ledger's pending entries, asked over mTLS; `None` while it does not answer.
async fn pending_entries(url: &str, tls: &ClientTls) -> Option<u64> {
    let mut client = hsn_ledger_api::client::connect(url, Some(tls)).await.ok()?;
    let status = client.status(pb::StatusRequest {}).await.ok()?;
    Some(status.into_inner().pending_entries)
}

/// Two ended epochs of an edge, closed through the agent's spool.
fn write_edge_spool(dir: &Path, key: &SigningKey) -> [u64; 2] {
    let public_key = hex::encode(key.verifying_key().as_bytes());
    let header = spool_header(NETWORK, Role::Edge, "edge-n1", public_key);
    let epochs = past_epochs();
    write_spool(dir, &header, None, &epochs, (25_600, 9_000));
    epochs
}

fn unsent(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json")
        })
        .count()
}

/// The TLS settings `hsn-agent` takes from `--ledger-ca`, `--ledger-cert`/`--ledger-key`
/// and `--ledger-tls-domain`, its files checked as at start.
fn flags(ca: &Path, client: Option<&(PathBuf, PathBuf)>, domain: Option<&str>) -> ClientTls {
    let mut argv = vec!["hsn-agent", "--role", "edge", "--network", NETWORK]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    let mut flag = |name: &str, value: String| argv.extend([name.to_owned(), value]);
    flag("--ledger-ca", ca.display().to_string());
    if let Some((cert, key)) = client {
        flag("--ledger-cert", cert.display().to_string());
        flag("--ledger-key", key.display().to_string());
    }
    if let Some(domain) = domain {
        flag("--ledger-tls-domain", domain.to_owned());
    }
    let args = Args::try_parse_from(argv).unwrap();
    hsn_agent::config::ledger_tls(&args)
        .unwrap()
        .expect("TLS configured")
}

/// One round of an edge shipper with `tls` to `url`.
async fn ship(spool: &Path, url: &str, tls: ClientTls) -> (Round, std::sync::Arc<Metrics>) {
    let metrics = Metrics::register(&mut Registry::default());
    let mut c = ShipperConfig::new(NETWORK, Role::Edge, keys().0, spool.to_owned());
    c.endpoint = Some(url.to_owned());
    c.tls = Some(tls);
    c.rpc_timeout = Duration::from_secs(10);
    let mut shipper = Shipper::new(c, metrics.clone());
    (shipper.ship_once(url).await, metrics)
}

#[tokio::test]
async fn the_spool_ships_over_mtls_and_only_with_a_trusted_client_and_server() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = pki(tmp.path());
    let spool = tmp.path().join("spool");
    let epochs = write_edge_spool(&spool, &keys().0);
    let admin = ClientTls {
        ca: pki.ca.clone(),
        identity: Some(pki.client.clone()),
        domain: None,
    };
    let (_ledger, url) = start_ledger(tmp.path(), &pki, &admin).await;

    let client = Some(&pki.client);
    let refusals = [
        (
            "no client certificate",
            flags(&pki.ca, None, None),
            tls::CERTIFICATE_REQUIRED,
        ),
        (
            "trusting another CA",
            flags(&pki.other_ca, client, None),
            tls::UNTRUSTED_LEDGER,
        ),
        (
            "checking another name",
            flags(&pki.ca, client, Some("other.test")),
            tls::UNTRUSTED_LEDGER,
        ),
    ];
    for (what, tls, label) in refusals {
        let (round, metrics) = ship(&spool, &url, tls).await;
        let labels: Vec<_> = round.errors.iter().map(|(_, e)| e.label()).collect();
        assert_eq!(labels, [label], "{what}: {:?}", round.errors);
        assert!(round.sent.is_empty(), "{what}");
        assert_eq!(round.backlog, 2, "{what}");
        assert_eq!(unsent(&spool), 2, "{what}: the files stay unsent");
        let counted = metrics
            .ledger_submit_errors
            .get_or_create(&ReasonLabels { reason: label })
            .get();
        assert_eq!(counted, 1, "{what}");
        assert_eq!(metrics.ledger_shipped.get(), 0, "{what}");
    }
    assert_eq!(
        pending_entries(&url, &admin).await,
        Some(0),
        "nothing got through"
    );

    // CA, client certificate, and the name in the ledger's certificate.
    let tls = flags(&pki.ca, client, Some("ledger.test"));
    let (round, metrics) = ship(&spool, &url, tls).await;
    assert!(round.errors.is_empty(), "{:?}", round.errors);
    assert_eq!(round.sent, epochs);
    assert_eq!((round.stored, round.backlog), (4, 0));
    assert_eq!(metrics.ledger_files_sent.get(), 2);
    assert_eq!(unsent(&spool), 0);
    assert_eq!(pending_entries(&url, &admin).await, Some(4));
}
