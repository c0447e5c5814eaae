//! TLS for the gRPC service, with the certificate followed on disk: the operator renews a
//! super node's certificate in a mounted Secret, and new connections get the new one
//! without a restart (connections already open keep theirs).
//!
//! The certificate and key files are read again at a handshake when [`RECHECK`] has passed
//! since the last look; changed bytes that parse replace the served pair, and files that do
//! not parse (half written, damaged) leave the last good pair in place, said once in the
//! log. Handshakes run on their own tasks, bounded by [`HANDSHAKE`], so a slow client
//! delays no other.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring as provider;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use super::{ServerError, TlsFiles, io};

/// Least time between two looks at the certificate files.
pub const RECHECK: Duration = Duration::from_secs(2);
/// Longest a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// The server's certificate, re-read from its files as they change.
#[derive(Debug)]
struct Followed {
    cert: PathBuf,
    key: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    served: Arc<CertifiedKey>,
    /// The bytes `served` came from, and the last bytes refused (not logged twice).
    files: (Vec<u8>, Vec<u8>),
    refused: Option<(Vec<u8>, Vec<u8>)>,
    looked: Instant,
}

impl Followed {
    fn open(files: &TlsFiles) -> Result<Self, ServerError> {
        let read = read_pair(&files.cert, &files.key)?;
        let served = certified(&read.0, &read.1).map_err(|why| {
            ServerError::Replica(format!(
                "TLS certificate {} / key {}: {why}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
        Ok(Self {
            cert: files.cert.clone(),
            key: files.key.clone(),
            state: Mutex::new(State {
                served: Arc::new(served),
                files: read,
                refused: None,
                looked: Instant::now(),
            }),
        })
    }

    /// The pair to serve now, re-read first when [`RECHECK`] has passed.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.looked.elapsed() >= RECHECK {
            state.looked = Instant::now();
            if let Ok(read) = read_pair(&self.cert, &self.key)
                && read != state.files
                && state.refused.as_ref() != Some(&read)
            {
                match certified(&read.0, &read.1) {
                    Ok(new) => {
                        tracing::info!(cert = %self.cert.display(), "serving the renewed TLS certificate");
                        state.served = Arc::new(new);
                        state.files = read;
                        state.refused = None;
                    }
                    Err(why) => {
                        tracing::warn!(cert = %self.cert.display(), %why,
                            "the changed TLS certificate does not load; serving the last good one");
                        state.refused = Some(read);
                    }
                }
            }
        }
        state.served.clone()
    }
}

impl ResolvesServerCert for Followed {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn read_pair(cert: &PathBuf, key: &PathBuf) -> Result<(Vec<u8>, Vec<u8>), ServerError> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| io(&format!("read {}", p.display()), e));
    Ok((read(cert)?, read(key)?))
}

fn certified(cert: &[u8], key: &[u8]) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    if chain.is_empty() {
        return Err("no certificate in the file".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("key: {e}"))?;
    let signing = provider::sign::any_supported_type(&key).map_err(|e| format!("key: {e}"))?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match()
        .map_err(|e| format!("key and certificate: {e}"))?;
    Ok(pair)
}

/// The rustls configuration of the service: the followed certificate, HTTP/2, and client
/// certificates from `client_ca` required when set.
fn server_config(files: &TlsFiles) -> Result<ServerConfig, ServerError> {
    let provider = Arc::new(provider::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Replica(format!("TLS: {e}")))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let pem = std::fs::read(ca).map_err(|e| io(&format!("read {}", ca.display()), e))?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| {
                    ServerError::Replica(format!("client CA {}: {e}", ca.display()))
                })?;
                roots.add(cert).map_err(|e| {
                    ServerError::Replica(format!("client CA {}: {e}", ca.display()))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| ServerError::Replica(format!("client CA {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(Followed::open(files)?));
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The TLS connections accepted on `listener`, for tonic's `serve_with_incoming`. A
/// failed handshake closes that connection only.
pub fn incoming(
    listener: TcpListener,
    files: &TlsFiles,
) -> Result<ReceiverStream<Result<TlsStream<TcpStream>, std::io::Error>>, ServerError> {
    let acceptor = TlsAcceptor::from(Arc::new(server_config(files)?));
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = tx.closed() => return,
            };
            let _ = tcp.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    Ok(ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn a_changed_certificate_is_served_and_a_damaged_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
            client_ca: None,
        };
        let write = |(c, k): &(String, String)| {
            std::fs::write(&files.cert, c).unwrap();
            std::fs::write(&files.key, k).unwrap();
        };
        let (a, b) = (pair("a.example"), pair("b.example"));
        write(&a);
        let followed = Followed::open(&files).unwrap();
        let first = followed.current();
        let age = |f: &Followed| f.state.lock().unwrap().looked = Instant::now() - RECHECK;

        write(&b);
        assert!(
            Arc::ptr_eq(&first, &followed.current()),
            "not before RECHECK"
        );
        age(&followed);
        let second = followed.current();
        assert!(!Arc::ptr_eq(&first, &second), "renewed");
        assert_ne!(first.cert, second.cert);

        // Half written (a's key under b's certificate), then damaged: the last good one stays.
        std::fs::write(&files.key, &a.1).unwrap();
        age(&followed);
        assert!(Arc::ptr_eq(&second, &followed.current()));
        std::fs::write(&files.cert, "junk").unwrap();
        age(&followed);
        assert!(Arc::ptr_eq(&second, &followed.current()));
        // Whole again: served.
        write(&a);
        age(&followed);
        assert_eq!(followed.current().cert, first.cert);
    }
}
