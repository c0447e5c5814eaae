# shellcheck shell=bash
# shellcheck disable=SC2154 # demo, hub, root, bin and k() come from hack/demo.sh
# The traffic half of `make demo`, sourced by hack/demo.sh (needs its variables and k()).
#
# Every agent and ledger runs in the pods the operator placed on the real nodes
# (hsn-demo-env): this script starts none and passes them nothing. It plays the site around
# the clusters, as a site's routers and users would:
#
#   ue namespaces   one per edge node, on the nodes' network: its routes send the tenants'
#                   prefixes (v4 and v6) to that edge node, whose XDP program meters them
#                   and tunnels them (IP in IP) to the edge's super node
#   services        the tenants' services (10.20.0.1 acme-video, 10.30.0.1 globex-iot, and
#                   their v6 twins), behind the super nodes: each super node forwards the
#                   tenants' prefixes there (a Kubernetes node with a CNI forwards already)
#
# then sends UDP traffic, reads what the agents metered and observed from their /metrics,
# and the chain from the super pods' ledgers with hsnctl, over the TLS the operator set up.
# Nothing leaves the namespaces hsn-demo-env made.

dp_network=metro
dp_member_ns=hsn-$dp_network
dp_epoch=10
# lateWindowSeconds: an epoch's rewards are final this long after it ends. Records that
# reach the chain later are refused, so it must outlast a stall of the chain (a validator
# lost) plus an agent's retry backoff (up to 60 s); installs keep the default six hours.
dp_late=120
dp_payload=1000 # UDP payload bytes: IPv4 packets are 1028 B at L3, IPv6 1048 B
dp_datagrams=200 # per UE, tenant and family
dp_dir="$demo/datapath"

# MecCluster name -> kwok cluster name (kubeconfig)
declare -A dp_kwok=([mec-eu-west]=hsn-mec-eu-west [mec-eu-north]=hsn-mec-eu-north)
# tenant -> service addresses; the prefixes the sites route
declare -A dp_service=([acme-video]="10.20.0.1 2001:db8:20::1" [globex-iot]="10.30.0.1 2001:db8:30::1")
dp_prefixes=(10.20.0.0/16 10.30.0.0/16 198.51.100.0/24 2001:db8:20::/48 2001:db8:30::/48)

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Lines of $demo/real-nodes of one kind: "<kind> <member> <name> <netns> <v4> <v6>".
dp_list() { awk -v k="$1" '$1 == k' "$demo/real-nodes"; }

dp_supported() {
  if [ "$(id -u)" -ne 0 ] || [ ! -s "$demo/real-nodes" ]; then
    step "skipping the traffic part of the demo: it needs root (real nodes, eBPF, network namespaces)"
    return 1
  fi
}

dp_route() { # <netns> <prefix> <via v4> <via v6>
  case $2 in
    *:*) ip -n "$1" -6 route replace "$2" via "$4" ;;
    *) ip -n "$1" route replace "$2" via "$3" ;;
  esac
}

dp_site() {
  local _k name ns svc4 svc6 svc_ns edge4 edge6 addr
  read -r _k _k _k svc_ns svc4 svc6 < <(dp_list services)
  for addr in 10.20.0.1/32 10.30.0.1/32 2001:db8:20::1/128 2001:db8:30::1/128; do
    ip -n "$svc_ns" addr replace "$addr" dev lo
  done
  while read -r _k _k _k ns _k _k; do
    nsx "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
      net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0
    for p in "${dp_prefixes[@]}"; do dp_route "$ns" "$p" "$svc4" "$svc6"; done
  done < <(dp_list super)
  while read -r _k _k name ns _k _k; do
    read -r _k _k _k _k edge4 edge6 < <(dp_list edge | awk -v n="$name" '$3 == n')
    for p in "${dp_prefixes[@]}"; do dp_route "$ns" "$p" "$edge4" "$edge6"; done
    # A frame the edge redirects in XDP leaves the veth as it came: a checksum left to "the
    # NIC" would stay unfinished (a real NIC finishes it).
    nsx "$ns" ethtool -K eth0 tx off >/dev/null
  done < <(dp_list ue)
  step "the site: $(dp_list ue | wc -l) UE namespaces route the tenants' prefixes via their edge node; $(dp_list super | wc -l) super nodes forward them to the services ($svc4, $svc6)"
}

# dp_programmed <map name>: how many BPF maps of that name hold an entry with a nonzero
# first word (a next hop's ifindex: a programmed tunnel). Map names are the kernel's, so
# this counts every agent's map of that name on this machine. With several maps of the
# name bpftool prints one object per map, its entries under "elements" (v7) or "entries";
# with one, the entries alone.
dp_programmed() {
  bpftool -j map dump name "$1" 2>/dev/null |
    jq '[if (.[0] | has("elements")) then .[] | .elements
         elif (.[0] | has("entries")) then .[] | .entries else . end
         | [.[] | select(.value[0:4] | any(. != "0x00"))] | length > 0]
        | map(select(.)) | length' 2>/dev/null || echo 0
}

# Waits until every edge has programmed its tunnel to its super node, and the super nodes
# their way back to them.
dp_wait_programmed() {
  local want edges supers
  want=$(dp_list edge | wc -l)
  for _ in $(seq 120); do
    edges=$(dp_programmed next_hop)
    supers=$(dp_programmed super_edges)
    [ "$edges" -ge "$want" ] && [ "$supers" -ge 1 ] && break
    sleep 1
  done
  sleep 2 # the super agents resolve the way back to edges they just learned
  step "$edges of $want edges tunnel to their super node; $supers super nodes have a way back to their edges"
}

# dp_send <ue ns> <dst> <count>: <count> UDP datagrams of $dp_payload bytes from bash's /dev/udp.
dp_send() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  nsx "$1" bash -c 'p=$(head -c '"$dp_payload"' /dev/zero | tr "\0" x); for ((i = 0; i < '"$3"'; i++)); do printf %s "$p" >"/dev/udp/'"$2"'/9"; done' 2>/dev/null || true
}

# Sends to both tenants (v4 and v6) from every UE; counts the IP bytes sent per tenant and
# per edge node.
declare -A dp_sent=() dp_sent_by=()
dp_traffic() {
  local label=$1 _k name ns t dst bytes
  # Start just after an epoch begins (the burst takes about a second): an edge and its
  # super close an epoch at slightly different instants, so bytes crossing a boundary can
  # land in different epochs on each side and be judged disputed (README, "Not yet").
  sleep "$(awk -v s="$dp_epoch" -v n="$(date +%s.%N)" 'BEGIN {printf "%.3f", s - (n % s) + 0.3}')"
  step "traffic ($label): every UE sends $dp_datagrams UDP datagrams of $dp_payload B to each tenant's service over IPv4 and IPv6"
  while read -r _k _k name ns _k _k; do
    for t in "${!dp_service[@]}"; do
      for dst in ${dp_service[$t]}; do
        dp_send "$ns" "$dst" "$dp_datagrams"
        case $dst in *:*) bytes=$((dp_payload + 48)) ;; *) bytes=$((dp_payload + 28)) ;; esac
        dp_sent[$t]=$((${dp_sent[$t]:-0} + dp_datagrams * bytes))
        dp_sent_by[$name]=$((${dp_sent_by[$name]:-0} + dp_datagrams * bytes))
      done
    done
  done < <(dp_list ue)
  printf '    sent so far: acme-video %s B, globex-iot %s B (IP bytes, uplink)\n' "${dp_sent[acme-video]}" "${dp_sent[globex-iot]}"
}

# dp_metered <kind> <tenant>: uplink IP bytes the agents of that kind counted, from their
# /metrics on the nodes' addresses (the pods use the host's network).
dp_metered() {
  local kind=$1 tenant=$2 port sum=0 v addr
  [ "$kind" = edge ] && port=7444 || port=7445
  for addr in $(dp_list "$kind" | awk '{print $5}'); do
    v=$(bash -c "exec 3<>/dev/tcp/$addr/$port && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3" 2>/dev/null |
      awk -v t="tenant=\"$tenant\"" 'index($0, "hsn_agent_tenant_bytes_total{") == 1 && index($0, t) && index($0, "direction=\"uplink\"") {s += $NF} END {printf "%d", s}')
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

dp_compare() {
  local t edges supers
  printf '    %-12s %14s %16s %20s\n' tenant "sent (IP B)" "edges metered" "super nodes observed"
  for t in acme-video globex-iot; do
    edges=$(dp_metered edge "$t")
    supers=$(dp_metered super "$t")
    printf '    %-12s %14s %16s %20s' "$t" "${dp_sent[$t]}" "$edges" "$supers"
    if [ "$edges" = "${dp_sent[$t]}" ] && [ "$supers" = "${dp_sent[$t]}" ]; then echo "  exact"; else echo; fi
  done
}

# hsnctl ledger against a live super node's ledger, over the operator's TLS (the network's
# CA from the member's hsn-ledger-ca ConfigMap, the network's ledger name).
dp_ledger_addr=""
dp_dead_node=""
dp_hsnctl_ledger() {
  "$root/target/debug/hsnctl" ledger --addr "https://$dp_ledger_addr:7443" --ca "$dp_dir/ca.crt" \
    --tls-domain "ledger.$dp_network.hsn.internal" "$@"
}

dp_up() {
  dp_supported || return 0
  mkdir -p "$dp_dir"
  step "building hsnctl"
  (cd "$root" && cargo build -q -p hsnctl)
  k hsn-mec-eu-west -n "$dp_member_ns" get configmap hsn-ledger-ca -o jsonpath='{.data.ca\.crt}' >"$dp_dir/ca.crt"
  dp_ledger_addr=$(dp_list super | awk 'NR == 1 {print $5}')
  dp_site
  dp_wait_programmed
  dp_wait_chain
}

# Waits until the network's chain commits (status.ledger, from the super agents' Leases):
# its validators find each other through the peers in the ledger ConfigMap, which each super
# agent copies to its ledger as soon as the operator writes them.
dp_wait_chain() {
  local height="" started=$SECONDS
  for _ in $(seq 180); do
    height=$(k "$hub" -n edge-net get hsnnetwork "$dp_network" -o jsonpath='{.status.ledger.chainHeight}' 2>/dev/null)
    [ "${height:-0}" -gt 0 ] && break
    sleep 1
  done
  step "the network's chain commits (chain height ${height:-0}, $((SECONDS - started)) s of waiting for its four validators to find each other)"
}

dp_epoch_now() { echo $(($(date +%s) / dp_epoch)); }

dp_story() {
  dp_supported || return 0
  dp_first_epoch=$(dp_epoch_now)
  dp_traffic "all super nodes up"
  step "waiting for the epoch to close and the spools to reach the ledgers ($dp_epoch s epochs)"
  sleep $((dp_epoch + 5))
  dp_compare
  echo
  step "hsnctl ledger (the replica on super node $dp_ledger_addr, over TLS):"
  dp_hsnctl_ledger status || true
}

# "<cluster>/<edge node> <super HsnNode>" of the network's edges, from the hub's HsnNodes.
dp_assignments() {
  k "$hub" -n edge-net get hsnnodes -l "hsn.io/network=$dp_network" \
    -o jsonpath='{range .items[?(@.spec.role=="Edge")]}{.spec.cluster}/{.spec.nodeName} {.spec.assignedSuperNode}{"\n"}{end}' | sort
}

dp_failover() {
  dp_supported || return 0
  local lost cluster ordinal node ns moved _k
  # The super node that serves the first edge.
  lost=$(dp_assignments | awk 'NR == 1 {print $2}')
  cluster=$(echo "$lost" | cut -d. -f2)
  ordinal=${lost##*super-}
  node=$(k "${dp_kwok[$cluster]}" -n "$dp_member_ns" get pod "hsn-super-node-$ordinal" -o jsonpath='{.spec.nodeName}')
  read -r _k _k _k ns _k _k < <(dp_list super | awk -v n="$node" '$3 == n')
  echo
  step "failover: real node $node, which runs super node $lost, dies (kubelet, containerd, its agent, its ledger and CometBFT: every process of the node killed)"
  echo "    edges assigned to it:"; dp_assignments | grep " $lost\$" | sed 's/^/      /' || true
  ip netns pids "$ns" | xargs -r kill -9 2>/dev/null || true
  dp_dead_node=$node
  # Ask a ledger in the cluster that stays up from here on.
  dp_ledger_addr=$(dp_list super | awk -v n="$node" '$2 == "hsn-mec-eu-west" && $3 != n {print $5; exit}')
  step "waiting for its Lease to lapse (15 s) and the operator to re-home its edges"
  for _ in $(seq 90); do
    moved=$(dp_assignments | grep -c " $lost\$" || true)
    [ "$moved" -eq 0 ] && break
    sleep 1
  done
  echo "    edges after:"; dp_assignments | sed 's/^/      /' || true
  dp_wait_programmed
  dp_traffic "after losing $lost"
}

# The ledger's validators as a replica sees them: "<name> ..." lines.
dp_validators() {
  dp_hsnctl_ledger status -o json 2>/dev/null | tr '{' '\n' | sed -n 's/.*"name": *"\([^"]*\)".*/\1/p' | sort | tr '\n' ' '
}

dp_member_down() {
  dp_supported || return 0
  local kwd=$demo/hsn-mec-eu-north.kwok-workdir before after
  before=$(dp_validators)
  echo
  step "MEC cluster mec-eu-north's control plane stops (its nodes, pods, agents and ledgers keep running)"
  KWOK_WORKDIR=$(cat "$kwd") "$bin/kwokctl" stop cluster --name hsn-mec-eu-north >/dev/null 2>&1 || true
  k "$hub" wait --for=condition=Ready=false mec/mec-eu-north --timeout=90s >/dev/null 2>&1 || true
  k "$hub" get mec
  step "the operator re-plans without it: mec-eu-north's super nodes retire from the registry (their observations still count, they no longer validate)"
  for _ in $(seq 60); do
    after=$(dp_validators)
    [ -n "$after" ] && [ "$after" != "$before" ] && break
    sleep 1
  done
  echo "    validators before: $before"
  echo "    validators after:  $after"
  echo "    edges in the plan:"; dp_assignments | sed 's/^/      /' || true
  echo "    (an edge of mec-eu-north reads its routes from its own cluster's API, which is down: it"
  echo "     keeps sending to the super node it had, which still runs and observes)"
  dp_traffic "mec-eu-north's control plane down"
  dp_last_epoch=$(dp_epoch_now)
}

dp_summary() {
  dp_supported || return 0
  local wait=$(( (dp_last_epoch + 1) * dp_epoch + dp_late - $(date +%s) + 8 )) name
  echo
  step "waiting ${wait} s for the traffic's epochs to be final (late window ${dp_late} s after each epoch, by block time)"
  sleep "$wait"
  step "the chain, verified on every replica still running (hsnctl ledger verify, each over TLS):"
  local _k node addr here=$dp_ledger_addr
  while read -r _k _k node _k addr _k; do
    [ "$node" = "$dp_dead_node" ] && continue
    dp_ledger_addr=$addr
    printf '    %-18s %s\n' "$node" "$(dp_hsnctl_ledger verify 2>&1 | head -n1)"
  done < <(dp_list super)
  dp_ledger_addr=$here
  dp_hsnctl_ledger blocks --limit 8 || true
  echo
  step "rewards for epochs $dp_first_epoch..$dp_last_epoch, from the chain alone; bytes each edge's UE sent:"
  for name in $(printf '%s\n' "${!dp_sent_by[@]}" | sort); do
    printf '    %-28s %s B\n' "$name" "${dp_sent_by[$name]}"
  done
  dp_hsnctl_ledger rewards --from "$dp_first_epoch" --to "$dp_last_epoch" || true
}

dp_down_quiet() {
  rm -rf "$dp_dir"
}
