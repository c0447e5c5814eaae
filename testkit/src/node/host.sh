#!/bin/sh
# The host side of hsn_testkit::node, one script for the normal path and for the watchdog
# that runs it when the test process dies without its destructors.
#
#   host.sh hold ID                      before a node's kubelet starts
#   host.sh teardown ID CGROUP NETNS DIR LINK  after: every process, cgroup, namespace,
#                                         link and file gone
#
# The kubelet sets vm.overcommit_memory, kernel.panic and kernel.panic_on_oops for the whole
# machine. The first node held on this machine records their values, the last one released
# puts them back; holders are "<test pid>-<seq>" files, and a holder whose test process is
# gone no longer counts.
set -u
STATE=/run/hsn-testkit/kubelet-sysctls
SYSCTLS="vm/overcommit_memory kernel/panic kernel/panic_on_oops"

locked() {
  mkdir -p "$STATE/holders"
  exec 9>"$STATE/lock"
  flock 9
}

prune() {
  for f in "$STATE"/holders/*; do
    [ -e "$f" ] || continue
    kill -0 "$(basename "$f" | cut -d- -f1)" 2>/dev/null || rm -f "$f"
  done
}

cmd=$1
shift
case $cmd in
hold)
  locked
  prune
  if [ ! -f "$STATE/saved" ]; then
    for s in $SYSCTLS; do echo "$s $(cat "/proc/sys/$s")"; done >"$STATE/saved.new"
    mv "$STATE/saved.new" "$STATE/saved"
  fi
  : >"$STATE/holders/$1"
  ;;
teardown)
  id=$1 cgroup=$2 netns=$3 dir=$4 link=$5
  # Every process of the node (kubelet, containerd, shims, containers), until none is left.
  i=0
  while [ $i -lt 300 ]; do
    pids=$(for h in /sys/fs/cgroup/*/; do
      [ -d "$h$cgroup" ] && find "$h$cgroup" -name cgroup.procs -exec cat {} +
    done 2>/dev/null | sort -u)
    [ -n "$pids" ] || break
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null
    sleep 0.1
    i=$((i + 1))
  done
  failed=""
  [ -z "$pids" ] || failed="processes $pids outlived 30 s of SIGKILL;"
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h$cgroup" ] && find "$h$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$h$cgroup" ] && failed="$failed cgroup $h$cgroup remains;"
  done
  ip netns del "$netns" 2>/dev/null
  # The host end of the node's veth goes with the namespace, but a namespace outlives its
  # processes while their orphaned TCP connections time out (up to minutes when the node
  # network is gone already): delete the pair from the host side.
  ip link del "$link" 2>/dev/null
  # The node's mounts went with its mount namespace; its files may take a moment to be free.
  i=0
  while [ -e "$dir" ] && [ $i -lt 50 ]; do
    rm -rf -- "$dir" 2>/dev/null || sleep 0.1
    i=$((i + 1))
  done
  locked
  rm -f "$STATE/holders/$id"
  prune
  if [ -f "$STATE/saved" ] && [ -z "$(ls -A "$STATE/holders")" ]; then
    while read -r s v; do echo "$v" >"/proc/sys/$s"; done <"$STATE/saved"
    rm -f "$STATE/saved"
  fi
  if [ -n "$failed" ]; then
    echo "teardown of $id: $failed" >&2
    exit 1
  fi
  ;;
*)
  echo "usage: $0 hold ID | teardown ID CGROUP NETNS DIR LINK" >&2
  exit 2
  ;;
esac
