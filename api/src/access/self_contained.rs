//! Which member kubeconfigs are accepted: self-contained ones. A kubeconfig Secret is data
//! written by whoever may write Secrets in the operator's namespace; it must not become a
//! file read, a command or a detour of the credentials inside the process that reads it (the
//! operator, `hsnctl`). So everything a client needs is inline (server, CA, token or client
//! certificate and key), and every field of kube's [`Kubeconfig`] is decided here, one by one:
//! the destructuring below has no `..`, so a kube upgrade that models a new field does not
//! compile until it is decided too; fields kube does not model (its `other` maps) are refused
//! rather than ignored.

use std::collections::BTreeMap;
use std::fmt;

use kube::config::{
    AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext, Preferences,
};

/// Where in a kubeconfig a refused field sits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The top level.
    Top,
    /// `preferences`.
    Preferences,
    /// The `users[]` entry of this name.
    User(String),
    /// The `clusters[]` entry of this name.
    Cluster(String),
    /// The `contexts[]` entry of this name.
    Context(String),
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Top => f.write_str("the kubeconfig"),
            Self::Preferences => f.write_str("preferences"),
            Self::User(name) => write!(f, "user {name:?}"),
            Self::Cluster(name) => write!(f, "cluster {name:?}"),
            Self::Context(name) => write!(f, "context {name:?}"),
        }
    }
}

/// One field that keeps a kubeconfig from being self-contained.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{entry} sets {field}: {why}")]
pub struct Refusal {
    /// The entry the field sits in.
    pub entry: Entry,
    /// The field, as spelled in the kubeconfig (`exec`, `tokenFile`, ...).
    pub field: String,
    /// Why it is refused, and what to use instead.
    pub why: &'static str,
}

const RUNS_A_PROGRAM: &str = "runs a program inside the operator; use an inline token or \
                              client-certificate-data/client-key-data";
const AUTH_PROVIDER: &str = "runs a program (gcp cmd-path) or calls an identity provider from \
                             the operator; use an inline token or client-certificate-data/client-key-data";
const READS_A_FILE: &str = "makes the operator read a file of its own; put the content inline \
                            (kubectl config view --flatten --minify --raw)";
const TOKEN_FILE: &str = "makes the operator read a file of its own and send it as a token; \
                          put the token inline (token)";
const PROXY: &str = "sends the member's traffic and credentials through another host; a proxy \
                     is the operator's environment (HTTPS_PROXY), not a Secret's";
const IMPERSONATES: &str = "impersonation: the operator acts in a member exactly as the \
                            credential in the Secret, so give it that identity's credential";
const NOT_HTTPS: &str = "must be an https:// URL: over http the credentials travel in clear";
const UNKNOWN: &str = "not a kubeconfig field the operator knows; refused rather than ignored";

/// Every refused field of `kubeconfig`, in the order they appear; empty when it is
/// self-contained. Every entry counts, not only the current context's: a Secret holds one
/// cluster's access and nothing else.
pub fn refusals(kubeconfig: &Kubeconfig) -> Vec<Refusal> {
    let Kubeconfig {
        preferences,
        clusters,
        auth_infos,
        contexts,
        // Names and type metadata.
        current_context: _,
        kind: _,
        api_version: _,
        // Data for other tools: kube reads extensions only for exec plugins, refused below.
        extensions: _,
        other,
    } = kubeconfig;
    let mut out = Vec::new();
    unknown(&mut out, &Entry::Top, other);
    if let Some(Preferences {
        colors: _,
        extensions: _,
        other,
    }) = preferences
    {
        unknown(&mut out, &Entry::Preferences, other);
    }
    for NamedCluster {
        name,
        cluster,
        other,
    } in clusters
    {
        let entry = Entry::Cluster(name.clone());
        unknown(&mut out, &entry, other);
        if let Some(c) = cluster {
            check_cluster(&mut out, &entry, c);
        }
    }
    for NamedAuthInfo {
        name,
        auth_info,
        other,
    } in auth_infos
    {
        let entry = Entry::User(name.clone());
        unknown(&mut out, &entry, other);
        if let Some(user) = auth_info {
            check_user(&mut out, &entry, user);
        }
    }
    for NamedContext {
        name,
        context,
        other,
    } in contexts
    {
        let entry = Entry::Context(name.clone());
        unknown(&mut out, &entry, other);
        if let Some(Context {
            cluster: _,
            user: _,
            namespace: _,
            extensions: _,
            other,
        }) = context
        {
            unknown(&mut out, &entry, other);
        }
    }
    out
}

fn check_cluster(out: &mut Vec<Refusal>, entry: &Entry, cluster: &Cluster) {
    let Cluster {
        server,
        // Inline, or switches of the TLS client: nothing to read or run.
        insecure_skip_tls_verify: _,
        certificate_authority_data: _,
        disable_compression: _,
        tls_server_name: _,
        extensions: _,
        certificate_authority,
        proxy_url,
        other,
    } = cluster;
    let mut refuse = |field: &str, why| out.push(refusal(entry, field, why));
    if server.as_deref().is_some_and(|s| {
        !s.get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"))
    }) {
        refuse("server", NOT_HTTPS);
    }
    if certificate_authority.is_some() {
        refuse("certificate-authority", READS_A_FILE);
    }
    if proxy_url.is_some() {
        refuse("proxy-url", PROXY);
    }
    unknown(out, entry, other);
}

fn check_user(out: &mut Vec<Refusal>, entry: &Entry, user: &AuthInfo) {
    let AuthInfo {
        // Inline credentials.
        username: _,
        password: _,
        token: _,
        client_certificate_data: _,
        client_key_data: _,
        extensions: _,
        token_file,
        client_certificate,
        client_key,
        impersonate,
        impersonate_uid,
        impersonate_groups,
        impersonate_user_extra,
        auth_provider,
        exec,
        other,
    } = user;
    let set = [
        ("exec", exec.is_some(), RUNS_A_PROGRAM),
        ("auth-provider", auth_provider.is_some(), AUTH_PROVIDER),
        ("tokenFile", token_file.is_some(), TOKEN_FILE),
        (
            "client-certificate",
            client_certificate.is_some(),
            READS_A_FILE,
        ),
        ("client-key", client_key.is_some(), READS_A_FILE),
        ("as", impersonate.is_some(), IMPERSONATES),
        ("as-uid", impersonate_uid.is_some(), IMPERSONATES),
        ("as-groups", impersonate_groups.is_some(), IMPERSONATES),
        (
            "as-user-extra",
            impersonate_user_extra.is_some(),
            IMPERSONATES,
        ),
    ];
    for (field, present, why) in set {
        if present {
            out.push(refusal(entry, field, why));
        }
    }
    unknown(out, entry, other);
}

fn unknown(out: &mut Vec<Refusal>, entry: &Entry, other: &BTreeMap<String, serde_json::Value>) {
    out.extend(other.keys().map(|key| refusal(entry, key, UNKNOWN)));
}

fn refusal(entry: &Entry, field: &str, why: &'static str) -> Refusal {
    Refusal {
        entry: entry.clone(),
        field: field.to_owned(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-contained kubeconfig with `user` and `cluster` spliced into its entries.
    fn kubeconfig(user: &str, cluster: &str) -> Kubeconfig {
        let text = format!(
            r#"
apiVersion: v1
kind: Config
preferences: {{}}
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: Y2E=
    tls-server-name: member
    {cluster}
users:
- name: u
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
    {user}
contexts: [{{name: x, context: {{cluster: c, user: u, namespace: default}}}}]
current-context: x
"#
        );
        Kubeconfig::from_yaml(&text).unwrap()
    }

    fn refused(user: &str, cluster: &str) -> Vec<(Entry, String)> {
        refusals(&kubeconfig(user, cluster))
            .into_iter()
            .map(|r| (r.entry, r.field))
            .collect()
    }

    fn user_field(f: &str) -> Vec<(Entry, String)> {
        vec![(Entry::User("u".into()), f.into())]
    }

    fn cluster_field(f: &str) -> Vec<(Entry, String)> {
        vec![(Entry::Cluster("c".into()), f.into())]
    }

    #[test]
    fn inline_credentials_pass() {
        assert_eq!(refused("", ""), vec![]);
        assert_eq!(
            refused("token: t", "insecure-skip-tls-verify: true"),
            vec![]
        );
        assert_eq!(refused("username: a\n    password: b", ""), vec![]);
        let extensions = "extensions: [{name: tool, extension: {any: thing}}]";
        assert_eq!(refused(extensions, extensions), vec![]);
        assert_eq!(refused("", "disable-compression: true"), vec![]);
    }

    #[test]
    fn kubes_own_serialization_of_an_accepted_kubeconfig_is_accepted() {
        // hsn-testkit rewrites member Secrets this way (pointing them elsewhere for an outage).
        let json = serde_json::to_string(&kubeconfig("token: t", "")).unwrap();
        assert_eq!(refusals(&Kubeconfig::from_yaml(&json).unwrap()), vec![]);
    }

    #[test]
    fn programs_are_refused() {
        let exec = "exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, 'touch /tmp/x']}";
        assert_eq!(refused(exec, ""), user_field("exec"));
        let gcp = "auth-provider: {name: gcp, config: {cmd-path: /bin/true}}";
        assert_eq!(refused(gcp, ""), user_field("auth-provider"));
        let oidc = "auth-provider: {name: oidc, config: {idp-issuer-url: https://idp}}";
        assert_eq!(refused(oidc, ""), user_field("auth-provider"));
    }

    #[test]
    fn file_references_are_refused() {
        assert_eq!(
            refused("tokenFile: /etc/shadow", ""),
            user_field("tokenFile")
        );
        // A token next to it takes precedence in kube, but the file is refused all the same.
        assert_eq!(
            refused("token: t\n    tokenFile: /x", ""),
            user_field("tokenFile")
        );
        assert_eq!(
            refused("client-certificate: /x.crt", ""),
            user_field("client-certificate")
        );
        assert_eq!(refused("client-key: /x.key", ""), user_field("client-key"));
        assert_eq!(
            refused("", "certificate-authority: /ca.crt"),
            cluster_field("certificate-authority")
        );
    }

    #[test]
    fn proxies_impersonation_and_plain_http_are_refused() {
        assert_eq!(
            refused("", "proxy-url: socks5://10.0.0.1:1080"),
            cluster_field("proxy-url")
        );
        assert_eq!(refused("as: system:admin", ""), user_field("as"));
        assert_eq!(refused("as-uid: '1'", ""), user_field("as-uid"));
        assert_eq!(
            refused("as-groups: [system:masters]", ""),
            user_field("as-groups")
        );
        assert_eq!(
            refused("as-user-extra: {scopes: [a]}", ""),
            user_field("as-user-extra")
        );
        let http = Kubeconfig::from_yaml(
            "clusters: [{name: c, cluster: {server: 'http://10.0.0.1:8080'}}]",
        )
        .unwrap();
        let r = refusals(&http);
        assert_eq!(
            (r[0].entry.clone(), r[0].field.as_str()),
            (Entry::Cluster("c".into()), "server")
        );
        let upper =
            Kubeconfig::from_yaml("clusters: [{name: c, cluster: {server: 'HTTPS://h:1'}}]")
                .unwrap();
        assert_eq!(refusals(&upper), vec![]);
    }

    #[test]
    fn unknown_fields_are_refused_wherever_they_are() {
        assert_eq!(
            refused("client-certificate-path: /x", ""),
            user_field("client-certificate-path")
        );
        assert_eq!(refused("", "ca-file: /x"), cluster_field("ca-file"));
        let text = "
clusters: [{name: c, cluster: {server: 'https://h'}, kubeconfig-path: /x}]
contexts: [{name: x, context: {cluster: c, helper: /bin/sh}}]
preferences: {shell: /bin/sh}
plugins: {}
";
        let found: Vec<(Entry, String)> = refusals(&Kubeconfig::from_yaml(text).unwrap())
            .into_iter()
            .map(|r| (r.entry, r.field))
            .collect();
        assert_eq!(
            found,
            vec![
                (Entry::Top, "plugins".into()),
                (Entry::Preferences, "shell".into()),
                (Entry::Cluster("c".into()), "kubeconfig-path".into()),
                (Entry::Context("x".into()), "helper".into()),
            ]
        );
    }

    #[test]
    fn every_entry_counts_and_the_message_names_field_and_entry() {
        let text = "
clusters: [{name: c, cluster: {server: 'https://h'}}]
users:
- {name: good, user: {token: t}}
- {name: laptop, user: {exec: {command: aws}, tokenFile: /t}}
contexts: [{name: x, context: {cluster: c, user: good}}]
current-context: x
";
        let r = refusals(&Kubeconfig::from_yaml(text).unwrap());
        let messages: Vec<String> = r.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].starts_with("user \"laptop\" sets exec: runs a program"),
            "{}",
            messages[0]
        );
        assert!(
            messages[1].starts_with("user \"laptop\" sets tokenFile: "),
            "{}",
            messages[1]
        );
    }
}
