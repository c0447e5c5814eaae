#!/usr/bin/env bash
# The local demo: a hub and two MEC clusters (real control planes built by
# hack/build-tools.sh; as root, real nodes in each member, two for super nodes and one for
# an edge, else kwok's fake nodes), the HSN CRDs and the realistic example network; as
# root, UE traffic through the operator's pods into the network's chain, and a failover.
#   hack/demo.sh up     create (or reuse) the clusters and apply everything
#   hack/demo.sh down   delete the clusters
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/hack/lib.sh"
bin="$root/bin"
demo="$root/.demo"

hub=hsn-hub
# member cluster name -> region; each region has zones <region>-1a and <region>-1b.
declare -A members=([hsn-mec-eu-west]=eu-west [hsn-mec-eu-north]=eu-north)
nodes_per_zone=5

kubeconfig() { echo "$demo/$1.kubeconfig"; }
source "$root/hack/demo-datapath.sh"
k() { local c=$1; shift; "$bin/kubectl" --kubeconfig "$(kubeconfig "$c")" "$@"; }

# The clusters and nodes live in one process, hsn-demo-env (testkit/src/bin): real control
# planes (kwokctl), kwok's fake nodes for scale and, when this runs as root with the real-node
# packages, one real node per member (containerd + kubelet in namespaces of their own) where
# the operator's IoT edge pod really runs. Stopping that process tears it all down.
start_env() {
  stop_env
  local real=(--nodes-per-zone "$nodes_per_zone")
  if [ "$(id -u)" -eq 0 ]; then
    real=(--super-nodes 2 --edge-nodes 1 --images "$root/target/debug")
  else
    step "not root: kwok nodes only (real nodes need namespaces, mounts and cgroups)"
  fi
  local args=(--dir "$demo" --hub "$hub" "${real[@]}")
  for m in "${!members[@]}"; do args+=(--member "$m=${members[$m]}"); done
  step "starting the clusters: $hub, ${!members[*]} (control planes, kwok nodes, real nodes; about 1 min)"
  "$root/target/debug/hsn-demo-env" "${args[@]}" >"$demo/env.log" 2>&1 &
  echo $! >"$demo/env.pid"
  for _ in $(seq 600); do
    [ -f "$demo/env.ready" ] && return 0
    kill -0 "$(cat "$demo/env.pid")" 2>/dev/null ||
      { tail -n 30 "$demo/env.log" >&2; die "the clusters did not come up (log: $demo/env.log)"; }
    sleep 0.5
  done
  die "the clusters were not up after 5 min (log: $demo/env.log)"
}

stop_env() {
  [ -f "$demo/env.pid" ] || return 0
  local pid
  pid=$(cat "$demo/env.pid")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    step "clusters and nodes stopped"
  fi
  rm -f "$demo/env.pid" "$demo/env.ready"
}

# The real nodes and the operator's pods on them: "<member> <node> <netns> <address>" lines.
show_real_nodes() {
  [ -s "$demo/real-nodes" ] || return 0
  local kind member node netns addr prog
  while read -r kind member node netns addr _; do
    case $kind in super | edge) ;; *) continue ;; esac
    echo
    step "$member: real $kind node $node ($addr): the operator's pods, running under its kubelet"
    k "$member" -n hsn-metro get pods -o wide --field-selector "spec.nodeName=$node"
    prog=$(ip -n "$netns" -d link show eth0 | grep -o 'prog/xdp id [0-9]*' || echo "none")
    echo "    XDP on the node's eth0: $prog (attached by the agent in that pod)"
  done <"$demo/real-nodes"
}

up() {
  mkdir -p "$demo"
  step "building the operator, the agent and the demo's environment (first build: about 3 min)"
  (cd "$root" && cargo build -q -p hsn-operator -p hsn-agent -p hsn-ledger -p hsn-testkit --features hsn-testkit/operator --bin hsn-operator --bin hsn-agent --bin hsn-ledger --bin hsn-demo-env)
  start_env
  for m in "${!members[@]}"; do
    step "$m: $(k "$m" get nodes --no-headers | grep -c ' Ready') nodes Ready in region ${members[$m]} ($(awk -v m="$m" '$2 == m' "$demo/real-nodes" 2>/dev/null | grep -cv '^ue' || true) real)"
  done

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

  # The example meters in 60 s epochs, final six hours later; the demo uses 10 s epochs and
  # a two-minute late window so records reach the chain, and are final, while you watch (both are
  # immutable: these are the values at creation).
  step "hub: applying crds/examples/realistic.yaml (with epochSeconds: $dp_epoch, lateWindowSeconds: $dp_late for the demo)"
  sed -e "s/epochSeconds: 60/epochSeconds: $dp_epoch/" \
    -e "s/^\( *\)maxRecordsPerBlock: \(.*\)/\1maxRecordsPerBlock: \2\n\1lateWindowSeconds: $dp_late/" \
    "$root/crds/examples/realistic.yaml" | k "$hub" apply -f -

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
  step "agents (kubectl -n edge-net get hsnnodes), at most 12 of $(k "$hub" -n edge-net get hsnnodes --no-headers | wc -l):"
  k "$hub" -n edge-net get hsnnodes >"$demo/hsnnodes.txt"
  head -n 13 "$demo/hsnnodes.txt"
  for m in "${!members[@]}"; do
    echo
    step "$m: what the operator applied (namespace hsn-metro):"
    k "$m" -n hsn-metro get statefulsets,daemonsets,configmaps,services
  done
  show_real_nodes
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
  dp_member_down
  dp_summary
  cat <<EOF2

The nodes, their pods and the site keep running ($demo/real-nodes lists the nodes' and
the site's network namespaces and addresses).
An agent's logs:  PATH=$bin:\$PATH kubectl --kubeconfig $(kubeconfig hsn-mec-eu-west) -n hsn-metro logs -l hsn.io/role=edge
The chain:        $root/target/debug/hsnctl ledger --addr https://${dp_ledger_addr:-<super node address>}:7443 --ca $dp_dir/ca.crt --tls-domain ledger.metro.hsn.internal blocks
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
  stop_env
  rm -rf "$demo"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) die "usage: hack/demo.sh up|down" ;;
esac
