# shellcheck shell=bash
# shellcheck disable=SC2154 # demo, hub, root, bin and k() come from hack/demo.sh
# The datapath half of `make demo`, sourced by hack/demo.sh (needs its variables and k()).
#
# Every agent the operator placed gets a network namespace of its own, named after what it
# stands for, and runs the real hsn-agent binary in it: the real XDP programs on veth pairs,
# its Lease and routes ConfigMap in its own MEC cluster, its spool shipped to its super
# node's ledger (hsn-ledger, one per super node, in the super node's namespace).
#
#   hd-svc             the tenants' services (10.20.0.1 acme-video, 10.30.0.1 globex-iot, v4+v6)
#   hd-<c>-s<k>        super node k of cluster c (w = mec-eu-west, n = mec-eu-north)
#   hd-<c>-e<j>        edge j of cluster c, one veth to every super node (the edge's MAC is the
#                      same on all of them: that MAC is how a super node recognises it)
#   hd-<c>-u<j>        the UEs behind edge j, sending the bounded traffic
#
# A namespace has its own loopback, so an agent reaches its cluster's API server (listening
# on the host's 127.0.0.1) through a forwarder: socat on the namespace's 127.0.0.1 with the
# same port, over a Unix socket to socat in the host namespace. TLS passes through unchanged.
#
# Addresses: super node address 10.99.<ci>.<k+1> (advertised in its Lease; edges route to it
# and ship to its ledger on :7443), edge address 10.98.<ci>.<j>, UE 10.96.<ci>.<j> and
# fd96:<ci>::<j>. Nothing leaves the namespaces this script creates.

dp_ns_prefix=hd
dp_dir="$demo/datapath"
dp_bpffs="$dp_dir/bpffs"
dp_epoch=10
dp_network=metro
dp_member_ns=hsn-$dp_network
dp_payload=1000 # UDP payload bytes: IPv4 packets are 1028 B at L3, IPv6 1048 B
dp_datagrams=200 # per UE, tenant and family

# cluster (MecCluster name) -> short code and index
declare -A dp_code=([mec-eu-west]=w [mec-eu-north]=n)
declare -A dp_index=([mec-eu-west]=1 [mec-eu-north]=2)
# MecCluster name -> kwok cluster name (kubeconfig)
declare -A dp_kwok=([mec-eu-west]=hsn-mec-eu-west [mec-eu-north]=hsn-mec-eu-north)

dp_agents=()    # namespaces running an agent
declare -A dp_edge_ns=()  # "<cluster>/<node>" -> edge namespace
declare -A dp_super_ns=() # "<cluster>/super-<k>" -> super namespace

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

dp_supported() {
  local why=""
  [ "$(id -u)" -eq 0 ] || why="it needs root (eBPF programs, network namespaces)"
  command -v socat >/dev/null || why="socat is missing (make deps installs it)"
  if [ -n "$why" ]; then
    step "skipping the datapath part of the demo: $why"
    return 1
  fi
}

# dp_veth <ns-a> <if-a> <ns-b> <if-b>: a veth pair between two namespaces, both ends up.
dp_veth() {
  ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
  nsx "$1" ip link set "$2" up
  nsx "$3" ip link set "$4" up
}

dp_ns() {
  ip netns add "$1"
  nsx "$1" ip link set lo up
  nsx "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
    net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.default.dad_transmits=0
}

# The supers and edges the operator placed on kwok's fake nodes, from the hub's HsnNodes:
# "<role> <cluster> <node|ordinal>". Agents on real nodes run in their pods already.
dp_inventory() {
  local real
  real=$(awk '{print " " $2 "$"}' "$demo/real-nodes" 2>/dev/null)
  k "$hub" -n edge-net get hsnnodes -l "hsn.io/network=$dp_network" \
    -o jsonpath='{range .items[*]}{.spec.role} {.spec.cluster} {.spec.nodeName}{.spec.ordinal}{"\n"}{end}' |
    grep -v -f <(echo "${real:-^\$}") | sort -k2,2 -k3,3V
}

dp_topology() {
  step "datapath: network namespaces and veth pairs for every agent the operator placed"
  dp_ns "$dp_ns_prefix-svc"
  nsx "$dp_ns_prefix-svc" sysctl -qw net.ipv4.conf.all.rp_filter=0
  for addr in 10.20.0.1/32 10.30.0.1/32 2001:db8:20::1/128 2001:db8:30::1/128; do
    nsx "$dp_ns_prefix-svc" ip addr add "$addr" dev lo
  done
  local role cluster name c ci k j ns
  local -A edges_in=()
  while read -r role cluster name; do
    c=${dp_code[$cluster]:-}
    [ -n "$c" ] || continue
    ci=${dp_index[$cluster]}
    case $role in
      Super)
        k=$name
        ns="$dp_ns_prefix-$c-s$k"
        dp_super_ns["$cluster/super-$k"]=$ns
        dp_ns "$ns"
        nsx "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
          net.ipv4.conf.all.send_redirects=0
        nsx "$ns" ip addr add "10.99.$ci.$((k + 1))/32" dev lo
        # The services, behind this super node.
        dp_veth "$ns" svc "$dp_ns_prefix-svc" "s$c$k"
        nsx "$dp_ns_prefix-svc" ip addr add fe80::5/64 dev "s$c$k" nodad
        nsx "$ns" ip route add 10.20.0.0/16 dev svc
        nsx "$ns" ip route add 10.30.0.0/16 dev svc
        nsx "$ns" ip -6 route add 2001:db8:20::/48 via fe80::5 dev svc
        nsx "$ns" ip -6 route add 2001:db8:30::/48 via fe80::5 dev svc
        ;;
      Edge)
        j=$((${edges_in[$cluster]:-0} + 1))
        edges_in[$cluster]=$j
        ns="$dp_ns_prefix-$c-e$j"
        dp_edge_ns["$cluster/$name"]=$ns
        dp_ns "$ns"
        nsx "$ns" ip addr add "10.98.$ci.$j/32" dev lo
        # The UEs: default routes to the edge's link-local gateway.
        dp_ns "$dp_ns_prefix-$c-u$j"
        dp_veth "$dp_ns_prefix-$c-u$j" ue0 "$ns" ue
        # A veth leaves UDP/TCP checksums to "the NIC"; a frame the edge redirects in XDP
        # loses that mark and would arrive with a bad checksum. Real NICs are not affected.
        nsx "$dp_ns_prefix-$c-u$j" ethtool -K ue0 tx off >/dev/null 2>&1 || true
        nsx "$ns" ip addr add 169.254.0.1/32 dev ue
        nsx "$ns" ip addr add fe80::1/64 dev ue nodad
        nsx "$dp_ns_prefix-$c-u$j" ip addr add "10.96.$ci.$j/32" dev ue0
        nsx "$dp_ns_prefix-$c-u$j" ip addr add "fd96:$ci::$j/128" dev ue0 nodad
        nsx "$dp_ns_prefix-$c-u$j" ip route add 169.254.0.1/32 dev ue0
        nsx "$dp_ns_prefix-$c-u$j" ip route add default via 169.254.0.1 dev ue0
        nsx "$dp_ns_prefix-$c-u$j" ip -6 route add default via fe80::1 dev ue0
        ;;
    esac
  done < <(dp_inventory)

  # Every edge gets a link to every super node: after a failover it may be sent anywhere.
  local edge sup e s eci sci ek sk
  for edge in "${!dp_edge_ns[@]}"; do
    e=${dp_edge_ns[$edge]}
    eci=${dp_index[${edge%%/*}]}
    ek=${e##*-e}
    for sup in "${!dp_super_ns[@]}"; do
      s=${dp_super_ns[$sup]}
      sci=${dp_index[${sup%%/*}]}
      sk=${sup##*/super-}
      dp_veth "$e" "s$sci$sk" "$s" "e$eci$ek"
      nsx "$e" ip link set "s$sci$sk" address "02:ed:00:00:0$eci:$(printf %02x "$ek")"
      nsx "$e" ip route add "10.99.$sci.$((sk + 1))/32" dev "s$sci$sk"
      nsx "$s" ip route add "10.98.$eci.$ek/32" dev "e$eci$ek"
    done
  done
  step "datapath: $(ip netns list | grep -c "^$dp_ns_prefix-") namespaces: ${#dp_super_ns[@]} super nodes, ${#dp_edge_ns[@]} edges, their UEs, the services"
}

# The API server of MEC cluster $1 on 127.0.0.1 inside namespace $2.
dp_api_forwarder() {
  local cluster=$1 ns=$2 kc port sock
  kc=$(kubeconfig "${dp_kwok[$cluster]}")
  port=$(sed -n 's#.*server: https://127.0.0.1:\([0-9]*\).*#\1#p' "$kc" | head -n1)
  sock="$dp_dir/api-$cluster.sock"
  if [ ! -S "$sock" ]; then
    socat "UNIX-LISTEN:$sock,fork,mode=600" "TCP:127.0.0.1:$port" 2>>"$dp_dir/socat.log" &
    echo $! >>"$dp_dir/pids"
    for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  fi
  nsx "$ns" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$sock" 2>>"$dp_dir/socat.log" &
  echo $! >>"$dp_dir/pids"
}

# dp_agent <ns> <cluster> <args...>: hsn-agent in <ns>, against <cluster>'s API server.
dp_agent() {
  local ns=$1 cluster=$2
  shift 2
  mkdir -p "$dp_bpffs/$ns" "$dp_dir/state/$ns"
  dp_api_forwarder "$cluster" "$ns"
  KUBECONFIG=$(kubeconfig "${dp_kwok[$cluster]}") RUST_LOG=info \
    ip netns exec "$ns" "$root/target/debug/hsn-agent" --network "$dp_network" \
    --routes-configmap hsn-routes --namespace "$dp_member_ns" \
    --state-dir "$dp_dir/state/$ns" --bpffs "$dp_bpffs/$ns" \
    --metrics-addr 127.0.0.1:9100 --heartbeat-seconds 2 --lease-seconds 15 \
    --epoch-seconds "$dp_epoch" --ledger-backoff-max-seconds 5 "$@" \
    >"$dp_dir/$ns.agent.log" 2>&1 &
  echo $! >"$dp_dir/$ns.agent.pid"
  dp_agents+=("$ns")
}

# dp_placed_pod <cluster> <super|edge> <ordinal|node>: "<name> <uid>" of the pod the operator
# placed for that agent (kwok runs it, faked). The agent here stands in for it: it holds its
# Lease as that pod, or the operator would not trust what the Lease says.
dp_placed_pod() {
  local c=${dp_kwok[$1]} jp='{.metadata.name} {.metadata.uid}'
  if [ "$2" = super ]; then
    k "$c" -n "$dp_member_ns" get pod "hsn-super-node-$3" -o jsonpath="$jp"
  else
    k "$c" -n "$dp_member_ns" get pods -l hsn.io/role=edge --field-selector "spec.nodeName=$3" \
      -o jsonpath="{.items[0].metadata.name} {.items[0].metadata.uid}"
  fi
  echo # jsonpath ends without a newline, which `read` (under set -e) would take as a failure

}

dp_start_agents() {
  step "datapath: starting $(( ${#dp_super_ns[@]} + ${#dp_edge_ns[@]} )) hsn-agents (XDP on the veths, Leases in their MEC clusters)"
  local sup edge ns cluster ci k j ifs pod uid
  for sup in "${!dp_super_ns[@]}"; do
    ns=${dp_super_ns[$sup]}
    cluster=${sup%%/*}
    ci=${dp_index[$cluster]}
    k=${sup##*/super-}
    ifs=()
    for edge in "${!dp_edge_ns[@]}"; do
      ifs+=(--interface "e${dp_index[${edge%%/*}]}${dp_edge_ns[$edge]##*-e}")
    done
    read -r pod uid < <(dp_placed_pod "$cluster" super "$k")
    [ -n "$uid" ] || die "no pod hsn-super-node-$k in $cluster"
    dp_agent "$ns" "$cluster" --role super --pod-name "$pod" --pod-uid "$uid" --node-name "$ns" \
      --advertise-address "10.99.$ci.$((k + 1))" --ledger-endpoint "http://10.99.$ci.$((k + 1)):7443" \
      "${ifs[@]}"
  done
  for edge in "${!dp_edge_ns[@]}"; do
    ns=${dp_edge_ns[$edge]}
    cluster=${edge%%/*}
    ci=${dp_index[$cluster]}
    j=${ns##*-e}
    read -r pod uid < <(dp_placed_pod "$cluster" edge "${edge#*/}")
    [ -n "$uid" ] || die "no edge pod on ${edge#*/} in $cluster"
    dp_agent "$ns" "$cluster" --role edge --node-name "${edge#*/}" --pod-name "$pod" --pod-uid "$uid" \
      --advertise-address "10.98.$ci.$j" --interface ue
  done
}

# The ledgers' key registry: the keys the agents published in their Leases, which the
# operator copies into HsnNode status (hsnctl keys). Prints how many it holds.
dp_key_registry() {
  KUBECONFIG=$(kubeconfig "$hub") "$root/target/debug/hsnctl" keys -n edge-net --network "$dp_network" \
    >"$dp_dir/keys.json" 2>/dev/null || true
  grep -c '"role"' "$dp_dir/keys.json" || true
}

dp_start_ledgers() {
  local want=$(( ${#dp_super_ns[@]} + ${#dp_edge_ns[@]} )) have=0
  for _ in $(seq 60); do
    have=$(dp_key_registry)
    [ "$have" -ge "$want" ] && break
    sleep 1
  done
  [ "$have" -ge "$want" ] || die "only $have of $want agents wrote their Lease (logs: $dp_dir/*.agent.log)"
  step "datapath: all $want agents hold Leases; hsnctl keys made the ledgers' registry from their HsnNodes ($dp_dir/keys.json)"
  local sup ns ci k
  for sup in "${!dp_super_ns[@]}"; do
    ns=${dp_super_ns[$sup]}
    ci=${dp_index[${sup%%/*}]}
    k=${sup##*/super-}
    # The ledger signs blocks as its super node: the agent's identity key.
    ip netns exec "$ns" "$root/target/debug/hsn-ledger" serve --listen "10.99.$ci.$((k + 1)):7443" \
      --db "$dp_dir/$ns.ledger.redb" --key-file "$dp_dir/state/$ns/identity.key" --keys "$dp_dir/keys.json" \
      --network "$dp_network" --epoch-seconds "$dp_epoch" --grace-seconds 5 \
      >"$dp_dir/$ns.ledger.log" 2>&1 &
    echo $! >"$dp_dir/$ns.ledger.pid"
  done
  step "datapath: ${#dp_super_ns[@]} ledgers serving on <super address>:7443"
}

# Waits until every edge has programmed a next hop (its Lease carries the MAC it sends with).
dp_wait_programmed() {
  local cluster want have real
  # The edges started here and those running in pods on real nodes (hack/demo.sh).
  real=$(grep -c . "$demo/real-nodes" 2>/dev/null || true)
  want=$((${#dp_edge_ns[@]} + ${real:-0}))
  for _ in $(seq 90); do
    have=0
    for cluster in "${!dp_kwok[@]}"; do
      have=$((have + $(k "${dp_kwok[$cluster]}" -n "$dp_member_ns" get leases \
        -o jsonpath='{range .items[*]}{.metadata.annotations.hsn\.io/mac}{"\n"}{end}' | grep -c : || true)))
    done
    [ "$have" -ge "$want" ] && break
    sleep 1
  done
  # The super nodes recognise an edge by the MAC the operator copies into their routes.
  local macs=0
  for _ in $(seq 60); do
    macs=0
    for cluster in "${!dp_kwok[@]}"; do
      macs=$((macs + $(k "${dp_kwok[$cluster]}" -n "$dp_member_ns" get configmap hsn-routes \
        -o jsonpath='{.data.routes\.json}' | grep -c '"mac"' || true)))
    done
    [ "$macs" -ge "$want" ] && break
    sleep 1
  done
  step "datapath: $have of $want edges (${real:-0} in pods on real nodes) redirect to their super node; the routes tables carry $macs edge MACs for the super nodes"
}

# dp_send <ue ns> <dst> <count>: <count> UDP datagrams of $dp_payload bytes from bash's /dev/udp.
dp_send() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  nsx "$1" bash -c 'p=$(head -c '"$dp_payload"' /dev/zero | tr "\0" x); for ((i = 0; i < '"$3"'; i++)); do printf %s "$p" >"/dev/udp/'"$2"'/9"; done' 2>/dev/null || true
}

# Sends to both tenants (v4 and v6) and to a non-tenant address from every UE; prints the
# IP bytes sent per tenant.
declare -A dp_sent=()
dp_traffic() {
  local label=$1 edge ns ue dst senders
  local v4=$((dp_payload + 28)) v6=$((dp_payload + 48))
  step "traffic ($label): every UE sends $dp_datagrams UDP datagrams of $dp_payload B to each tenant over IPv4 and IPv6, and to 192.0.2.1 (no tenant)"
  for edge in "${!dp_edge_ns[@]}"; do
    ns=${dp_edge_ns[$edge]}
    ue=${ns/-e/-u}
    senders=()
    for dst in 10.20.0.1 2001:db8:20::1 10.30.0.1 2001:db8:30::1 192.0.2.1; do
      dp_send "$ue" "$dst" "$dp_datagrams" &
      senders+=($!)
    done
    # Only the senders: agents and forwarders are background jobs of this shell too.
    wait "${senders[@]}"
    dp_sent[acme-video]=$((${dp_sent[acme-video]:-0} + dp_datagrams * (v4 + v6)))
    dp_sent[globex-iot]=$((${dp_sent[globex-iot]:-0} + dp_datagrams * (v4 + v6)))
  done
  printf '    sent so far: acme-video %s B, globex-iot %s B (IP bytes, uplink)\n' "${dp_sent[acme-video]}" "${dp_sent[globex-iot]}"
}

# dp_metered <ns glob> <tenant>: uplink IP bytes the agents in matching namespaces closed
# into their spools, from their /metrics (bash's /dev/tcp; each namespace has its own
# 127.0.0.1:9100).
dp_metered() {
  local glob=$1 tenant=$2 ns sum=0 v
  for ns in $(ip netns list | awk '{print $1}'); do
    # shellcheck disable=SC2053 # glob match on purpose
    [[ $ns == $glob ]] || continue
    v=$(ip netns exec "$ns" bash -c 'exec 3<>/dev/tcp/127.0.0.1/9100 && printf "GET /metrics HTTP/1.0\r\n\r\n" >&3 && cat <&3' 2>/dev/null |
      awk -v t="tenant=\"$tenant\"" 'index($0, "hsn_agent_tenant_bytes_total{") == 1 && index($0, t) && index($0, "direction=\"uplink\"") {s += $NF} END {printf "%d", s}')
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# sent vs what the edges metered vs what the super nodes observed, per tenant.
dp_compare() {
  local t edges supers
  printf '    %-12s %14s %16s %20s\n' tenant "sent (IP B)" "edges metered" "super nodes observed"
  for t in acme-video globex-iot; do
    edges=$(dp_metered "$dp_ns_prefix-?-e*" "$t")
    supers=$(dp_metered "$dp_ns_prefix-?-s*" "$t")
    printf '    %-12s %14s %16s %20s' "$t" "${dp_sent[$t]}" "$edges" "$supers"
    if [ "$edges" = "${dp_sent[$t]}" ] && [ "$supers" = "${dp_sent[$t]}" ]; then echo "  exact"; else echo; fi
  done
}

dp_hsnctl_ledger() {
  local ns=$1 addr=$2
  shift 2
  ip netns exec "$ns" "$root/target/debug/hsnctl" ledger --addr "http://$addr:7443" "$@"
}

dp_up() {
  dp_supported || return 0
  dp_down_quiet
  mkdir -p "$dp_dir" "$dp_bpffs"
  mountpoint -q "$dp_bpffs" || mount -t bpf bpf "$dp_bpffs"
  step "building hsn-agent, hsn-ledger and hsnctl"
  (cd "$root" && cargo build -q -p hsn-agent -p hsn-ledger -p hsnctl)
  dp_topology
  dp_start_agents
  dp_start_ledgers
  dp_wait_programmed
}

dp_story() {
  dp_supported || return 0
  dp_traffic "all super nodes up"
  step "waiting for the epoch to close and the spools to reach the ledgers ($dp_epoch s epochs)"
  sleep $((dp_epoch * 2 + 5))
  dp_compare
  local first_sup ns addr
  first_sup=$(printf '%s\n' "${!dp_super_ns[@]}" | sort | head -n1)
  ns=${dp_super_ns[$first_sup]}
  addr=$(ip netns exec "$ns" ip -4 -o addr show dev lo | awk '/10\.99\./ {sub("/32","",$4); print $4}')
  echo
  step "hsnctl ledger (the ledger of $first_sup, at $addr:7443):"
  dp_hsnctl_ledger "$ns" "$addr" status || true
  dp_hsnctl_ledger "$ns" "$addr" blocks --limit 5 || true
  dp_hsnctl_ledger "$ns" "$addr" verify --keys "$dp_dir/keys.json" || true
}

dp_pids() {
  cat "$dp_dir"/*.pid "$dp_dir/pids" 2>/dev/null || true
}

dp_down_quiet() {
  local pid ns
  for pid in $(dp_pids); do kill "$pid" 2>/dev/null || true; done
  for ns in $(ip netns list 2>/dev/null | awk -v p="$dp_ns_prefix-" 'index($1, p) == 1 {print $1}'); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
  done
  if mountpoint -q "$dp_bpffs" 2>/dev/null; then umount "$dp_bpffs" || true; fi
  rm -f "$dp_dir"/*.pid "$dp_dir/pids" "$dp_dir"/*.sock
}

# "<edge node> -> <super id>" of one cluster's edges, from the hub's HsnNodes.
dp_assignments() {
  k "$hub" -n edge-net get hsnnodes -l "hsn.io/network=$dp_network" \
    -o jsonpath='{range .items[?(@.spec.role=="Edge")]}{.spec.cluster}/{.spec.nodeName} {.spec.assignedSuperNode}{"\n"}{end}' | sort
}

dp_failover() {
  dp_supported || return 0
  local lost ns moved
  lost=$(printf '%s\n' "${!dp_super_ns[@]}" | grep '^mec-eu-west/' | sort | head -n1)
  ns=${dp_super_ns[$lost]}
  echo
  step "failover 1: super node $lost is lost (its agent, its ledger and its links vanish with namespace $ns)"
  local lost_node="$dp_network.${lost%%/*}.${lost##*/}"
  echo "    edges assigned to it:"; dp_assignments | grep " $lost_node\$" | sed 's/^/      /' || true

  kill "$(cat "$dp_dir/$ns.agent.pid")" "$(cat "$dp_dir/$ns.ledger.pid")" 2>/dev/null || true
  ip netns pids "$ns" | xargs -r kill 2>/dev/null || true
  ip netns delete "$ns"
  unset "dp_super_ns[$lost]"
  step "waiting for its Lease to lapse (15 s) and the operator to re-home its edges"
  for _ in $(seq 90); do
    moved=$(dp_assignments | grep -c " $lost_node\$" || true)
    [ "$moved" -eq 0 ] && break
    sleep 1
  done
  echo "    mec-eu-west's edges after:"; dp_assignments | grep '^mec-eu-west/' | sed 's/^/      /' || true

  sleep 3 # the edges read the new routes table and switch their next hop (one map write)
  dp_traffic "after losing $lost"

  echo
  step "failover 2: MEC cluster mec-eu-north stops (its control plane goes away)"
  KWOK_WORKDIR=$(cat "$demo/hsn-mec-eu-north.kwok-workdir") \
    "$bin/kwokctl" stop cluster --name hsn-mec-eu-north >/dev/null 2>&1 || true
  k "$hub" wait --for=condition=Ready=false mec/mec-eu-north --timeout=90s >/dev/null 2>&1 || true
  for _ in $(seq 90); do
    [ "$(dp_assignments | grep '^mec-eu-north/' | grep -vc " $dp_network.mec-eu-west\.")" -eq 0 ] && break
    sleep 1
  done
  k "$hub" get mec
  echo "    mec-eu-north's edges now point at mec-eu-west's super nodes:"
  dp_assignments | grep '^mec-eu-north/' | sed 's/^/      /' || true
  step "mec-eu-west's super nodes learn those edges from their routes table (MAC, address, key):"
  k hsn-mec-eu-west -n "$dp_member_ns" get configmap hsn-routes -o jsonpath='{.data.routes\.json}' |
    grep -c '"cluster": "mec-eu-north"' | sed 's/^/      edges of mec-eu-north listed: /' || true
  # Metering goes on in the cluster that is still up.
  local saved=("${!dp_edge_ns[@]}") edge
  for edge in "${saved[@]}"; do [[ $edge == mec-eu-north/* ]] && unset "dp_edge_ns[$edge]"; done
  dp_traffic "mec-eu-north down, mec-eu-west carrying on"
  step "waiting two epochs for the last records to close and ship"
  sleep $((dp_epoch * 2 + 5))
}

dp_summary() {
  dp_supported || return 0
  local sup
  echo
  step "summary: every byte sent to a tenant was metered by an edge, exactly"
  printf '    %-12s %14s %16s\n' tenant "sent (IP B)" "edges metered"
  for t in acme-video globex-iot; do
    printf '    %-12s %14s %16s\n' "$t" "${dp_sent[$t]}" "$(dp_metered "$dp_ns_prefix-?-e*" "$t")"
  done
  for sup in $(printf '%s\n' "${!dp_super_ns[@]}" | sort); do
    [[ $sup == mec-eu-west/* ]] || continue
    echo "    ledger of $sup:"
    dp_hsnctl_ledger "${dp_super_ns[$sup]}" "10.99.1.$((${sup##*/super-} + 1))" verify --keys "$dp_dir/keys.json" 2>&1 | sed 's/^/      /' || true
    dp_hsnctl_ledger "${dp_super_ns[$sup]}" "10.99.1.$((${sup##*/super-} + 1))" rewards --from 0 --to 999999999999 --keys "$dp_dir/keys.json" 2>&1 | sed 's/^/      /' || true
  done
}
