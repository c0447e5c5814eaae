#!/usr/bin/env bash
# The e2e suite's clusters on kind: a hub and two MEC clusters (kind/*.yaml), the images of
# `make images` loaded, the chart installed in the hub, the MEC clusters registered.
# Needs docker, kind, kubectl and helm on PATH (`tools` installs pinned ones).
#
#   hack/kind-up.sh up        create the clusters (existing ones are reused) and install
#   hack/kind-up.sh env       the HSN_E2E_* variables that point the e2e suite at them
#   hack/kind-up.sh logs DIR  kind's node logs, objects, events and pod logs into DIR
#   hack/kind-up.sh down      delete the clusters
#   hack/kind-up.sh tools DIR download kind, kubectl and helm (pinned, checksummed) into DIR
#
# Kubeconfigs go to $HSN_KIND_DIR (default ${TMPDIR:-/tmp}/hsn-kind); images are
# ghcr.io/hsn-io/hsn-{operator,agent}:$IMAGE_TAG (default 0.1.0, as in the Makefile).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=kind/versions.env
source "$root/kind/versions.env"
IMAGE_TAG=${IMAGE_TAG:-0.1.0}
dir=${HSN_KIND_DIR:-${TMPDIR:-/tmp}/hsn-kind}
ns=hsn-system
hub=hub
# MecCluster names; the kind cluster of <m> is hsn-<m>, from kind/<m>.yaml, region <m> minus "mec-".
members=(mec-eu-west mec-eu-north)
operator_image=ghcr.io/hsn-io/hsn-operator:$IMAGE_TAG
agent_image=ghcr.io/hsn-io/hsn-agent:$IMAGE_TAG

step() { echo "==> $*"; }
die() { echo "hack/kind-up.sh: $*" >&2; exit 1; }
need() { for c in "$@"; do command -v "$c" >/dev/null || die "$c is required (hack/kind-up.sh tools DIR installs kind, kubectl, helm)"; done; }
kc() { kubectl --kubeconfig "$dir/$1.kubeconfig" "${@:2}"; }
exists() { kind get clusters 2>/dev/null | grep -qx "hsn-$1"; }

create() { # <name>
  if exists "$1"; then
    step "hsn-$1: exists, reused"
  else
    step "hsn-$1: creating from kind/$1.yaml"
    kind create cluster --config "$root/kind/$1.yaml" --image "$KIND_NODE_IMAGE" --wait 180s
  fi
  kind get kubeconfig --name "hsn-$1" >"$dir/$1.kubeconfig"
}

# Edge agents pin their counters in bpffs and run unprivileged (no CAP_SYS_ADMIN to mount it);
# a kind node is a container, so mount one per node. Then keep super nodes off the nodes set
# aside for edge agents: both kinds of agent use the host network.
prepare_nodes() { # <member>
  local node
  kc "$1" wait --for=condition=Ready nodes --all --timeout=180s >/dev/null
  for node in $(kind get nodes --name "hsn-$1"); do
    docker exec "$node" sh -c 'grep -qs " /sys/fs/bpf bpf " /proc/mounts ||
      mount -t bpf -o nosuid,nodev,noexec,mode=0700 bpf /sys/fs/bpf'
  done
  kc "$1" taint nodes -l hsn.io/agents=edge hsn.io/agents=edge:NoSchedule --overwrite >/dev/null
  step "hsn-$1: bpffs on every node; edge nodes tainted hsn.io/agents=edge:NoSchedule"
}

load() { # <image> <cluster>
  docker image inspect "$1" >/dev/null 2>&1 || die "image $1 not found: run make images (IMAGE_TAG=$IMAGE_TAG)"
  kind load docker-image "$1" --name "hsn-$2"
}

install_chart() {
  step "hub: helm upgrade --install hsn charts/hsn (image tag $IMAGE_TAG)"
  helm upgrade --install hsn "$root/charts/hsn" --kubeconfig "$dir/$hub.kubeconfig" \
    -n "$ns" --create-namespace -f "$root/kind/values-e2e.yaml" --set image.tag="$IMAGE_TAG"
  # Not `helm --wait`: a standby replica is never Ready (/readyz is the leader's), so the
  # Deployment never reports all replicas available. One Ready pod is the leader.
  local deadline=$((SECONDS + 300))
  until kc "$hub" -n "$ns" get pods -l app.kubernetes.io/name=hsn-operator \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -qx True; do
    [ "$SECONDS" -lt "$deadline" ] || { kc "$hub" -n "$ns" get pods -o wide >&2; die "no operator pod Ready after 300 s"; }
    sleep 2
  done
  step "hub: the operator leads"
}

# The hub's identity in a member, as a user's install makes it: the chart in mode member
# (ServiceAccount, token, ClusterRole with exactly the member rules; no CRDs), turned into the
# self-contained kubeconfig the operator accepts, with the server address the hub reaches.
member_access() { # <member> <out>
  local internal="$dir/$1.internal.kubeconfig" secret=hsn-member-hub-access-token token="" ca server
  kind get kubeconfig --internal --name "hsn-$1" >"$internal"
  helm upgrade --install hsn-member "$root/charts/hsn" --kubeconfig "$dir/$1.kubeconfig" \
    -n "$ns" --create-namespace --skip-crds --set mode=member >/dev/null
  local deadline=$((SECONDS + 60))
  until token=$(kc "$1" -n "$ns" get secret "$secret" -o jsonpath='{.data.token}' 2>/dev/null) && [ -n "$token" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "hsn-$1: no token in $ns/$secret after 60 s"
    sleep 1
  done
  ca=$(kc "$1" -n "$ns" get secret "$secret" -o jsonpath='{.data.ca\.crt}')
  server=$(kubectl --kubeconfig "$internal" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  cat >"$2" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: $1, cluster: {server: "$server", certificate-authority-data: $ca}}]
users: [{name: hsn-hub, user: {token: "$(printf '%s' "$token" | base64 -d)"}}]
contexts: [{name: $1, context: {cluster: $1, user: hsn-hub}}]
current-context: $1
YAML
  step "hsn-$1: the hub's identity (chart mode member) in $2"
}

register() { # <member>
  local access="$dir/$1.hub-access.kubeconfig"
  member_access "$1" "$access"
  "$root/hack/kind-register.sh" "$dir/$hub.kubeconfig" "$1" "${1#mec-}" "$access"
  kc "$hub" wait --for=condition=Ready "meccluster/$1" --timeout=180s
}

up() {
  need docker kind kubectl helm
  mkdir -p "$dir"
  local m
  for m in "$hub" "${members[@]}"; do create "$m"; done
  for m in "${members[@]}"; do prepare_nodes "$m"; done
  step "loading $operator_image into hsn-$hub, $agent_image into the MEC clusters"
  load "$operator_image" "$hub"
  for m in "${members[@]}"; do load "$agent_image" "$m"; done
  install_chart
  for m in "${members[@]}"; do register "$m"; done
  step "ready; for the e2e suite (make kind-test sets them itself):"
  env_vars
}

env_vars() {
  local list="" m
  for m in "${members[@]}"; do list+="${list:+,}$m=$dir/$m.kubeconfig"; done
  echo "export HSN_E2E_HUB_KUBECONFIG=$dir/$hub.kubeconfig"
  echo "export HSN_E2E_MEMBERS=$list"
  echo "export HSN_E2E_OPERATOR=external"
  echo "export HSN_E2E_NODE_EXEC='docker exec'"
}

logs() { # <dir>
  local out=${1:?usage: hack/kind-up.sh logs DIR} m
  need kind kubectl
  mkdir -p "$out"
  for m in "$hub" "${members[@]}"; do
    exists "$m" || continue
    kind export logs "$out/kind-$m" --name "hsn-$m" >/dev/null 2>&1 || true
    {
      kc "$m" get nodes -o wide --show-labels
      kc "$m" get pods -A -o wide
      kc "$m" get events -A --sort-by=.lastTimestamp
    } >"$out/$m.txt" 2>&1 || true
    # The operator in the hub, the agents in the members, each line prefixed with its pod.
    local pod_ns
    for pod_ns in $(kc "$m" get pods -A -l 'app.kubernetes.io/name=hsn-operator' \
      -o jsonpath='{range .items[*]}{.metadata.namespace}{"\n"}{end}' 2>/dev/null | sort -u); do
      kc "$m" -n "$pod_ns" logs -l 'app.kubernetes.io/name=hsn-operator' --all-containers \
        --prefix --tail=-1 >>"$out/$m-operator.log" 2>&1 || true
    done
    for pod_ns in $(kc "$m" get pods -A -l 'hsn.io/role' \
      -o jsonpath='{range .items[*]}{.metadata.namespace}{"\n"}{end}' 2>/dev/null | sort -u); do
      kc "$m" -n "$pod_ns" logs -l 'hsn.io/role' --all-containers --prefix --tail=2000 \
        >>"$out/$m-agents.log" 2>&1 || true
    done
  done
  kc "$hub" get meccluster,hsnnetwork,hsnnode -A -o yaml >"$out/hub-hsn-objects.yaml" 2>&1 || true
  step "logs in $out"
}

down() {
  need kind
  local m
  for m in "$hub" "${members[@]}"; do
    if exists "$m"; then kind delete cluster --name "hsn-$m"; fi
  done
}

# Pinned downloads, each checked against the checksum its project publishes beside it.
tools() { # <dir>
  local out=${1:?usage: hack/kind-up.sh tools DIR} arch
  # shellcheck source=hack/versions.env
  source "$root/hack/versions.env"
  case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) die "unsupported machine $(uname -m)" ;; esac
  mkdir -p "$out"
  local tmp; tmp=$(mktemp -d)
  fetch() { curl -fsSL --retry 3 -o "$1" "$2"; }

  fetch "$tmp/kind" "https://github.com/kubernetes-sigs/kind/releases/download/$KIND_VERSION/kind-linux-$arch"
  fetch "$tmp/kind.sha256" "https://github.com/kubernetes-sigs/kind/releases/download/$KIND_VERSION/kind-linux-$arch.sha256sum"
  echo "$(cut -d' ' -f1 "$tmp/kind.sha256")  $tmp/kind" | sha256sum -c --quiet

  fetch "$tmp/kubectl" "https://dl.k8s.io/release/$KUBERNETES_VERSION/bin/linux/$arch/kubectl"
  fetch "$tmp/kubectl.sha256" "https://dl.k8s.io/release/$KUBERNETES_VERSION/bin/linux/$arch/kubectl.sha256"
  echo "$(cat "$tmp/kubectl.sha256")  $tmp/kubectl" | sha256sum -c --quiet

  local helm_tgz="helm-$HELM_VERSION-linux-$arch.tar.gz"
  fetch "$tmp/$helm_tgz" "https://get.helm.sh/$helm_tgz"
  fetch "$tmp/helm.sha256" "https://get.helm.sh/$helm_tgz.sha256sum"
  echo "$(cut -d' ' -f1 "$tmp/helm.sha256")  $tmp/$helm_tgz" | sha256sum -c --quiet
  tar -xzf "$tmp/$helm_tgz" -C "$tmp" "linux-$arch/helm"

  command install -m 0755 "$tmp/kind" "$tmp/kubectl" "$tmp/linux-$arch/helm" "$out/"
  rm -rf "$tmp"
  step "kind $KIND_VERSION, kubectl $KUBERNETES_VERSION, helm $HELM_VERSION in $out"
}

case "${1:-}" in
  up) up ;;
  env) env_vars ;;
  logs) logs "${2:-}" ;;
  down) down ;;
  tools) tools "${2:-}" ;;
  *) echo "usage: $0 up | env | logs DIR | down | tools DIR" >&2; exit 2 ;;
esac
