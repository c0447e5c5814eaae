use std::path::PathBuf;

use clap::Parser as _;

use super::*;

fn edge(extra: &[&str]) -> Result<Args, clap::Error> {
    let base = ["hsn-agent", "--role", "edge", "--network", "n"];
    Args::try_parse_from(base.iter().chain(extra))
}

#[test]
fn ledger_tls_flags_come_in_pairs() {
    let ok = [
        &[][..],
        &["--ledger-ca", "ca.pem"],
        &[
            "--ledger-ca",
            "ca.pem",
            "--ledger-tls-domain",
            "ledger.test",
        ],
        &[
            "--ledger-ca",
            "ca.pem",
            "--ledger-cert",
            "c.pem",
            "--ledger-key",
            "k.pem",
        ],
    ];
    for flags in ok {
        assert!(edge(flags).is_ok(), "{flags:?}");
    }
    let refused = [
        &["--ledger-cert", "c.pem"][..],
        &["--ledger-key", "k.pem"],
        &["--ledger-ca", "ca.pem", "--ledger-cert", "c.pem"],
        &["--ledger-ca", "ca.pem", "--ledger-key", "k.pem"],
        &["--ledger-cert", "c.pem", "--ledger-key", "k.pem"],
        &["--ledger-tls-domain", "ledger.test"],
    ];
    for flags in refused {
        let e = edge(flags).unwrap_err();
        assert_eq!(
            e.kind(),
            clap::error::ErrorKind::MissingRequiredArgument,
            "{flags:?}"
        );
    }
    let env = |id: &str| {
        let command = <Args as clap::CommandFactory>::command();
        let arg = command.get_arguments().find(|a| a.get_id() == id).unwrap();
        arg.get_env().and_then(|e| e.to_str()).map(str::to_owned)
    };
    for (id, var) in [
        ("ledger_ca", "HSN_LEDGER_CA"),
        ("ledger_cert", "HSN_LEDGER_CERT"),
        ("ledger_key", "HSN_LEDGER_KEY"),
        ("ledger_tls_domain", "HSN_LEDGER_TLS_DOMAIN"),
    ] {
        assert_eq!(
            env(id).as_deref(),
            Some(var),
            "a pod spec sets {id} from a Secret"
        );
    }
}

#[test]
fn ledger_tls_files_and_scheme_are_checked_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let missing = dir.path().join("missing.pem");
    let (pem, junk, missing) = (
        pem.to_str().unwrap(),
        junk.to_str().unwrap(),
        missing.to_str().unwrap(),
    );
    let tls = |flags: &[&str]| ledger_tls(&edge(flags).unwrap());

    assert_eq!(tls(&[]).unwrap(), None, "plain text without --ledger-ca");
    let full = tls(&[
        "--ledger-ca",
        pem,
        "--ledger-cert",
        pem,
        "--ledger-key",
        pem,
        "--ledger-tls-domain",
        "ledger.test",
        "--ledger-endpoint",
        "https://10.0.0.1:7443",
    ])
    .unwrap()
    .unwrap();
    assert_eq!(full.ca, PathBuf::from(pem));
    assert_eq!(full.identity, Some((pem.into(), pem.into())));
    assert_eq!(full.domain.as_deref(), Some("ledger.test"));

    let e = tls(&[
        "--ledger-ca",
        pem,
        "--ledger-cert",
        missing,
        "--ledger-key",
        pem,
    ])
    .unwrap_err()
    .to_string();
    assert!(e.starts_with(&format!("--ledger-cert {missing}: ")), "{e}");
    let e = tls(&["--ledger-ca", missing]).unwrap_err().to_string();
    assert!(e.starts_with(&format!("--ledger-ca {missing}: ")), "{e}");
    let e = tls(&[
        "--ledger-ca",
        pem,
        "--ledger-cert",
        pem,
        "--ledger-key",
        junk,
    ])
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        format!("--ledger-key {junk}: not PEM (no -----BEGIN line)")
    );
    let e = tls(&[
        "--ledger-ca",
        pem,
        "--ledger-endpoint",
        "http://10.0.0.1:7443",
    ])
    .unwrap_err();
    assert!(matches!(e, LedgerTlsError::Scheme { .. }), "{e}");
    let e = tls(&["--ledger-endpoint", "https://10.0.0.1:7443"]).unwrap_err();
    assert!(matches!(e, LedgerTlsError::Scheme { .. }), "{e}");
}

#[test]
fn the_flags_make_one_checked_config() {
    // What the operator's super-node pod spec passes (flags and env).
    let argv = "hsn-agent --role super --network metro --routes-configmap hsn-routes \
                --namespace hsn-metro --node-name n1 --pod-name hsn-super-node-3 --pod-uid u-3";
    let args = Args::try_parse_from(argv.split_whitespace()).unwrap();
    let config = Config::from_args(&args).unwrap();
    assert_eq!(config.state_dir, PathBuf::from("/var/lib/hsn/metro"));
    assert_eq!(config.name, "super-3");
    assert_eq!(
        config.me,
        Me::Super {
            ordinal: 3,
            cluster: None
        }
    );
    assert!(
        config.ledger.is_none(),
        "a super ships only with --ledger-endpoint"
    );
    // The Lease is held by the pod, as the operator checks it.
    assert!(matches!(config.routes, RoutesSettings::Cluster(ref c)
        if c.holder == "hsn-super-node-3" && c.pod_uid == "u-3"));

    let missing = |flags: &[&str]| Config::from_args(&edge(flags).unwrap()).unwrap_err();
    assert_eq!(
        missing(&["--routes-file", "r.json"]).to_string(),
        "configuration: edge needs --node-name or NODE_NAME"
    );
    assert_eq!(
        missing(&["--node-name", "n1"]).to_string(),
        "configuration: one of --routes-configmap and --routes-file is required"
    );
    let cluster = [
        "--node-name",
        "n1",
        "--routes-configmap",
        "r",
        "--namespace",
        "ns",
    ];
    assert_eq!(
        missing(&cluster).to_string(),
        "configuration: cluster mode needs --pod-name or POD_NAME (the Lease holder)"
    );
    let named: Vec<&str> = cluster.iter().copied().chain(["--pod-name", "p"]).collect();
    assert_eq!(
        missing(&named).to_string(),
        "configuration: cluster mode needs --pod-uid or POD_UID (the Lease holder's UID)"
    );
}

#[test]
fn cluster_mode_attaches_where_the_advertised_address_lives() {
    let cluster = [
        "--routes-configmap",
        "routes",
        "--namespace",
        "ns",
        "--node-name",
        "n1",
        "--pod-name",
        "p",
        "--pod-uid",
        "u",
        "--no-ledger",
    ];
    let with = |extra: &[&str]| {
        let args = edge(&[&cluster[..], extra].concat()).unwrap();
        Config::from_args(&args).map(|c| c.datapath.interfaces)
    };
    // Every network namespace has `lo` with 127.0.0.1.
    assert_eq!(with(&["--advertise-address", "127.0.0.1"]).unwrap(), ["lo"]);
    // --interface wins; without an address nothing is guessed.
    let explicit = with(&["--advertise-address", "127.0.0.1", "--interface", "eth9"]);
    assert_eq!(explicit.unwrap(), ["eth9"]);
    assert!(with(&[]).unwrap().is_empty());
    // An address no interface has: a clear error at start, not an agent metering nothing.
    let e = with(&["--advertise-address", "192.0.2.77"]).unwrap_err();
    assert!(
        e.to_string()
            .contains("no interface of this node carries 192.0.2.77"),
        "{e}"
    );
    // Standalone keeps "none given, none attached".
    let standalone = [
        "--routes-file",
        "r.json",
        "--node-name",
        "n1",
        "--advertise-address",
        "127.0.0.1",
    ];
    let args = edge(&standalone).unwrap();
    assert!(
        Config::from_args(&args)
            .unwrap()
            .datapath
            .interfaces
            .is_empty()
    );
}
