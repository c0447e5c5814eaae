#!/usr/bin/env bash
# Regenerates hack/tools/*/go.mod and go.sum from hack/versions.env.
# Run it after changing a version; the results are committed so builds are reproducible.
# k8s.io/kubernetes cannot be required directly: its go.mod points every k8s.io/* staging
# module at ./staging. The wrapper replaces each with the published v0.<minor>.<patch>,
# and the list is read from the real go.mod, not written by hand.
set -euo pipefail
cd "$(dirname "$0")"
source ./versions.env
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

gomod_of() { go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])'; }

staging_version="v0${KUBERNETES_VERSION#v1}"
kube_gomod=$(gomod_of "k8s.io/kubernetes@${KUBERNETES_VERSION}")
go_directive=$(awk '$1=="go"{print $2; exit}' "$kube_gomod")

write_module() { # dir module-path
  local dir=$1 path=$2
  rm -f "$dir/go.mod" "$dir/go.sum"
  printf 'module %s\n\ngo %s\n' "$path" "$go_directive" >"$dir/go.mod"
}

# Kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kubelet.
write_module tools/kubernetes hsn.io/hack/tools/kubernetes
{
  echo
  echo "replace ("
  grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$kube_gomod" |
    awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} >>tools/kubernetes/go.mod
(cd tools/kubernetes && go get -tool \
  "k8s.io/kubernetes/cmd/kube-apiserver@${KUBERNETES_VERSION}" \
  "k8s.io/kubernetes/cmd/kube-controller-manager@${KUBERNETES_VERSION}" \
  "k8s.io/kubernetes/cmd/kube-scheduler@${KUBERNETES_VERSION}" \
  "k8s.io/kubernetes/cmd/kubectl@${KUBERNETES_VERSION}" \
  "k8s.io/kubernetes/cmd/kubelet@${KUBERNETES_VERSION}" && go mod tidy)

# etcd: the server module carries replaces of its own, which a dependent module ignores,
# so mirror them into the wrapper.
write_module tools/etcd hsn.io/hack/tools/etcd
etcd_gomod=$(gomod_of "go.etcd.io/etcd/server/v3@${ETCD_VERSION}")
if grep -qE '=> \.\./' "$etcd_gomod"; then
  { echo; echo "replace ("
    grep -E '^\s*go\.etcd\.io/etcd/[^ ]+ => \.\./' "$etcd_gomod" |
      awk -v v="$ETCD_VERSION" '{print "\t" $1 " => " $1 " " v}'
    echo ")"; } >>tools/etcd/go.mod
fi
(cd tools/etcd && go get -tool "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" && go mod tidy)

# kwok and kwokctl; pin k8s.io/* to the Kubernetes staging version so the Go build cache
# is shared with the Kubernetes build (a patch-level bump, compatible).
write_module tools/kwok hsn.io/hack/tools/kwok
(cd tools/kwok && go get -tool "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}" "sigs.k8s.io/kwok/cmd/kwokctl@${KWOK_VERSION}" &&
  minor=${staging_version%.*} &&
  go get $(awk -v m="$minor" -v v="$staging_version" '$1 ~ /^k8s\.io\// && index($2, m ".") == 1 {print $1 "@" v}' go.mod) &&
  go mod tidy)

write_module tools/helm hsn.io/hack/tools/helm
(cd tools/helm && go get -tool "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" && go mod tidy)

# CometBFT: the consensus engine of the replicated ledger (its own dependency set; no replace).
write_module tools/cometbft hsn.io/hack/tools/cometbft
(cd tools/cometbft && go get -tool "github.com/cometbft/cometbft/cmd/cometbft@${COMETBFT_VERSION}" && go mod tidy)

echo "regenerated hack/tools/*/go.mod for Kubernetes ${KUBERNETES_VERSION}, etcd ${ETCD_VERSION}, kwok ${KWOK_VERSION}, helm ${HELM_VERSION}, CometBFT ${COMETBFT_VERSION}"
