#!/usr/bin/env bash
# Builds the real control-plane tools from their Go modules into bin/:
#   kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet etcd kwok kwokctl helm
#   cometbft
# Idempotent: a tool whose binaries exist and whose stamp (version + go.sum hash) matches
# is skipped, so a warm run takes a second. Cold, on 2 cores, the whole set took 9 minutes here
# (see README); the Go build cache (~/.cache/go-build) makes rebuilds fast.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/hack/versions.env"
source "$root/hack/lib.sh"
bin="$root/bin"
mkdir -p "$bin"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly

command -v go >/dev/null || { echo "hack/build-tools.sh: Go is required (apt-get install golang-go, or https://go.dev/dl)" >&2; exit 1; }

# stamp <tool>: what the binaries of <tool> were built from.
stamp() { cat "$root/hack/versions.env" "$root/hack/tools/$1/go.sum" | sha256sum | cut -c1-16; }

# Prints a line a minute while a long build runs, so a cold build never looks hung.
with_ticker() { # label estimate command...
  local label=$1 estimate=$2; shift 2
  local start=$SECONDS
  echo "==> building $label (cold build: about $estimate on 2 cores; cached: seconds)"
  ( while sleep 60; do echo "    ... $label: $(( (SECONDS - start) / 60 )) min elapsed"; done ) &
  local ticker=$!
  local rc=0
  "$@" || rc=$?
  kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
  [ "$rc" -eq 0 ] || { echo "hack/build-tools.sh: building $label failed" >&2; return "$rc"; }
  echo "    $label built in $(( SECONDS - start ))s"
}

# Go names a binary after its package's last path element, skipping a /vN suffix.
binary_of() { local p=${1%/v[0-9]*}; echo "${p##*/}"; }

build() { # tool estimate ldflags package...
  local tool=$1 estimate=$2 ldflags=$3; shift 3
  local want; want=$(stamp "$tool")
  local have=""; [ -f "$bin/.stamp-$tool" ] && have=$(cat "$bin/.stamp-$tool")
  local missing=0 pkg name
  for pkg in "$@"; do
    name=$(binary_of "$pkg"); [ "$tool" != etcd ] || name=etcd
    [ -x "$bin/$name" ] || missing=1
  done
  if [ "$missing" -eq 0 ] && [ "$have" = "$want" ]; then
    echo "==> $tool: up to date"
    return
  fi
  with_ticker "$tool" "$estimate" \
    bash -c 'cd "$1" && shift && go build -trimpath -ldflags "$1" -o "$2/" "${@:3}"' _ \
    "$root/hack/tools/$tool" "$ldflags" "$bin" "$@"
  # etcd's main package is the server module root, which Go names "server".
  [ "$tool" != etcd ] || mv -f "$bin/server" "$bin/etcd"
  echo "$want" >"$bin/.stamp-$tool"
}

kube_minor=${KUBERNETES_VERSION#v1.}; kube_minor=${kube_minor%%.*}
kube_commit=$(printf '%s' "$KUBERNETES_VERSION" | sha1sum | cut -c1-40)
build_date=1970-01-01T00:00:00Z
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor"
  kube_ldflags+=" -X $pkg.gitCommit=$kube_commit -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

build etcd "1 min" "-X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}" go.etcd.io/etcd/server/v3
# kubelet (real nodes: a kubelet with containerd) takes the same version ldflags, else its
# Node reports v0.0.0-master.
build kubernetes "7 min" "$kube_ldflags" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet
build kwok "2 min" "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBERNETES_VERSION#v}" \
  sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
build helm "1 min" "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" helm.sh/helm/v3/cmd/helm
# CometBFT reports its version from a constant in its module: no ldflags needed.
build cometbft "2 min" "" github.com/cometbft/cometbft/cmd/cometbft
