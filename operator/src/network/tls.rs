//! TLS between agents and ledgers, part of the chain stage: a CA per network and a server
//! certificate per super node, issued and renewed by the operator.
//!
//! The CA (ECDSA P-256, ten years) lives in the hub Secret `hsn-ledger-ca-<network uid>` in
//! the operator's namespace, written once (create; a conflict means another writer was
//! first, its CA is the one) and deleted with the network, or when `superNodes.ledgerTls`
//! turns false. Each super node's certificate
//! (a key of its own, [`VALIDITY`]) names the network's ledger
//! ([`ledger_server_name`]), which is what agents check: any super node of the network
//! serves the one chain, so the name is the network's, not the node's. Certificates are
//! kept while the CA signed them and more than a third of their life is left, else issued
//! anew; the member's Secret is read back each reconcile, so a lost or damaged one is
//! replaced, and an unreadable one is left alone (nothing rendered for its cluster).

use std::collections::BTreeMap;

use hsn_api::HsnNetwork;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData as _,
};

use x509_parser::prelude::FromDer as _;

use super::Error;
use crate::context::Context;
use crate::resources::{CA_CERT_KEY, LedgerTls, ServerCert, ledger_server_name, super_pod};

/// Key of the CA's private key (PEM) in the hub Secret.
const CA_KEY_KEY: &str = "ca.key";
/// How long a super node's certificate is valid.
pub const VALIDITY: std::time::Duration = std::time::Duration::from_secs(90 * 24 * 3600);
/// How long the CA is valid.
const CA_VALIDITY: std::time::Duration = std::time::Duration::from_secs(10 * 365 * 24 * 3600);

/// The hub Secret of a network's CA, named after the network's UID.
pub fn ca_secret(network: &HsnNetwork) -> String {
    format!("hsn-ledger-ca-{}", network.uid().unwrap_or_default())
}

/// Deletes the network's CA from the hub once its ledgers no longer use TLS
/// (`superNodes.ledgerTls: false`): a CA key kept for nothing is a key to lose, and turning
/// TLS on again makes a new CA, whose certificates replace the old ones. Its metadata is
/// read first, so the reconciles of a plain-text network write nothing once it is gone.
pub async fn forget_ca(network: &HsnNetwork, ctx: &Context) -> Result<(), Error> {
    let api: Api<Secret> = Api::namespaced(ctx.hub.clone(), &ctx.settings.operator_namespace);
    let name = ca_secret(network);
    if api
        .get_metadata_opt(&name)
        .await
        .map_err(Error::Hub)?
        .is_none()
    {
        return Ok(());
    }
    delete_hub_secret(ctx, &name).await?;
    tracing::info!(secret = %name, "ledger CA deleted: superNodes.ledgerTls is false");
    Ok(())
}

/// Deletes the hub Secret `name` in the operator's namespace; one already gone is fine.
pub(super) async fn delete_hub_secret(ctx: &Context, name: &str) -> Result<(), Error> {
    let api: Api<Secret> = Api::namespaced(ctx.hub.clone(), &ctx.settings.operator_namespace);
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::Hub(e)),
    }
}

/// The network's CA, read from the hub Secret `meta` names or made now (never while
/// paused: `None` then).
pub async fn ca(
    network: &HsnNetwork,
    ctx: &Context,
    meta: ObjectMeta,
) -> Result<Option<Ca>, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.hub.clone(), &ctx.settings.operator_namespace);
    let name = meta.name.clone().unwrap_or_default();
    let secret = match api.get_opt(&name).await.map_err(Error::Hub)? {
        Some(secret) => secret,
        None if network.spec.paused => return Ok(None),
        None => {
            let made = Ca::generate(&network.name_any())?;
            let secret = Secret {
                metadata: meta,
                type_: Some("Opaque".into()),
                data: Some(BTreeMap::from([
                    (
                        CA_CERT_KEY.to_owned(),
                        ByteString(made.cert_pem.clone().into()),
                    ),
                    (
                        CA_KEY_KEY.to_owned(),
                        ByteString(made.key_pem.clone().into()),
                    ),
                ])),
                ..Default::default()
            };
            match api.create(&PostParams::default(), &secret).await {
                Ok(created) => {
                    tracing::info!(secret = %name, "ledger CA written");
                    created
                }
                Err(kube::Error::Api(s)) if s.code == 409 => api
                    .get_opt(&name)
                    .await
                    .map_err(Error::Hub)?
                    .ok_or_else(|| Error::Chain(format!("{name} vanished")))?,
                Err(e) => return Err(Error::Hub(e)),
            }
        }
    };
    let text = |key| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .ok_or_else(|| Error::Chain(format!("{name}: no {key}")))
    };
    Ca::load(text(CA_CERT_KEY)?, text(CA_KEY_KEY)?).map(Some)
}

/// A network's certificate authority.
#[derive(Debug)]
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    key: KeyPair,
    /// The CA certificate's public key (DER SubjectPublicKeyInfo), to check signatures.
    spki: Vec<u8>,
}

impl Ca {
    fn generate(network: &str) -> Result<Self, Error> {
        let key = KeyPair::generate().map_err(pki)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki)?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("hsn ledger CA ({network})"));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = std::time::SystemTime::now();
        params.not_before = now.into();
        params.not_after = (now + CA_VALIDITY).into();
        let cert = params.self_signed(&key).map_err(pki)?;
        Self::load(cert.pem(), key.serialize_pem())
    }

    fn load(cert_pem: String, key_pem: String) -> Result<Self, Error> {
        let key = KeyPair::from_pem(&key_pem).map_err(pki)?;
        let spki = key.subject_public_key_info();
        Ok(Self {
            cert_pem,
            key_pem,
            key,
            spki,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A new server certificate for the network's ledger name.
    fn issue(&self, network: &str, now: Timestamp) -> Result<ServerCert, Error> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(pki)?;
        let key = KeyPair::generate().map_err(pki)?;
        let name = ledger_server_name(network);
        let mut params = CertificateParams::new(vec![name.clone()]).map_err(pki)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let start = std::time::SystemTime::from(now) - std::time::Duration::from_secs(300);
        params.not_before = start.into();
        params.not_after = (std::time::SystemTime::from(now) + VALIDITY).into();
        let cert = params.signed_by(&key, &issuer).map_err(pki)?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Whether `cert` is one this CA signed for `network`'s ledger with more than a third
    /// of its life left at `now`.
    fn keeps(&self, network: &str, cert: &ServerCert, now: Timestamp) -> bool {
        let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(cert.cert_pem.as_bytes()) else {
            return false;
        };
        let Ok(x509) = pem.parse_x509() else {
            return false;
        };
        let Ok((_, spki)) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&self.spki) else {
            return false;
        };
        let signed = x509.verify_signature(Some(&spki)).is_ok();
        let named = x509
            .subject_alternative_name()
            .ok()
            .flatten()
            .is_some_and(|san| {
                san.value.general_names.iter().any(|n| {
                    matches!(n, x509_parser::extensions::GeneralName::DNSName(d)
                        if *d == ledger_server_name(network))
                })
            });
        let left = x509.validity().not_after.timestamp() - now.as_second();
        let third = i64::try_from(VALIDITY.as_secs() / 3).unwrap_or(i64::MAX);
        let key_matches = KeyPair::from_pem(&cert.key_pem)
            .is_ok_and(|k| k.subject_public_key_info() == x509.public_key().raw);
        signed && named && key_matches && left > third
    }
}

/// Every super node's certificate on one member: those kept from `existing` (the member's
/// Secret, `None` when there is none) and new ones for the rest of `0..replicas`.
pub fn certificates(
    ca: &Ca,
    network: &str,
    existing: Option<&Secret>,
    replicas: u32,
    now: Timestamp,
) -> Result<(BTreeMap<u32, ServerCert>, usize), Error> {
    let data = existing.and_then(|s| s.data.as_ref());
    let read = |key: String| {
        data.and_then(|d| d.get(&key))
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
    };
    let mut certs = BTreeMap::new();
    let mut issued = 0;
    for ordinal in 0..replicas {
        let pod = super_pod(ordinal);
        let kept = read(LedgerTls::cert_key(&pod))
            .zip(read(LedgerTls::key_key(&pod)))
            .map(|(cert_pem, key_pem)| ServerCert { cert_pem, key_pem })
            .filter(|c| ca.keeps(network, c, now));
        let cert = match kept {
            Some(cert) => cert,
            None => {
                issued += 1;
                ca.issue(network, now)?
            }
        };
        certs.insert(ordinal, cert);
    }
    Ok((certs, issued))
}

fn pki(e: rcgen::Error) -> Error {
    Error::Chain(format!("ledger TLS: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(certs: &BTreeMap<u32, ServerCert>) -> Secret {
        Secret {
            data: Some(LedgerTls::secret_data(certs)),
            ..Default::default()
        }
    }

    #[test]
    fn certificates_are_kept_while_valid_and_reissued_when_not() {
        let ca = Ca::generate("metro").unwrap();
        let now = Timestamp::now();
        let (first, issued) = certificates(&ca, "metro", None, 2, now).unwrap();
        assert_eq!((first.len(), issued), (2, 2));
        assert_ne!(first[&0].key_pem, first[&1].key_pem, "a key per super node");
        assert!(ca.keeps("metro", &first[&0], now));
        assert!(!ca.keeps("lab", &first[&0], now), "another network's name");

        // Read back: kept; one more replica: only it is new.
        let (again, issued) = certificates(&ca, "metro", Some(&secret(&first)), 3, now).unwrap();
        assert_eq!(issued, 1);
        assert_eq!(again[&0], first[&0]);
        assert_eq!(again[&1], first[&1]);

        // Two thirds of the way through its life: renewed.
        let later = now + std::time::Duration::from_secs(VALIDITY.as_secs() * 2 / 3 + 60);
        let (renewed, issued) =
            certificates(&ca, "metro", Some(&secret(&again)), 3, later).unwrap();
        assert_eq!(issued, 3);
        assert_ne!(renewed[&0], first[&0]);

        // Signed by another CA, damaged, or with another key: replaced.
        let other = Ca::generate("metro").unwrap();
        assert!(!other.keeps("metro", &first[&0], now));
        let mut damaged = first.clone();
        damaged.get_mut(&0).unwrap().cert_pem = "junk".into();
        damaged.get_mut(&1).unwrap().key_pem = first[&0].key_pem.clone();
        let (fixed, issued) = certificates(&ca, "metro", Some(&secret(&damaged)), 2, now).unwrap();
        assert_eq!(issued, 2);
        assert!(fixed.values().all(|c| ca.keeps("metro", c, now)));

        // The CA read back from its PEM signs as the one it was.
        let reloaded = Ca::load(ca.cert_pem.clone(), ca.key_pem.clone()).unwrap();
        assert!(reloaded.keeps("metro", &first[&0], now));
    }
}
