#!/usr/bin/env bash
# Installs what the build and tests need on a Debian machine, skipping what is present.
# As root it apt-installs the missing packages; otherwise it names them and stops.
# Go and Rust are expected from the machine (Go >= the version hack/tools/*/go.mod names).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/hack/lib.sh"

# clang/llvm/libbpf-dev: the eBPF C programs (clang-format: their style; the libclang that clang brings: bindgen in
# ebpf/build.rs, the Rust side of the datapath ABI); bpftool: inspecting them; iproute2: network namespaces in tests;
# ethtool: veth offloads in the datapath e2e tests; protobuf-compiler: gRPC code generation; openssl: kubeconfig tooling;
# prometheus: its promtool, which the tests run over every component's /metrics (the server itself is never started).
# Real nodes (a kubelet from bin/ with containerd): containerd and runc (crun fails on these hybrid-cgroup machines),
# containernetworking-plugins (the bridge/host-local CNI plugins), umoci, busybox-static and jq (OCI images without a
# daemon, hack/images.sh; busybox-static is also the pause image and replaces a non-static busybox); iptables: each
# real node translates the `kubernetes` Service address to the API server, as kube-proxy would.
packages=(clang clang-format llvm libbpf-dev bpftool iproute2 ethtool protobuf-compiler pkg-config openssl ca-certificates make socat shellcheck prometheus
  containerd runc containernetworking-plugins umoci busybox-static jq iptables)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})"
  fi
  step "installing Debian packages: ${missing[*]} (about 1-2 min)"
  apt-get update -qq
  # Packages that ship a service (prometheus, containerd) must not start it: a policy-rc.d that
  # refuses every start, for the length of the install, unless the machine already has one.
  # (The unit is still enabled for the next boot; real-node tests run a containerd of their own.)
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$guard" && chmod +x "$guard"
    trap 'rm -f "$guard"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$guard" ] || rm -f "$guard"
fi

need_go=$(awk '$1=="go"{print $2; exit}' "$root/hack/tools/kubernetes/go.mod")
command -v go >/dev/null || die "Go ${need_go}+ is required to build the control-plane tools (https://go.dev/dl)"
have_go=$(go env GOVERSION | sed 's/^go//')
version_ge "$have_go" "$need_go" || die "Go ${need_go}+ is required, found ${have_go}"
command -v cargo >/dev/null || die "Rust (cargo) is required (https://rustup.rs)"
step "dependencies present (Go ${have_go}, $(cargo --version | cut -d' ' -f1-2), clang $(clang -dumpversion))"
