#!/bin/sh
# The first process of a real node: run by hsn_testkit::node inside the node's network
# namespace as `unshare --mount --uts --propagation private`, so every mount below is the
# node's alone and goes away with its last process. Starts containerd, imports the images,
# then becomes the kubelet.
set -eu
: "${NODE_NAME:?}" "${NODE_DIR:?}" "${NODE_CGROUP:?}" "${NODE_IP:?}" "${KUBELET:?}"

hostname "$NODE_NAME"
# Into the node's cgroup in every hierarchy before anything forks: containerd, the shims
# and the kubelet follow, so teardown finds every process of the node there.
for h in /sys/fs/cgroup/*/; do
  if [ -d "$h$NODE_CGROUP" ]; then echo $$ >"$h$NODE_CGROUP/cgroup.procs"; fi
done

# sysfs as this network namespace sees it (/sys/class/net lists the node's interfaces),
# keeping the cgroup mounts: set them aside, remount /sys, put them back.
aside="$NODE_DIR/mnt/cgroup"
mkdir -p "$aside"
mount --rbind /sys/fs/cgroup "$aside"
umount -l /sys
mount -t sysfs sysfs /sys
mount --rbind "$aside" /sys/fs/cgroup
umount -l "$aside"
# The node's own bpffs: what its agents pin is this node's, as on a machine of its own.
mount -t bpf bpf /sys/fs/bpf

# The node's own /run, /var/lib and /var/log: kubelet, containerd and the CNI plugins use
# fixed paths under them, and hostPath volumes land there.
for d in /run /var/lib /var/log; do
  mkdir -p "$NODE_DIR/root$d"
  mount --bind "$NODE_DIR/root$d" "$d"
done

# What kube-proxy would do for the one Service pods need, `kubernetes`: its address leads
# to the API server's address on the node network, from hostNetwork pods (OUTPUT) and from
# pods on the node's pod network (PREROUTING; the CNI config masquerades them).
if [ -n "${SERVICE_DNAT:-}" ]; then
  for chain in OUTPUT PREROUTING; do
    iptables -t nat -A "$chain" -d "${SERVICE_DNAT%%:*}" -p tcp \
      --dport "$(echo "$SERVICE_DNAT" | cut -d: -f2 | cut -d= -f1)" \
      -j DNAT --to-destination "${SERVICE_DNAT#*=}"
  done
fi

containerd --config "$NODE_DIR/containerd.toml" >"$NODE_DIR/containerd.log" 2>&1 &
echo $! >"$NODE_DIR/containerd.pid"
i=0
until ctr version >/dev/null 2>&1; do
  i=$((i + 1))
  if [ $i -ge 600 ]; then
    echo "containerd did not answer within 30 s; its log: $NODE_DIR/containerd.log" >&2
    exit 1
  fi
  sleep 0.05
done
for image in ${NODE_IMAGES:-}; do
  ctr -n k8s.io images import "$image" >/dev/null
done

exec "$KUBELET" --config="$NODE_DIR/kubelet.yaml" --kubeconfig="$NODE_DIR/kubeconfig" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
  --container-runtime-endpoint=unix:///run/containerd/containerd.sock \
  --node-labels="${NODE_LABELS:-}" --register-with-taints="${NODE_TAINTS:-}" \
  --v="${KUBELET_VERBOSITY:-1}"
