#!/usr/bin/env bash
# The local demo: a hub and two MEC clusters (kwok fake kubelets, real control planes built
# by hack/build-tools.sh), the HSN CRDs and the realistic example network.
#   hack/demo.sh up     create (or reuse) the clusters and apply everything
#   hack/demo.sh down   delete the clusters
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/hack/lib.sh"
bin="$root/bin"
demo="$root/.demo"
export KWOK_WORKDIR="$demo/kwok"

hub=hsn-hub
# member cluster name -> region; each region has zones <region>-1a and <region>-1b.
declare -A members=([hsn-mec-eu-west]=eu-west [hsn-mec-eu-north]=eu-north)
nodes_per_zone=5

kubeconfig() { echo "$demo/$1.kubeconfig"; }
source "$root/hack/demo-datapath.sh"
k() { local c=$1; shift; "$bin/kubectl" --kubeconfig "$(kubeconfig "$c")" "$@"; }

# kwokctl reads $KWOK_WORKDIR/kwok.yaml: local binaries only (it must never download) and
# every listener on loopback.
write_kwok_config() {
  mkdir -p "$KWOK_WORKDIR"
  cat >"$KWOK_WORKDIR/kwok.yaml" <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  etcdBinary: $bin/etcd
  kubeApiserverBinary: $bin/kube-apiserver
  kubeControllerManagerBinary: $bin/kube-controller-manager
  kubeSchedulerBinary: $bin/kube-scheduler
  kwokControllerBinary: $bin/kwok
  kubectlBinary: $bin/kubectl
YAML
}

cluster_exists() { "$bin/kwokctl" get clusters 2>/dev/null | grep -qx "$1"; }

create_cluster() {
  local name=$1
  if cluster_exists "$name"; then
    step "$name: already running"
    "$bin/kwokctl" start cluster --name "$name" >/dev/null 2>&1 || true
    return
  fi
  step "$name: creating (etcd, kube-apiserver, controller-manager, scheduler, kwok; about 30 s)"
  "$bin/kwokctl" create cluster --name "$name" \
    --kubeconfig "$(kubeconfig "$name")" \
    --wait 3m >"$demo/$name.create.log" 2>&1 ||
    { tail -n 30 "$demo/$name.create.log" >&2; die "creating $name failed (log: $demo/$name.create.log)"; }
}

# fake_nodes <cluster> <region>: Node objects kwok keeps Ready, labelled by region and zone;
# the first four of each zone are edge-capable, alternating broadband and IoT slices.
fake_nodes() {
  local cluster=$1 region=$2 zone i slice
  for zone in "$region-1a" "$region-1b"; do
    for i in $(seq 1 "$nodes_per_zone"); do
      slice=embb; [ $((i % 2)) -eq 0 ] && slice=mmtc
      cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: $zone-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/hostname: $zone-node-$i
    topology.kubernetes.io/region: $region
    topology.kubernetes.io/zone: $zone
$( [ "$i" -le 4 ] && printf '    hsn.io/edge: "true"\n    hsn.io/slice: %s\n' "$slice" )
status:
  allocatable: {cpu: "8", memory: 32Gi, pods: "110"}
  capacity: {cpu: "8", memory: 32Gi, pods: "110"}
YAML
    done
  done
}

up() {
  mkdir -p "$demo"
  write_kwok_config
  create_cluster "$hub"
  for m in "${!members[@]}"; do create_cluster "$m"; done

  for m in "${!members[@]}"; do
    fake_nodes "$m" "${members[$m]}" | k "$m" apply -f - >/dev/null
    k "$m" wait --for=condition=Ready node --all --timeout=120s >/dev/null
    step "$m: $(k "$m" get nodes --no-headers | wc -l) fake nodes Ready in region ${members[$m]}"
  done

  # The hub runs the control plane only; one node so that its MecCluster reads Ready.
  k "$hub" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata:
  name: hub-node-1
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: hub-node-1, topology.kubernetes.io/region: eu-central, topology.kubernetes.io/zone: eu-central-1a}
YAML

  step "hub: installing the HSN CRDs"
  k "$hub" apply -f "$root/crds/" >/dev/null
  k "$hub" wait --for=condition=Established crd/mecclusters.hsn.io crd/hsnnetworks.hsn.io crd/hsnnodes.hsn.io --timeout=60s >/dev/null

  step "hub: kubeconfig Secrets for the member clusters"
  k "$hub" create namespace hsn-system --dry-run=client -o yaml | k "$hub" apply -f - >/dev/null
  for m in "${!members[@]}"; do
    # The operator accepts only self-contained kubeconfigs; kwokctl's names its certificate
    # files, which --flatten puts inline.
    k "$m" config view --raw --flatten --minify >"$demo/$m.self-contained.kubeconfig"
    k "$hub" -n hsn-system create secret generic "${m#hsn-}" \
      --from-file=kubeconfig="$demo/$m.self-contained.kubeconfig" \
      --dry-run=client -o yaml | k "$hub" apply -f - >/dev/null
  done

  start_operator

  # The example meters in 60 s epochs; the demo uses 10 s ones so records reach the
  # ledgers while you watch (epochSeconds is immutable: this is the value at creation).
  step "hub: applying crds/examples/realistic.yaml (with epochSeconds: $dp_epoch for the demo)"
  sed "s/epochSeconds: 60/epochSeconds: $dp_epoch/" "$root/crds/examples/realistic.yaml" | k "$hub" apply -f -

  step "waiting for the operator to make network metro Ready (about 10 s)"
  if ! k "$hub" -n edge-net wait --for=condition=Ready hsnnetwork/metro --timeout=180s >/dev/null; then
    k "$hub" -n edge-net get hsnnetwork metro -o yaml | sed -n '/^status:/,$p' >&2
    tail -n 30 "$demo/operator.log" >&2
    die "network metro did not become Ready (operator log: $demo/operator.log)"
  fi

  echo
  step "what the hub holds (kubectl get mec,hsn -A):"
  k "$hub" get mec,hsn -A -o wide
  echo
  step "agents (kubectl -n edge-net get hsnnodes), first 12 of $(k "$hub" -n edge-net get hsnnodes --no-headers | wc -l):"
  k "$hub" -n edge-net get hsnnodes >"$demo/hsnnodes.txt"
  head -n 13 "$demo/hsnnodes.txt"
  for m in "${!members[@]}"; do
    echo
    step "$m: what the operator applied (namespace hsn-metro):"
    k "$m" -n hsn-metro get statefulsets,daemonsets,configmaps,services
  done
  cat <<EOF2

The clusters keep running. To use them:
  export KUBECONFIG=$(kubeconfig "$hub")          # the hub
  export KUBECONFIG=$(kubeconfig hsn-mec-eu-west)  # MEC cluster eu-west
  export KUBECONFIG=$(kubeconfig hsn-mec-eu-north) # MEC cluster eu-north
  PATH=$bin:\$PATH kubectl get mec,hsn -A
Stop them with: make demo-down
The operator runs in the background (log: $demo/operator.log, metrics: http://127.0.0.1:$metrics_port/metrics).
EOF2
  dp_up
  hsnctl_views
  dp_story
  dp_failover
  dp_summary
  cat <<EOF2

Agents, ledgers and namespaces keep running (logs: $dp_dir/*.log; list: ip netns list).
An agent's metrics: ip netns exec hd-w-e1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/9100; printf "GET /metrics HTTP/1.0\\r\\n\\r\\n" >&3; cat <&3'
A ledger:         ip netns exec hd-w-s1 $root/target/debug/hsnctl ledger --addr http://10.99.1.2:7443 blocks
Stop everything:  make demo-down
EOF2
}

# The network as hsnctl shows it: networks, nodes, routes (from the hub and the members).
hsnctl_views() {
  local ctl="$root/target/debug/hsnctl"
  "$ctl" --help 2>/dev/null | grep -q networks || return 0
  echo
  step "hsnctl networks / nodes / routes:"
  KUBECONFIG=$(kubeconfig "$hub") "$ctl" networks -A || true
  KUBECONFIG=$(kubeconfig "$hub") "$ctl" nodes -n edge-net --network metro || true
  KUBECONFIG=$(kubeconfig "$hub") "$ctl" routes -n edge-net --network metro || true
}

# The operator as a local process against the hub (as it would run in a hub pod).
metrics_port=18080
start_operator() {
  stop_operator
  step "building and starting the operator (first build: about 3 min)"
  (cd "$root" && cargo build -q -p hsn-operator)
  "$root/target/debug/hsn-operator" --kubeconfig "$(kubeconfig "$hub")" \
    --metrics-addr "127.0.0.1:$metrics_port" --probe-interval-seconds 2 --cluster-grace-seconds 10 \
    >"$demo/operator.log" 2>&1 &
  echo $! >"$demo/operator.pid"
}

stop_operator() {
  if [ -f "$demo/operator.pid" ]; then
    kill "$(cat "$demo/operator.pid")" 2>/dev/null || true
    rm -f "$demo/operator.pid"
  fi
}

down() {
  dp_down_quiet 2>/dev/null || true
  stop_operator
  for c in "$hub" "${!members[@]}"; do
    if cluster_exists "$c"; then
      "$bin/kwokctl" delete cluster --name "$c" >/dev/null && step "$c: deleted"
    fi
  done
  # Components kwokctl lost track of (seen: a hub kube-apiserver restarted while its cluster
  # was being deleted) run from the demo's directory: stop them too.
  if pkill -f "$KWOK_WORKDIR/clusters/" 2>/dev/null; then
    for _ in $(seq 20); do
      pgrep -f "$KWOK_WORKDIR/clusters/" >/dev/null || break
      sleep 0.5
    done
    # A kube-apiserver whose etcd is gone can hang in its graceful shutdown.
    pkill -9 -f "$KWOK_WORKDIR/clusters/" 2>/dev/null || true
    step "stopped leftover cluster processes"
  fi
  rm -rf "$demo"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) die "usage: hack/demo.sh up|down" ;;
esac
