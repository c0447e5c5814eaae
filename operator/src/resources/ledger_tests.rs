//! The chain's objects in a member: identities, genesis and peers, the ledger container,
//! and TLS (certificates, the CA, the agents' flags; plain text when turned off).

use std::collections::BTreeMap;

use super::tests::{network, owner, plan};
use super::*;
use ledger::LEDGER_USER;
use serde_json::json;

#[test]
fn super_pods_run_the_ledger_with_their_identity_genesis_and_peers() {
    let mut chain = Chain::default();
    let keys: BTreeMap<u32, ed25519_dalek::SigningKey> = (0..2)
        .map(|i| (i, ed25519_dalek::SigningKey::from_bytes(&[i as u8 + 1; 32])))
        .collect();
    chain.seeds.insert("a".into(), keys.clone());
    // Without a genesis: the identities, no ledger ConfigMap yet (the pods wait for it).
    let objs = member_objects(&network(), &owner("a"), &plan(), &Peers::new(), &chain);
    let secret = objs
        .iter()
        .find(|d| d.name == IDENTITY_SECRET)
        .expect("identities");
    let seed = &secret.body()["data"]["hsn-super-node-1"];
    assert!(seed.is_string(), "{secret:?}");
    assert!(!objs.iter().any(|d| d.name == LEDGER_CONFIGMAP));
    // Another cluster's identities are not this one's business.
    let b = member_objects(&network(), &owner("b"), &plan(), &Peers::new(), &chain);
    assert!(!b.iter().any(|d| d.name == IDENTITY_SECRET));

    chain.genesis = Some("{}".into());
    let address: std::net::IpAddr = "10.0.0.7".parse().unwrap();
    let peers = Peers::from([(
        "a".to_string(),
        BTreeMap::from([(
            "super-0".to_string(),
            Peer {
                address: Some(address),
                ..Default::default()
            },
        )]),
    )]);
    let objs = member_objects(&network(), &owner("a"), &plan(), &peers, &chain);
    let cm = objs
        .iter()
        .find(|d| d.name == LEDGER_CONFIGMAP)
        .expect("ledger ConfigMap");
    assert_eq!(cm.body()["data"]["genesis.json"], "{}");
    let id = hsn_ledger_api::genesis::node_id(&hsn_ledger_api::keys::NodeKey::of(&keys[&0]));
    assert_eq!(
        cm.body()["data"]["peers"],
        format!("{id}@10.0.0.7:26656\n"),
        "live supers with a known address: a/super-0 (a/super-1 is not live, b's key unknown)"
    );
    assert!(
        cm.body()["data"]["history"].is_null(),
        "no history before the chain committed a block"
    );
    let mut seen = chain.clone();
    seen.history = Some("chain height 4".into());
    let with_history = member_objects(&network(), &owner("a"), &plan(), &peers, &seen);
    let cm_seen = with_history
        .iter()
        .find(|d| d.name == LEDGER_CONFIGMAP)
        .unwrap();
    assert_eq!(cm_seen.body()["data"]["history"], "chain height 4\n");
    assert_eq!(
        cm_seen.body()["data"]["peers"],
        "",
        "with history, a validator whose replica reports no committed block is no peer: \
         one without its data must not sync from (or begin the chain again with) it"
    );
    let mut holding = peers.clone();
    for p in holding.values_mut().flat_map(|l| l.values_mut()) {
        p.holds_chain = true;
    }
    let held = member_objects(&network(), &owner("a"), &plan(), &holding, &seen);
    let cm_held = held.iter().find(|d| d.name == LEDGER_CONFIGMAP).unwrap();
    assert_eq!(
        cm_held.body()["data"]["peers"],
        format!("{id}@10.0.0.7:26656\n")
    );
    let sts = objs
        .iter()
        .find(|d| d.resource.kind == "StatefulSet")
        .unwrap();
    let pod = &sts.body()["spec"]["template"]["spec"];
    let names: Vec<&str> = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["agent", "ledger"]);
    let args = |i: usize| -> Vec<String> {
        serde_json::from_value(pod["containers"][i]["args"].clone()).unwrap()
    };
    let after = |args: &[String], flag: &str| {
        let i = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{flag}"));
        args[i + 1].clone()
    };
    let agent = args(0);
    assert_eq!(
        after(&agent, "--identity-file"),
        "/etc/hsn/identity/$(POD_NAME)"
    );
    // TLS by default: the agent checks the network's ledger name against the CA.
    assert_eq!(after(&agent, "--ledger-endpoint"), "https://127.0.0.1:7443");
    assert_eq!(after(&agent, "--ledger-ca"), "/etc/hsn/ledger-ca/ca.crt");
    assert_eq!(
        after(&agent, "--ledger-tls-domain"),
        "ledger.metro.hsn.internal"
    );
    let ledger = args(1);
    assert_eq!(after(&ledger, "--tls-cert"), "/etc/hsn/tls/$(POD_NAME).crt");
    assert_eq!(after(&ledger, "--tls-key"), "/etc/hsn/tls/$(POD_NAME).key");
    assert_eq!(ledger[0], "node");
    assert_eq!(
        after(&ledger, "--key-file"),
        "/etc/hsn/identity/$(POD_NAME)"
    );
    assert_eq!(after(&ledger, "--peers-file"), "/etc/hsn/ledger/peers");
    assert_eq!(after(&ledger, "--history-file"), "/etc/hsn/ledger/history");
    // The agent copies genesis and peers into a volume only the pod's containers share;
    // the ConfigMap's mount is optional, so no pod waits on the kubelet's retries for it.
    assert_eq!(after(&agent, "--ledger-relay-dir"), "/run/hsn/ledger-relay");
    assert_eq!(after(&ledger, "--relayed-config"), "/run/hsn/ledger-relay");
    let mount = |i: usize| {
        pod["containers"][i]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "ledger-relay")
            .cloned()
            .unwrap_or_else(|| panic!("container {i} mounts the relay"))
    };
    assert_eq!(mount(0)["readOnly"], false);
    assert_eq!(mount(1)["readOnly"], true);
    let volume = |name: &str| {
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .cloned()
            .unwrap()
    };
    assert!(volume("ledger-relay")["emptyDir"].is_object());
    assert_eq!(volume("ledger-config")["configMap"]["optional"], true);
    assert_eq!(
        pod["containers"][1]["image"],
        "ghcr.io/hsn-io/hsn-ledger:0.1.0"
    );
    let ledger_sc = &pod["containers"][1]["securityContext"];
    assert_eq!(ledger_sc["capabilities"]["drop"][0], "ALL");
    assert!(ledger_sc["capabilities"]["add"].is_null(), "no capability");
    assert_eq!(ledger_sc["runAsUser"], LEDGER_USER);
    assert_eq!(ledger_sc["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["fsGroup"], LEDGER_USER,
        "its Secrets"
    );
    // Its state directory on the node is handed to it first, by root with CAP_CHOWN alone.
    let init = &pod["initContainers"][0];
    assert_eq!(init["image"], pod["containers"][1]["image"]);
    assert_eq!(init["args"][0], "own-state");
    assert_eq!(init["args"][4], format!("{LEDGER_USER}:{LEDGER_USER}"));
    assert_eq!(
        init["securityContext"]["capabilities"]["add"],
        json!(["CHOWN"])
    );
    assert_eq!(
        init["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(
        init["volumeMounts"][0],
        pod["containers"][1]["volumeMounts"][0]
    );
    // No certificates known yet: no TLS Secret, no CA ConfigMap (the pods wait for them).
    assert!(
        !objs
            .iter()
            .any(|d| d.name == TLS_SECRET || d.name == CA_CONFIGMAP)
    );

    chain.tls = Some(LedgerTls {
        ca_pem: "CA".into(),
        certs: BTreeMap::from([(
            "a".to_string(),
            BTreeMap::from([(
                0,
                ServerCert {
                    cert_pem: "C0".into(),
                    key_pem: "K0".into(),
                },
            )]),
        )]),
    });
    let objs = member_objects(&network(), &owner("a"), &plan(), &peers, &chain);
    let secret = objs.iter().find(|d| d.name == TLS_SECRET).expect("certs");
    let data = &secret.body()["data"];
    let decoded = |k: &str| {
        use k8s_openapi::ByteString;
        let b: ByteString = serde_json::from_value(data[k].clone()).unwrap();
        String::from_utf8(b.0).unwrap()
    };
    assert_eq!(
        (
            decoded("hsn-super-node-0.crt"),
            decoded("hsn-super-node-0.key")
        ),
        ("C0".into(), "K0".into())
    );
    let ca = objs.iter().find(|d| d.name == CA_CONFIGMAP).expect("CA");
    assert_eq!(ca.body()["data"]["ca.crt"], "CA");
    // A cluster whose certificates are unknown gets the CA, and no certificate Secret.
    let b = member_objects(&network(), &owner("b"), &plan(), &peers, &chain);
    assert!(b.iter().any(|d| d.name == CA_CONFIGMAP));
    assert!(!b.iter().any(|d| d.name == TLS_SECRET));
    let edge = b.iter().find(|d| d.resource.kind == "DaemonSet").unwrap();
    let edge_args: Vec<String> = serde_json::from_value(
        edge.body()["spec"]["template"]["spec"]["containers"][0]["args"].clone(),
    )
    .unwrap();
    assert_eq!(
        after(&edge_args, "--ledger-ca"),
        "/etc/hsn/ledger-ca/ca.crt"
    );

    // Turned off: plain text everywhere, no certificate mounted.
    let mut plain = network();
    plain.spec.super_nodes.ledger_tls = false;
    let objs = member_objects(&plain, &owner("a"), &plan(), &peers, &Chain::default());
    let sts = objs
        .iter()
        .find(|d| d.resource.kind == "StatefulSet")
        .unwrap();
    let pod = &sts.body()["spec"]["template"]["spec"];
    let joined = pod.to_string();
    assert!(
        !joined.contains("--ledger-ca") && !joined.contains("--tls-cert"),
        "{joined}"
    );
    let agent: Vec<String> = serde_json::from_value(pod["containers"][0]["args"].clone()).unwrap();
    assert_eq!(after(&agent, "--ledger-endpoint"), "http://127.0.0.1:7443");
}

#[test]
fn the_ledger_runs_as_its_images_user() {
    let dockerfile = include_str!("../../../ledger/Dockerfile");
    assert!(
        dockerfile
            .lines()
            .any(|l| l.trim() == format!("USER {LEDGER_USER}:{LEDGER_USER}")),
        "ledger/Dockerfile's USER is not LEDGER_USER ({LEDGER_USER})"
    );
}
