//! Telling TLS failures apart, so `hsn_agent_ledger_submit_errors_total{reason}` and the
//! log say which side refused whom instead of "transport error".
//!
//! rustls reports through `std::io::Error`s deep in tonic's and hyper's error chains, and
//! the agent does not link rustls' types itself, so the chain's messages are matched; the
//! `ledger_tls` test pins them to the rustls in use.

use std::error::Error;

/// We refused the ledger's certificate (unknown CA, wrong name, expired, …).
pub const UNTRUSTED_LEDGER: &str = "tls_untrusted_ledger";
/// The ledger asked for a client certificate and we had none (`--ledger-cert`).
pub const CERTIFICATE_REQUIRED: &str = "tls_certificate_required";
/// The ledger ended the handshake otherwise, e.g. our certificate's CA is not its client CA.
pub const REFUSED: &str = "tls_refused";
/// Another TLS failure, e.g. a plain-text ledger behind an `https://` endpoint.
pub const OTHER: &str = "tls_other";

/// Every label [`reason`] returns.
pub const REASONS: [&str; 4] = [UNTRUSTED_LEDGER, CERTIFICATE_REQUIRED, REFUSED, OTHER];

/// The TLS failure somewhere in `error`'s chain, as a metric label.
pub fn reason(error: &(dyn Error + 'static)) -> Option<&'static str> {
    chain(error).find_map(|e| classify(&e.to_string()))
}

/// The innermost message of `error`'s chain (what actually failed).
pub fn root_cause(error: &(dyn Error + 'static)) -> String {
    chain(error)
        .last()
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn chain<'a>(error: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(error), |e: &&'a (dyn Error + 'static)| (*e).source())
}

fn classify(message: &str) -> Option<&'static str> {
    if message.starts_with("invalid peer certificate") {
        Some(UNTRUSTED_LEDGER)
    } else if message.starts_with("received fatal alert: CertificateRequired") {
        Some(CERTIFICATE_REQUIRED)
    } else if message.starts_with("received fatal alert") {
        Some(REFUSED)
    } else if message.starts_with("received corrupt message")
        || message.contains("InvalidContentType")
        || message.starts_with("peer is incompatible")
    {
        Some(OTHER)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_messages_map_to_bounded_labels() {
        let io = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
        let cases = [
            (
                "invalid peer certificate: UnknownIssuer",
                Some(UNTRUSTED_LEDGER),
            ),
            (
                "received fatal alert: CertificateRequired",
                Some(CERTIFICATE_REQUIRED),
            ),
            ("received fatal alert: UnknownCA", Some(REFUSED)),
            ("connection refused", None),
        ];
        for (message, want) in cases {
            assert_eq!(reason(&io(message)), want, "{message}");
        }
        assert_eq!(root_cause(&io("x")), "x");
        assert!(REASONS.iter().all(|r| r.starts_with("tls_")));
    }
}
